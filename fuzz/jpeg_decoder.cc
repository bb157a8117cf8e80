// libFuzzer harness: any bytes as a JPEG for the presized decoder, at a presize taken from the
// first byte. It must refuse bad data with a reason, never crash or read out of bounds.
#include <vector>

#include "jpeg_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int presize = 1 + data[0] % 64;
  static torchts::JpegScratch scratch;
  std::vector<uint8_t> out(size_t(presize) * presize * 3);
  torchts::decodeJpegPresized(data + 1, size - 1, presize, out.data(), scratch);
  return 0;
}
