// The one reader of little-endian integers in files (zip records, pickles, our checkpoints).
#pragma once
#include <cstdint>

namespace torchts {

// The `width`-byte little-endian unsigned integer at `p`; the caller has checked the bounds.
inline uint64_t readLittleEndian(const char* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace torchts
