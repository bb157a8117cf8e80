#include "bridge.h"

#include <sched.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "losses.h"
#include "models/registry.h"
#include "worker.h"

namespace torchts {
namespace {

constexpr int64_t kMaxSide = 1 << 15;
constexpr int64_t kMaxBatch = 1 << 20;

std::atomic<int> gThreads{0};

[[noreturn]] void fail(const std::string& message) { throw InputError(message); }

std::string describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) {
    std::ostringstream out;
    out << "the number " << value.As<Napi::Number>().DoubleValue();
    return out.str();
  }
  if (value.IsString()) return "the string '" + value.As<Napi::String>().Utf8Value() + "'";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsArray()) return "an Array";
  if (value.IsTypedArray()) {
    switch (value.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_uint8_array: return "a Uint8Array";
      case napi_int32_array: return "an Int32Array";
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      default: return "another typed array";
    }
  }
  if (value.IsFunction()) return "a function";
  return "an object";
}

int defaultThreads() {
  if (const char* env = std::getenv("TORCHTS_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0 && n <= 1024) return static_cast<int>(n);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

template <typename T>
std::vector<T> typedArray(const Napi::Value& value, napi_typedarray_type type, const char* typeName,
                          const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    fail(what + " must be " + typeName + "; got " + describe(value));
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

void requireLength(size_t actual, size_t expected, const std::string& what, const std::string& expectation) {
  if (actual != expected) {
    fail(what + " has " + std::to_string(actual) + " entries; expected " + expectation + " = " +
         std::to_string(expected));
  }
}

void requireFinite(const std::vector<float>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) fail(what + "[" + std::to_string(i) + "] is not a finite number");
  }
}

AugmentSpec parseAugment(const Napi::Value& value, int64_t n) {
  auto object = objectArg(value, "batch.augment");
  AugmentSpec spec;
  spec.size = intField(object, "size", "batch.augment.size", 1, kMaxSide);
  if (hasField(object, "matrices")) {
    spec.matrices = floatArray(object.Get("matrices"), "batch.augment.matrices");
    requireLength(spec.matrices.size(), n * 9, "batch.augment.matrices", "n*9");
    requireFinite(spec.matrices, "batch.augment.matrices");
  }
  for (auto [key, target] : {std::pair{"brightness", &spec.brightness}, std::pair{"contrast", &spec.contrast}}) {
    if (!hasField(object, key)) continue;
    const std::string what = std::string("batch.augment.") + key;
    *target = floatArray(object.Get(key), what);
    requireLength(target->size(), n, what, "n");
    requireFinite(*target, what);
  }
  return spec;
}

MixSpec parseMix(const Napi::Value& value, int64_t n, int64_t height, int64_t width) {
  auto object = objectArg(value, "batch.mix");
  MixSpec spec;
  auto perm = int32Array(object.Get("perm"), "batch.mix.perm");
  requireLength(perm.size(), n, "batch.mix.perm", "n");
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= n) {
      fail("batch.mix.perm[" + std::to_string(i) + "] = " + std::to_string(perm[i]) +
           " is out of range; expected a batch index in [0, " + std::to_string(n) + ")");
    }
    spec.perm.push_back(perm[i]);
  }
  spec.lambda = floatArray(object.Get("lambda"), "batch.mix.lambda");
  requireLength(spec.lambda.size(), n, "batch.mix.lambda", "n");
  for (size_t i = 0; i < spec.lambda.size(); ++i) {
    if (!(spec.lambda[i] >= 0.0f && spec.lambda[i] <= 1.0f)) {
      std::ostringstream out;
      out << "batch.mix.lambda[" << i << "] = " << spec.lambda[i] << "; expected a weight in [0, 1]";
      fail(out.str());
    }
  }
  if (hasField(object, "box")) {
    auto list = numberList(object.Get("box"), "batch.mix.box");
    if (list.size() != 4) fail("batch.mix.box must be [x0, y0, x1, y1]; got " + std::to_string(list.size()) + " numbers");
    std::array<int64_t, 4> box{};
    for (size_t i = 0; i < 4; ++i) {
      if (list[i] != std::floor(list[i])) fail("batch.mix.box must hold whole pixel coordinates");
      box[i] = static_cast<int64_t>(list[i]);
    }
    if (box[0] < 0 || box[1] < 0 || box[0] > box[2] || box[1] > box[3] || box[2] > width || box[3] > height) {
      std::ostringstream out;
      out << "batch.mix.box [" << box[0] << ", " << box[1] << ", " << box[2] << ", " << box[3]
          << ") is not inside the " << width << "x" << height
          << " image; expected 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height";
      fail(out.str());
    }
    spec.box = box;
  }
  return spec;
}

