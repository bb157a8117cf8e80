#include "bridge.h"

namespace torchts {
void InitGlobals(Napi::Env env, Napi::Object exports) {
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
}
void InitLearner(Napi::Env, Napi::Object) {}
}  // namespace torchts
