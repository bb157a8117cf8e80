#include "runtime.h"

#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "errors.h"
#include "js_values.h"
#include "process_group.h"
#include "input_limits.h"
#include "models/registry.h"
#include "worker.h"

namespace torchts {
namespace {

std::atomic<int> gThreads{0};

// TORCHTS_THREADS when it is a valid count, else the CPUs this process may run on.
int initialThreads() {
  if (const char* env = std::getenv("TORCHTS_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0 && n <= kMaxThreads) return static_cast<int>(n);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

Napi::Array features(Napi::Env env, bool cuda) {
  auto list = Napi::Array::New(env);
  auto add = [&](const char* name) { list.Set(list.Length(), name); };
  if (TORCHTS_CUDA_BUILD) add("cuda");
  if (cuda && torch::cuda::cudnn_is_available()) add("cudnn");
  if (at::hasMKLDNN()) add("mkldnn");
  if (at::hasMKL()) add("mkl");
  if (at::hasOpenMP()) add("openmp");
  for (const auto& backend : distributedBackends()) add(("c10d-" + backend).c_str());
  if (cuda) {
    add("amp-bf16");
    add("amp-fp16");
    add("pinned-memory");
    add("channels-last");
  }
  return list;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto out = Napi::Object::New(env);
    out.Set("version", TORCHTS_VERSION);  // package.json's, passed in by CMakeLists.txt
    out.Set("torchVersion", TORCH_VERSION);
    out.Set("libtorchSource", TORCHTS_LIBTORCH_SOURCE);
#if defined(_GLIBCXX_USE_CXX11_ABI)
    out.Set("cxx11Abi", _GLIBCXX_USE_CXX11_ABI != 0);
#else
    out.Set("cxx11Abi", false);
#endif
    out.Set("cudaBuild", TORCHTS_CUDA_BUILD != 0);
    if (TORCHTS_CUDA_BUILD) out.Set("cudaVersion", TORCHTS_CUDA_VERSION);
    const bool cuda = torch::cuda::is_available();
    out.Set("cudaAvailable", cuda);
    out.Set("cudaDeviceCount", static_cast<double>(cuda ? torch::cuda::device_count() : 0));
    out.Set("threads", at::get_num_threads());
    out.Set("features", features(env, cuda));
    return out;
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    gThreads = static_cast<int>(wholeNumber(info[0], "setThreads(n): n", 1, kMaxThreads));
    applyThreads();
    return env.Undefined();
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    torch::manual_seed(static_cast<uint64_t>(wholeNumber(info[0], "manualSeed(seed): seed", 0, kMaxSeed)));
    return env.Undefined();
  });
}

Napi::Value ModelNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto names = modelNames();
    auto out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
    return out;
  });
}

// process.exit() during a step: let the step finish before exit() tears libtorch down.
void stopWorkersAtExit(Napi::Env env) {
  auto process = env.Global().Get("process");
  if (!process.IsObject()) return;
  auto on = process.As<Napi::Object>().Get("on");
  if (!on.IsFunction()) return;
  auto stop = Napi::Function::New(
      env, [](const Napi::CallbackInfo& info) { Worker::stopAll(static_cast<napi_env>(info.Env())); },
      "stopTorchtsWorkers");
  on.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), stop});
}

}  // namespace

void applyThreads() {
  const int want = gThreads.load();
  if (want > 0 && at::get_num_threads() != want) at::set_num_threads(want);
}

torch::Device parseDevice(const std::string& spec) {
  const bool cuda = torch::cuda::is_available();
  if (spec == "auto") return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::kCPU;
  int64_t index = -1;
  if (spec == "cuda") {
    index = 0;
  } else if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5 && spec.size() < 9 &&
             spec.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoll(spec.substr(5));
  } else {
    badInput("unknown device '" + spec + "'; expected 'auto', 'cpu', 'cuda' or 'cuda:N'");
  }
  const int64_t count = cuda ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (index >= count) {
    badInput("device '" + spec + "' is not available: this libtorch sees " + std::to_string(count) +
             " CUDA device(s)" + (TORCHTS_CUDA_BUILD ? "" : " (it was built without CUDA)") +
             "; expected 'cpu' or 'auto'");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string deviceName(const torch::Device& device) {
  return device.is_cuda() ? "cuda:" + std::to_string(device.index() < 0 ? 0 : device.index()) : "cpu";
}

void InitRuntime(Napi::Env env, Napi::Object exports) {
  compat::quietOneTimeNotices();
  gThreads = initialThreads();
  applyThreads();
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("modelNames", Napi::Function::New(env, ModelNames, "modelNames"));
  stopWorkersAtExit(env);
}

}  // namespace torchts
