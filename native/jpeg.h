// JPEG decoding for the data pipeline's presized fast path: libjpeg-turbo with DCT scaling,
// squished to a square and written straight into the caller's batch buffer, on libuv's pool.
// Built only when CMake finds libjpeg (TORCHTS_HAVE_JPEG); otherwise InitJpeg registers
// nothing and lib/data decodes every image with sharp.
#pragma once
#include <napi.h>

#include "jpeg_decode.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace torchts {

// decodeJpegInto(inputs, presize, out, offsets, workers) and jpegVersion(), when compiled in.
void InitJpeg(Napi::Env env, Napi::Object exports);

}  // namespace torchts
