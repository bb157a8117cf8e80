// libFuzzer harness: any bytes as a torchts checkpoint (format 2, or format 1's checks then
// libtorch). Refusing is fine; crashing, leaking or undefined behaviour is not.
#include <stdexcept>

#include "checkpoint.h"
#include "input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = writeFuzzInput(data, size, "tsl");
  if (path.empty()) return 0;
  try {
    torchts::readArchive(path);
  } catch (const std::exception&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
