// `__internal`: helpers that let the tests compare native results with PyTorch's. They are not
// part of the public binding: lib/native-internal.ts reaches them, lib/native.ts does not.
#include "bindings.h"

#include <optional>

#include "augment.h"
#include "batch_schema.h"
#include "checkpoint.h"
#include "errors.h"
#include "js_values.h"
#include "input_limits.h"
#include "losses.h"
#include "runtime.h"

namespace torchts {
namespace {

torch::Tensor checkedLabels(const Napi::Value& value, int64_t n, int64_t classes) {
  auto raw = int32Array(value, "labels");
  requireLength(raw.size(), n, "labels", "n");
  auto labels = torch::tensor(std::vector<int64_t>(raw.begin(), raw.end()), torch::kLong);
  if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= classes) badInput("labels must be in [0, classes)");
  return labels;
}

// lossCheck({logits, n, classes, labels | targets, eps?, mix?}) -> {loss, perSample}:
// the Learner's loss on given logits. eps (label smoothing) is 0 when left out.
Napi::Value LossCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto args = objectArg(info[0], "lossCheck options");
    const int64_t n = intField(args, "n", "n", 1, kMaxBatch);
    const int64_t classes = intField(args, "classes", "classes", 1, kMaxClasses);
    auto logits = floatArray(args.Get("logits"), "logits");
    requireLength(logits.size(), n * classes, "logits", "n*classes");
    const double eps = hasField(args, "eps") ? numberField(args, "eps", "eps") : 0.0;
    if (!(eps >= 0 && eps < 1)) badInput("eps must be in [0, 1)");
    torch::Tensor labels, targets;
    if (hasField(args, "labels")) {
      labels = checkedLabels(args.Get("labels"), n, classes);
    } else {
      auto raw = floatArray(args.Get("targets"), "targets");
      requireLength(raw.size(), n * classes, "targets", "n*classes");
      targets = torch::tensor(raw, torch::kFloat).view({n, classes});
    }
    std::optional<MixSpec> mix;
    // No images here, so any box fits: the loss ignores it.
    if (hasField(args, "mix")) mix = parseMix(args.Get("mix"), n, kMaxSide, kMaxSide);
    auto logitsT = torch::tensor(logits, torch::kFloat).view({n, classes});
    auto perSample = batchLoss(logitsT, labels, targets, mix, eps);
    auto out = Napi::Object::New(env);
    out.Set("loss", perSample.mean().item<double>());
    out.Set("perSample", toFloat32Array(env, perSample));
    return out;
  });
}

// prepareBatch(batch, {mean, std}?) -> Float32Array: the NCHW float images the model would see
// for this batch (augmented, normalised, mixed), computed on the CPU.
Napi::Value PrepareBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Uint8Array images;
    auto batch = parseBatch(info[0], kMaxClasses, &images);
    Normalisation norm;
    if (info.Length() > 1 && !info[1].IsUndefined()) norm = parseNormalisation(objectArg(info[1], "options"));
    applyThreads();
    return toFloat32Array(env, prepareImages(batch, norm, PrepareOptions{}));
  });
}

// readCheckpoint(file) -> {meta, tensors: [name]}: what readArchive finds, with no model.
Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const auto archive = readArchive(stringArg(info[0], "readCheckpoint(file): file"));
    auto meta = Napi::Object::New(env);
    for (const auto& [key, value] : archive.meta) meta.Set(key, value);
    auto names = Napi::Array::New(env, archive.tensors.size());
    for (size_t i = 0; i < archive.tensors.size(); ++i) names.Set(i, archive.tensors[i].first);
    auto out = Napi::Object::New(env);
    out.Set("meta", meta);
    out.Set("tensors", names);
    return out;
  });
}

// writeFormat1Checkpoint(file, meta): two small tensors and `meta` in format 1.
Napi::Value WriteFormat1Checkpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Archive archive;
    archive.tensors.emplace_back("w", torch::arange(6, torch::kFloat).reshape({2, 3}));
    archive.tensors.emplace_back("n", torch::tensor(7, torch::kLong));
    archive.meta[kUserMetaKey] = stringArg(info[1], "writeFormat1Checkpoint(file, meta): meta");
    writeFormat1Archive(stringArg(info[0], "writeFormat1Checkpoint(file, meta): file"), archive);
    return env.Undefined();
  });
}

}  // namespace

void InitInternals(Napi::Env env, Napi::Object exports) {
  auto internal = Napi::Object::New(env);
  internal.Set("lossCheck", Napi::Function::New(env, LossCheck, "lossCheck"));
  internal.Set("prepareBatch", Napi::Function::New(env, PrepareBatch, "prepareBatch"));
  internal.Set("readCheckpoint", Napi::Function::New(env, ReadCheckpoint, "readCheckpoint"));
  internal.Set("writeFormat1Checkpoint", Napi::Function::New(env, WriteFormat1Checkpoint, "writeFormat1Checkpoint"));
  exports.Set("__internal", internal);
}

}  // namespace torchts
