// JPEG decoding for the data pipeline's presized fast path: libjpeg-turbo with DCT scaling,
// squished to a square and written straight into the caller's batch buffer, on libuv's pool.
// Built only when CMake finds libjpeg (TORCHTS_HAVE_JPEG); otherwise InitJpeg registers
// nothing and lib/data decodes every image with sharp.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace torchts {

// decodeJpegInto(inputs, presize, out, offsets, workers) and jpegVersion(), when compiled in.
void InitJpeg(Napi::Env env, Napi::Object exports);

// Reusable per-thread buffers of decodeJpegPresized (the decoded image and the resize pass).
struct JpegScratch {
  std::vector<uint8_t> decoded;
  std::vector<float> rows;
};

// Decodes one JPEG held in memory and squishes it to presize x presize x 3 (RGB, HWC) at `out`.
// Returns "" on success, otherwise why the image was refused: corrupt or truncated data
// (libjpeg warnings count as errors), CMYK/YCCK, or too large. Never throws for bad data.
std::string decodeJpegPresized(const uint8_t* data, size_t size, int presize, uint8_t* out,
                               JpegScratch& scratch);

}  // namespace torchts