Normalisation parseNormalisation(const Napi::Object& object) {
  Normalisation norm;
  const bool hasMean = hasField(object, "mean"), hasStd = hasField(object, "std");
  if (hasMean != hasStd) fail("mean and std go together; got only " + std::string(hasMean ? "mean" : "std"));
  if (!hasMean) return norm;
  for (auto [key, target] : {std::pair{"mean", &norm.mean}, std::pair{"std", &norm.std}}) {
    auto list = numberList(object.Get(key), key);
    if (list.size() != 3) fail(std::string(key) + " must hold 3 numbers (R, G, B); got " + std::to_string(list.size()));
    for (double v : list) {
      if (!std::isfinite(v)) fail(std::string(key) + " must hold finite numbers");
      target->push_back(static_cast<float>(v));
    }
  }
  for (size_t c = 0; c < 3; ++c) {
    if (!(norm.std[c] > 0)) fail("std[" + std::to_string(c) + "] = " + std::to_string(norm.std[c]) + "; expected > 0");
  }
  return norm;
}

// ---- Process-wide functions ----

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
    auto features = Napi::Array::New(env);
    auto add = [&](const char* name) { features.Set(features.Length(), name); };
    if (TORCHTS_CUDA_BUILD) add("cuda");
    if (cuda && torch::cuda::cudnn_is_available()) add("cudnn");
    if (at::hasMKLDNN()) add("mkldnn");
    if (at::hasMKL()) add("mkl");
    if (at::hasOpenMP()) add("openmp");
    if (cuda) {
      add("amp-bf16");
      add("amp-fp16");
      add("pinned-memory");
      add("channels-last");
    }
    out.Set("features", features);
    return out;
  });
}

// A positional argument that must be a whole number in [min, max]; fails naming it otherwise.
double wholeNumberArg(const Napi::Value& value, const std::string& what, double min, double max) {
  const double n = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(n >= min && n <= max && n == std::floor(n))) {
    fail(what + " must be a whole number in [" + std::to_string(static_cast<int64_t>(min)) + ", " +
         std::to_string(static_cast<int64_t>(max)) + "]; got " + describe(value));
  }
  return n;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    gThreads = static_cast<int>(wholeNumberArg(info[0], "setThreads(n): n", 1, 1024));
    applyThreads();
    return env.Undefined();
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    torch::manual_seed(static_cast<uint64_t>(wholeNumberArg(info[0], "manualSeed(seed): seed", 0, 9007199254740991.0)));
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

