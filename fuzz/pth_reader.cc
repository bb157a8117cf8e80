// libFuzzer harness: any bytes as a torch.save file. Refusing is fine; crashing, leaking or
// undefined behaviour is not (ASan + UBSan).
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/torchts-fuzz-pth-" + std::to_string(getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    torchts::readTorchSave(path);
  } catch (const std::exception&) {
  }
  return 0;
}
