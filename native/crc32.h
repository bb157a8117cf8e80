// CRC-32 (the polynomial of zip and PNG), table-driven: the integrity check of our checkpoints
// (checkpoint_format.cc) and of the entries of torch.save's zip files (zip.cc).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace torchts {

inline uint32_t crc32(const void* data, size_t size, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

}  // namespace torchts
