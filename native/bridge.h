// The N-API boundary: registration, errors -> JS, JS values -> C++ structs and tensors.
#pragma once
#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "augment.h"
#include "torch_compat.h"

namespace torchts {

// info(), setThreads(), manualSeed(), modelNames(), lossCheck(), prepareBatch().
void InitGlobals(Napi::Env env, Napi::Object exports);
// The Learner class (learner_binding.cc).
void InitLearner(Napi::Env env, Napi::Object exports);

// Bad input from JavaScript: the message names the value and what was expected.
struct InputError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The message of the exception in flight, trimmed to what a user needs: libtorch's
// messages carry a C++ backtrace and "Exception raised from ..." lines after the first.
std::string currentExceptionMessage();
std::string trimTorchMessage(const std::string& message);

// Runs `body` and turns any C++ exception into a thrown JS Error (synchronous entry points).
template <typename Body>
auto guarded(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw Napi::Error::New(env, "torchts: " + currentExceptionMessage());
  }
}

// ---- Reading JS values (each throws InputError naming `what`) ----
Napi::Object objectArg(const Napi::Value& value, const std::string& what);
double numberField(const Napi::Object& object, const char* key, const std::string& what);
int64_t intField(const Napi::Object& object, const char* key, const std::string& what, int64_t min,
                 int64_t max);
std::string stringField(const Napi::Object& object, const char* key, const std::string& what);
bool hasField(const Napi::Object& object, const char* key);
// Copies a typed array's elements (Float32Array -> float, Int32Array -> int32_t).
std::vector<float> floatArray(const Napi::Value& value, const std::string& what);
std::vector<int32_t> int32Array(const Napi::Value& value, const std::string& what);
// A plain JS array of numbers (e.g. mean/std, lrs).
std::vector<double> numberList(const Napi::Value& value, const std::string& what);

// Parses a NativeBatch. `numClasses` bounds the labels and sizes the targets; `images`
// receives the Uint8Array the tensor wraps (the caller keeps it alive while it is used).
BatchSpec parseBatch(const Napi::Value& value, int64_t numClasses, Napi::Uint8Array* images);

// {mean, std} (3 numbers each, std > 0) or neither: per-channel stats in [0, 1] units.
Normalisation normalisationFrom(const Napi::Object& options);

// 'auto' | 'cpu' | 'cuda' | 'cuda:N'; throws InputError for anything else or a missing device.
torch::Device parseDevice(const std::string& spec);
std::string deviceName(const torch::Device& device);

// Sets the calling thread's intra-op thread count to what the process asked for
// (TORCHTS_THREADS, else the CPUs the process may use, or setThreads()). Worker threads call
// it before each job because OpenMP keeps the count per thread.
void applyThreads();

// A CPU float copy of `tensor` as a Float32Array (results are small: probabilities, losses).
Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& tensor);

}  // namespace torchts
