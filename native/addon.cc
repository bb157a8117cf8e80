// Module init: registers the addon's classes and functions, nothing else.
#include <napi.h>

#include "bridge.h"
#include "jpeg.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  torchts::InitGlobals(env, exports);
  torchts::InitLearner(env, exports);
  torchts::InitJpeg(env, exports);
  return exports;
}

NODE_API_MODULE(torchts, Init)
