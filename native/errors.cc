#include "errors.h"

#include <c10/util/Exception.h>

#include <new>
#include <sstream>

namespace torchts {

std::string trimTorchMessage(const std::string& message) {
  std::istringstream lines(message);
  std::string line;
  while (std::getline(lines, line)) {
    const auto start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    const auto end = line.find_last_not_of(" \t\r");
    return line.substr(start, end - start + 1);
  }
  return message.empty() ? std::string("unknown native error") : message;
}

std::string currentExceptionMessage() {
  try {
    throw;
  } catch (const InputError& e) {
    return e.what();
  } catch (const c10::Error& e) {
    return "libtorch: " + trimTorchMessage(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    return trimTorchMessage(e.what());
  } catch (...) {
    return "unknown native error";
  }
}

Napi::Error jsError(Napi::Env env, const std::string& message) { return Napi::Error::New(env, "torchts: " + message); }

Napi::Value rejectedPromise(Napi::Env env, const Napi::Error& error) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(error.Value());
  return deferred.Promise();
}

}  // namespace torchts