// lossCheck({logits, n, classes, labels | targets, eps, mix?}) -> {loss, perSample}:
// the Learner's loss on given logits, so tests can compare it with PyTorch's.
Napi::Value LossCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto args = objectArg(info[0], "lossCheck options");
    const int64_t n = intField(args, "n", "n", 1, kMaxBatch);
    const int64_t classes = intField(args, "classes", "classes", 1, 1 << 20);
    auto logits = floatArray(args.Get("logits"), "logits");
    requireLength(logits.size(), n * classes, "logits", "n*classes");
    const double eps = hasField(args, "eps") ? numberField(args, "eps", "eps") : 0.0;
    if (!(eps >= 0 && eps < 1)) fail("eps must be in [0, 1)");
    torch::Tensor labels, targets;
    if (hasField(args, "labels")) {
      auto raw = int32Array(args.Get("labels"), "labels");
      requireLength(raw.size(), n, "labels", "n");
      labels = torch::tensor(std::vector<int64_t>(raw.begin(), raw.end()), torch::kLong);
      if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= classes) fail("labels must be in [0, classes)");
    } else {
      auto raw = floatArray(args.Get("targets"), "targets");
      requireLength(raw.size(), n * classes, "targets", "n*classes");
      targets = torch::tensor(raw, torch::kFloat).view({n, classes});
    }
    std::optional<MixSpec> mix;
    if (hasField(args, "mix")) mix = parseMix(args.Get("mix"), n, kMaxSide, kMaxSide);
    auto logitsT = torch::tensor(logits, torch::kFloat).view({n, classes});
    auto perSample = batchLoss(logitsT, labels, targets, mix, eps);
    auto out = Napi::Object::New(env);
    out.Set("loss", perSample.mean().item<double>());
    out.Set("perSample", toFloat32Array(env, perSample));
    return out;
  });
}

// prepareBatch(batch, {mean?, std?}) -> Float32Array: the NCHW float images the model
// would see for this batch (augmented, normalised, mixed), for tests and inspection.
Napi::Value PrepareBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Uint8Array images;
    auto batch = parseBatch(info[0], 1 << 20, &images);
    Normalisation norm;
    if (info.Length() > 1 && !info[1].IsUndefined()) norm = parseNormalisation(objectArg(info[1], "options"));
    applyThreads();
    return toFloat32Array(env, prepareImages(batch, norm, PrepareOptions{}));
  });
}

}  // namespace

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

Napi::Object objectArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray() || value.IsFunction()) {
    fail(what + " must be an object; got " + describe(value));
  }
  return value.As<Napi::Object>();
}

bool hasField(const Napi::Object& object, const char* key) {
  auto value = object.Get(key);
  return !value.IsUndefined() && !value.IsNull();
}

double numberField(const Napi::Object& object, const char* key, const std::string& what) {
  auto value = object.Get(key);
  if (!value.IsNumber()) fail(what + " must be a number; got " + describe(value));
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number)) fail(what + " must be a finite number; got " + describe(value));
  return number;
}

int64_t intField(const Napi::Object& object, const char* key, const std::string& what, int64_t min, int64_t max) {
  auto value = object.Get(key);
  const double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
  if (!(number >= static_cast<double>(min) && number <= static_cast<double>(max) && number == std::floor(number))) {
    fail(what + " must be a whole number in [" + std::to_string(min) + ", " + std::to_string(max) + "]; got " +
         describe(value));
  }
  return static_cast<int64_t>(number);
}

std::string stringField(const Napi::Object& object, const char* key, const std::string& what) {
  auto value = object.Get(key);
  if (!value.IsString()) fail(what + " must be a string; got " + describe(value));
  return value.As<Napi::String>().Utf8Value();
}

std::vector<float> floatArray(const Napi::Value& value, const std::string& what) {
  return typedArray<float>(value, napi_float32_array, "a Float32Array", what);
}

std::vector<int32_t> int32Array(const Napi::Value& value, const std::string& what) {
  return typedArray<int32_t>(value, napi_int32_array, "an Int32Array", what);
}

std::vector<double> numberList(const Napi::Value& value, const std::string& what) {
  std::vector<double> out;
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      auto item = array.Get(i);
      if (!item.IsNumber()) fail(what + "[" + std::to_string(i) + "] must be a number; got " + describe(item));
      out.push_back(item.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    auto f = floatArray(value, what);
    return std::vector<double>(f.begin(), f.end());
  }
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto array = value.As<Napi::Float64Array>();
    return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
  }
  fail(what + " must be an array of numbers; got " + describe(value));
}

