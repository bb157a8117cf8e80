// libFuzzer harness: any bytes as a torch.save file. Refusing is fine; crashing, leaking or
// undefined behaviour is not (ASan + UBSan).
#include <stdexcept>

#include "checkpoint.h"
#include "input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = writeFuzzInput(data, size, "pth");
  if (path.empty()) return 0;
  try {
    torchts::readTorchSave(path);
  } catch (const std::exception&) {
  }
  return 0;
}
