// Process-wide state and facts: libtorch's intra-op threads, info(), the global seed, devices,
// the model names, and the exit hook that lets running steps finish before exit().
#pragma once
#include <napi.h>

#include <string>

#include "torch_compat.h"

namespace torchts {

// info(), setThreads(), manualSeed(), modelNames(); sets the thread count and the exit hook.
void InitRuntime(Napi::Env env, Napi::Object exports);

// Sets the calling thread's intra-op thread count to what the process asked for
// (TORCHTS_THREADS, else the CPUs the process may use, or setThreads()). Worker threads call
// it before each job because OpenMP keeps the count per thread.
void applyThreads();

// 'auto' | 'cpu' | 'cuda' | 'cuda:N'; throws InputError for anything else or a missing device.
torch::Device parseDevice(const std::string& spec);
// 'cpu' or 'cuda:N'.
std::string deviceName(const torch::Device& device);

}  // namespace torchts
