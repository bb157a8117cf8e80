// The JS classes and the internal entry that addon.cc registers (runtime.h and jpeg.h declare
// the rest).
#pragma once
#include <napi.h>

namespace torchts {

// The Learner class: a model with its optimizer and loss (learner_binding.cc).
void InitLearner(Napi::Env env, Napi::Object exports);
// The Model class: a model for inference, without an optimizer (model_binding.cc).
void InitModel(Napi::Env env, Napi::Object exports);
// `__internal`: helpers for the tests, not part of the public binding (internals.cc).
void InitInternals(Napi::Env env, Napi::Object exports);

}  // namespace torchts
