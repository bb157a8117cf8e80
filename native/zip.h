// A minimal reader for the uncompressed ("stored") zip archives torch.save writes.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace torchts {

class ZipReader {
 public:
  // Reads the central directory. Throws std::runtime_error naming `path` when the
  // file is missing or is not a zip archive.
  explicit ZipReader(const std::string& path);

  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // The entry's bytes. Throws for compressed or truncated entries and for a CRC-32 mismatch.
  std::string read(const std::string& name);
  uint64_t size(const std::string& name) const;

 private:
  struct Entry {
    uint16_t method;
    uint32_t crc;
    uint64_t compressedSize;
    uint64_t size;
    uint64_t localHeaderOffset;
  };
  std::string readAt(uint64_t offset, uint64_t length, const char* what);
  [[noreturn]] void fail(const std::string& why) const;

  std::string path_;
  std::ifstream file_;
  uint64_t fileSize_ = 0;
  std::map<std::string, Entry> entries_;
};

}  // namespace torchts
