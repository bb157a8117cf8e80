// The N-API boundary: registration, errors -> JS, TypedArray <-> tensor helpers.
#pragma once
#include <napi.h>

#include "torch_compat.h"

namespace torchts {

// info(), setThreads(), manualSeed(), modelNames().
void InitGlobals(Napi::Env env, Napi::Object exports);
// The Learner class (learner.cc).
void InitLearner(Napi::Env env, Napi::Object exports);

}  // namespace torchts
