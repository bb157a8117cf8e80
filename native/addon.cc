// Module init: registers the addon's classes and functions, nothing else.
#include <napi.h>

#include "bindings.h"
#include "jpeg.h"
#include "runtime.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  torchts::InitRuntime(env, exports);
  torchts::InitLearner(env, exports);
  torchts::InitModel(env, exports);
  torchts::InitJpeg(env, exports);
  torchts::InitInternals(env, exports);
  return exports;
}

NODE_API_MODULE(torchts, Init)
