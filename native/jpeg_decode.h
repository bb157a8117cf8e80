// One JPEG in memory -> a presize x presize RGB square, with libjpeg-turbo's DCT scaling
// (jpeg_decode.cc). No N-API here: jpeg.cc runs it on libuv's pool for a batch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace torchts {

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
