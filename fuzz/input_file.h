// The harnesses of readers that take a path write each input to one file per process.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

// Writes `data` to /tmp/torchts-fuzz-<tag>-<pid>; returns the path, or "" when it cannot.
inline std::string writeFuzzInput(const uint8_t* data, size_t size, const char* tag) {
  static const std::string path = std::string("/tmp/torchts-fuzz-") + tag + "-" + std::to_string(getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}
