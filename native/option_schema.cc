#include "option_schema.h"

#include <cmath>

#include "batch_schema.h"
#include "errors.h"
#include "js_values.h"
#include "input_limits.h"
#include "runtime.h"

namespace torchts {
namespace {

// options.<key>: a finite number in [min, maxExclusive).
double numberInRange(const Napi::Object& object, const char* key, double min, double maxExclusive) {
  const std::string what = std::string("options.") + key;
  const double v = numberField(object, key, what);
  if (!(v >= min && v < maxExclusive)) {
    badInput(what + " = " + std::to_string(v) + "; expected a value in [" + std::to_string(min) + ", " +
             std::to_string(maxExclusive) + ")");
  }
  return v;
}

// mean and std may be null (no normalisation) but not left out.
Normalisation normalisationOption(const Napi::Object& object) {
  for (const char* key : {"mean", "std"}) {
    if (object.Get(key).IsUndefined()) {
      badInput(std::string("options.") + key + " must be 3 numbers (R, G, B), or null for none; got undefined");
    }
  }
  return parseNormalisation(object);
}

Amp ampOption(const Napi::Object& object) {
  const auto amp = stringField(object, "amp", "options.amp");
  if (amp == "none") return Amp::None;
  if (amp == "bf16") return Amp::BF16;
  if (amp == "fp16") return Amp::FP16;
  badInput("options.amp is '" + amp + "'; expected 'none', 'bf16' or 'fp16'");
}

OptimizerKind optimizerOption(const Napi::Object& object) {
  const auto name = stringField(object, "optimizer", "options.optimizer");
  if (name == "adamw") return OptimizerKind::AdamW;
  if (name == "sgd") return OptimizerKind::SGD;
  badInput("options.optimizer is '" + name + "'; expected 'adamw' or 'sgd'");
}

ModelOptions modelFields(const Napi::Object& object) {
  auto arch = stringField(object, "arch", "options.arch");
  const int64_t numClasses = intField(object, "numClasses", "options.numClasses", 1, kMaxClasses);
  const auto device = parseDevice(stringField(object, "device", "options.device"));
  auto norm = normalisationOption(object);
  const Amp amp = ampOption(object);
  return ModelOptions{std::move(arch), numClasses, device, std::move(norm), amp};
}

}  // namespace

ModelOptions parseModelOptions(const Napi::Value& value, const std::string& what) {
  return modelFields(objectArg(value, what));
}

LearnerOptions parseLearnerOptions(const Napi::Value& value) {
  auto object = objectArg(value, "Learner options");
  auto model = modelFields(object);
  const OptimizerKind optimizer = optimizerOption(object);
  const double weightDecay = numberInRange(object, "weightDecay", 0.0, 1e6);
  const double beta2 = numberInRange(object, "beta2", 0.0, 1.0);
  const double eps = numberInRange(object, "eps", 0.0, 1.0);
  const double labelSmoothing = numberInRange(object, "labelSmoothing", 0.0, 1.0);
  const auto seed = static_cast<uint64_t>(intField(object, "seed", "options.seed", 0, kMaxSeed));
  const bool frozenBatchNorm = boolField(object, "frozenBatchNorm", "options.frozenBatchNorm");
  return LearnerOptions{std::move(model), optimizer, weightDecay, beta2, eps, labelSmoothing, seed, frozenBatchNorm};
}

GroupOptions parseGroupOptions(const Napi::Value& value) {
  auto object = objectArg(value, "joinGroup options");
  GroupOptions o;
  o.worldSize = static_cast<int>(intField(object, "worldSize", "joinGroup options.worldSize", 1, 1 << 20));
  o.rank = static_cast<int>(intField(object, "rank", "joinGroup options.rank", 0, o.worldSize - 1));
  o.masterAddr = stringField(object, "masterAddr", "joinGroup options.masterAddr");
  if (o.masterAddr.empty()) badInput("joinGroup options.masterAddr must name the host of rank 0; got an empty string");
  o.masterPort = static_cast<int>(intField(object, "masterPort", "joinGroup options.masterPort", 1, 65535));
  o.hostStore = boolField(object, "hostStore", "joinGroup options.hostStore");
  o.prefix = stringField(object, "prefix", "joinGroup options.prefix");
  o.iface = stringField(object, "iface", "joinGroup options.iface");
  o.backend = stringField(object, "backend", "joinGroup options.backend");
  if (o.backend != "auto" && o.backend != "gloo" && o.backend != "nccl") {
    badInput("joinGroup options.backend is '" + o.backend + "'; expected 'auto', 'gloo' or 'nccl'");
  }
  constexpr int64_t kDay = 24 * 3600 * 1000;
  o.timeout = std::chrono::milliseconds(intField(object, "timeoutMs", "joinGroup options.timeoutMs", 100, kDay));
  o.joinTimeout = std::chrono::milliseconds(intField(object, "joinTimeoutMs", "joinGroup options.joinTimeoutMs", 100, kDay));
  return o;
}

Hyper parseHyper(const Napi::Value& value, int groupCount) {
  auto object = objectArg(value, "hyper");
  Hyper hyper;
  hyper.lrs = numberList(object.Get("lrs"), "hyper.lrs");
  if (hyper.lrs.size() != 1 && hyper.lrs.size() != static_cast<size_t>(groupCount)) {
    badInput("hyper.lrs has " + std::to_string(hyper.lrs.size()) + " entries; expected 1 or one per group (" +
             std::to_string(groupCount) + ")");
  }
  for (size_t i = 0; i < hyper.lrs.size(); ++i) {
    if (!(std::isfinite(hyper.lrs[i]) && hyper.lrs[i] >= 0)) {
      badInput("hyper.lrs[" + std::to_string(i) + "] = " + std::to_string(hyper.lrs[i]) +
               "; expected a finite learning rate >= 0");
    }
  }
  hyper.mom = numberField(object, "mom", "hyper.mom");
  if (!(hyper.mom >= 0 && hyper.mom < 1)) {
    badInput("hyper.mom = " + std::to_string(hyper.mom) + "; expected a momentum in [0, 1)");
  }
  return hyper;
}

}  // namespace torchts
