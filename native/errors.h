// Errors at the N-API boundary, one convention for every entry point. Native code throws
// InputError for bad input from JavaScript (the message names the value and what was expected)
// and lets libtorch's and the standard library's exceptions fly; the boundary catches them all
// and throws or rejects with a JS Error whose message is "torchts: <what went wrong>".
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace torchts {

// Bad input from JavaScript.
struct InputError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] inline void badInput(const std::string& message) { throw InputError(message); }

// The message of the exception in flight, trimmed to what a user needs: libtorch's messages
// carry a C++ backtrace and "Exception raised from ..." lines after the first.
std::string currentExceptionMessage();
std::string trimTorchMessage(const std::string& message);

// The JS Error every failure becomes.
Napi::Error jsError(Napi::Env env, const std::string& message);

// Runs `body` and turns any C++ exception into a thrown JS Error (synchronous entry points).
template <typename Body>
auto guarded(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw jsError(env, currentExceptionMessage());
  }
}

// A Promise already rejected with `error` (argument errors of asynchronous entry points).
Napi::Value rejectedPromise(Napi::Env env, const Napi::Error& error);

// Runs `body`, which returns a Promise; any C++ exception becomes a rejected Promise instead,
// so an asynchronous entry point never throws synchronously.
template <typename Body>
Napi::Value guardedAsync(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error& e) {
    return rejectedPromise(env, e);
  } catch (...) {
    return rejectedPromise(env, jsError(env, currentExceptionMessage()));
  }
}

}  // namespace torchts