BatchSpec parseBatch(const Napi::Value& value, int64_t numClasses, Napi::Uint8Array* images) {
  auto object = objectArg(value, "batch");
  BatchSpec spec;
  spec.n = intField(object, "n", "batch.n", 1, kMaxBatch);
  spec.h = intField(object, "h", "batch.h", 1, kMaxSide);
  spec.w = intField(object, "w", "batch.w", 1, kMaxSide);
  auto bytes = object.Get("images");
  if (!bytes.IsTypedArray() || bytes.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    fail("batch.images must be a Uint8Array of n*h*w*3 RGB bytes (NHWC); got " + describe(bytes));
  }
  auto array = bytes.As<Napi::Uint8Array>();
  const int64_t expected = spec.n * spec.h * spec.w * 3;
  if (static_cast<int64_t>(array.ByteLength()) != expected) {
    fail("batch.images has " + std::to_string(array.ByteLength()) + " bytes; expected n*h*w*3 = " +
         std::to_string(spec.n) + "*" + std::to_string(spec.h) + "*" + std::to_string(spec.w) + "*3 = " +
         std::to_string(expected));
  }
  spec.images = torch::from_blob(array.Data(), {spec.n, spec.h, spec.w, 3}, torch::kUInt8);
  *images = array;

  if (hasField(object, "labels")) {
    auto labels = int32Array(object.Get("labels"), "batch.labels");
    requireLength(labels.size(), spec.n, "batch.labels", "n");
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= numClasses) {
        fail("batch.labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
             " is out of range; expected a class index in [0, " + std::to_string(numClasses) + ")");
      }
    }
    spec.labels = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kLong);
  }
  if (hasField(object, "targets")) {
    if (spec.labels.defined()) fail("batch has both labels and targets; expected one of them");
    auto targets = floatArray(object.Get("targets"), "batch.targets");
    requireLength(targets.size(), spec.n * numClasses, "batch.targets", "n*numClasses");
    requireFinite(targets, "batch.targets");
    spec.targets = torch::tensor(targets, torch::kFloat).view({spec.n, numClasses});
  }
  if (hasField(object, "augment")) spec.augment = parseAugment(object.Get("augment"), spec.n);
  if (hasField(object, "mix")) spec.mix = parseMix(object.Get("mix"), spec.n, spec.outHeight(), spec.outWidth());
  return spec;
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
    fail("unknown device '" + spec + "'; expected 'auto', 'cpu', 'cuda' or 'cuda:N'");
  }
  const int64_t count = cuda ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (index >= count) {
    fail("device '" + spec + "' is not available: this libtorch sees " + std::to_string(count) +
         " CUDA device(s)" + (TORCHTS_CUDA_BUILD ? "" : " (it was built without CUDA)") +
         "; expected 'cpu' or 'auto'");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string deviceName(const torch::Device& device) {
  return device.is_cuda() ? "cuda:" + std::to_string(device.index() < 0 ? 0 : device.index()) : "cpu";
}

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& tensor) {
  auto t = tensor.to(torch::kCPU, torch::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(t.numel()));
  if (t.numel() > 0) std::memcpy(out.Data(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

void applyThreads() {
  const int want = gThreads.load();
  if (want > 0 && at::get_num_threads() != want) at::set_num_threads(want);
}

void InitGlobals(Napi::Env env, Napi::Object exports) {
  compat::quietOneTimeNotices();
  gThreads = defaultThreads();
  applyThreads();
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("modelNames", Napi::Function::New(env, ModelNames, "modelNames"));
  exports.Set("lossCheck", Napi::Function::New(env, LossCheck, "lossCheck"));
  exports.Set("prepareBatch", Napi::Function::New(env, PrepareBatch, "prepareBatch"));
  // process.exit() during a step: let the step finish before exit() tears libtorch down.
  auto process = env.Global().Get("process");
  if (process.IsObject()) {
    auto on = process.As<Napi::Object>().Get("on");
    if (on.IsFunction()) {
      auto stop = Napi::Function::New(
          env, [](const Napi::CallbackInfo& info) { Worker::stopAll(static_cast<napi_env>(info.Env())); },
          "stopTorchtsWorkers");
      on.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), stop});
    }
  }
}

Normalisation normalisationFrom(const Napi::Object& options) { return parseNormalisation(options); }

}  // namespace torchts
