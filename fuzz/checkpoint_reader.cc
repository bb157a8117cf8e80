// libFuzzer harness: any bytes as a torchts checkpoint (format 2, or format 1's pre-check then
// libtorch). Refusing is fine; crashing, leaking or undefined behaviour is not.
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/torchts-fuzz-tsl-" + std::to_string(getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    torchts::readArchive(path);
  } catch (const std::exception&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
