// The limits the native side enforces, each stated once. They protect memory and integer
// arithmetic, not taste: the user-facing limits (image sizes, batch sizes) are TypeScript's
// (lib/defaults.ts) and much tighter.
#pragma once
#include <cstdint>

namespace torchts {

// Pixels per image side: n*h*w*3 and the sampling grids stay far from int64 overflow.
constexpr int64_t kMaxSide = int64_t(1) << 15;
// Images per batch.
constexpr int64_t kMaxBatch = int64_t(1) << 20;
// Classes of a classifier (the head's width and n*classes target arrays).
constexpr int64_t kMaxClasses = int64_t(1) << 20;
// Intra-op threads (setThreads, TORCHTS_THREADS).
constexpr int64_t kMaxThreads = 1024;
// Seeds: the largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr int64_t kMaxSeed = 9007199254740991LL;
// The JPEG decoder's square side and its pool workers per call (native/jpeg.cc).
constexpr int64_t kMaxPresize = 8192;
// Pixels a JPEG's header may claim (sharp's default limitInputPixels, 0x3FFF squared): above it
// the file is a decompression bomb, refused before anything is allocated (sharp refuses it too).
constexpr int64_t kMaxJpegSourcePixels = int64_t(0x3FFF) * 0x3FFF;
constexpr int64_t kMaxDecodeWorkers = 256;

}  // namespace torchts
