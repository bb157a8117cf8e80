#include "learner.h"

#include <cmath>
#include <sstream>

#include <c10/core/DeviceGuard.h>

#include "losses.h"

namespace torchts {
namespace {

constexpr const char* kOptPrefix = "opt.";

// Autocast on for the enclosing scope of the worker thread, off again on exit or throw.
class AutocastScope {
 public:
  AutocastScope(bool enabled, at::ScalarType dtype) : enabled_(enabled) {
    if (enabled_) compat::setCudaAutocast(true, dtype);
  }
  ~AutocastScope() {
    if (enabled_) compat::setCudaAutocast(false, at::kFloat);
  }

 private:
  bool enabled_;
};

std::string formatList(const std::vector<double>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

}  // namespace

LearnerCore::LearnerCore(const LearnerOptions& options) : options_(options) {
  // Same seed, same initial weights.
  torch::manual_seed(static_cast<uint64_t>(options_.seed));
  model_ = createModel(options_.arch, options_.numClasses);
  model_->to(options_.device);
  if (options_.device.is_cuda()) {
    // channels_last weights for the conv kernels that prefer NHWC (tensor cores).
    torch::NoGradGuard noGrad;
    for (auto& p : model_->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  groups_ = model_->paramGroups();
  buildOptimizer();
}

void LearnerCore::buildOptimizer() {
  std::vector<torch::optim::OptimizerParamGroup> paramGroups;
  optGroups_.clear();
  for (int g = 0; g < groupCount(); ++g) {
    for (bool decay : {true, false}) {
      std::vector<torch::Tensor> params;
      // 1-D parameters are biases and norm weights: no weight decay for them.
      for (const auto& [name, p] : groups_[g]) {
        if ((p.dim() > 1) == decay) params.push_back(p);
      }
      if (params.empty()) continue;
      const double wd = decay ? options_.weightDecay : 0.0;
      std::unique_ptr<torch::optim::OptimizerOptions> groupOptions;
      if (options_.optimizer == OptimizerKind::AdamW) {
        groupOptions = std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(1e-3).betas({0.9, options_.beta2}).eps(options_.eps).weight_decay(wd));
      } else {
        groupOptions = std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(1e-3).momentum(0.9).weight_decay(wd));
      }
      paramGroups.emplace_back(params, std::move(groupOptions));
      optGroups_.push_back({g, decay});
    }
  }
  if (options_.optimizer == OptimizerKind::AdamW) {
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        paramGroups, torch::optim::AdamWOptions(1e-3).betas({0.9, options_.beta2}).eps(options_.eps));
  } else {
    optimizer_ = std::make_unique<torch::optim::SGD>(paramGroups, torch::optim::SGDOptions(1e-3).momentum(0.9));
  }
}

void LearnerCore::applyHyper(const Hyper& hyper) {
  auto& paramGroups = optimizer_->param_groups();
  for (size_t i = 0; i < paramGroups.size(); ++i) {
    const double lr = hyper.lrs.size() == 1 ? hyper.lrs[0] : hyper.lrs[optGroups_[i].group];
    auto& opts = paramGroups[i].options();
    if (options_.optimizer == OptimizerKind::AdamW) {
      static_cast<torch::optim::AdamWOptions&>(opts).lr(lr).betas({hyper.mom, options_.beta2});
    } else {
      static_cast<torch::optim::SGDOptions&>(opts).lr(lr).momentum(hyper.mom);
    }
  }
}

torch::Tensor LearnerCore::onDevice(const torch::Tensor& t) const {
  return t.defined() ? t.to(options_.device) : t;
}

torch::Tensor LearnerCore::inputs(const BatchSpec& batch) {
  PrepareOptions prep;
  prep.device = options_.device;
  prep.channelsLast = options_.device.is_cuda();
  prep.pin = options_.device.is_cuda();
  return prepareImages(batch, options_.norm, prep);
}

torch::Tensor LearnerCore::forward(const torch::Tensor& images) {
  const bool autocast = options_.device.is_cuda() && options_.amp != Amp::None;
  AutocastScope scope(autocast, options_.amp == Amp::FP16 ? at::kHalf : at::kBFloat16);
  return model_->forward(images);
}

void LearnerCore::zeroGrad() {
  for (auto& p : model_->parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

bool LearnerCore::unscaleGradients() {
  std::vector<torch::Tensor> finite;
  const double inverse = 1.0 / lossScale_;
  for (auto& p : model_->parameters()) {
    if (!p.grad().defined()) continue;
    p.mutable_grad().mul_(inverse);
    finite.push_back(torch::isfinite(p.grad()).all());
  }
  if (finite.empty()) return true;
  return torch::stack(finite).all().item<bool>();
}

double LearnerCore::trainStep(const BatchSpec& batch, const Hyper& hyper) {
  c10::DeviceGuard deviceGuard(options_.device);  // the current CUDA device of this thread, for cuda:N
  applyHyper(hyper);
  model_->train();
  auto x = inputs(batch);
  auto logits = forward(x);
  auto loss = batchLoss(logits, onDevice(batch.labels), onDevice(batch.targets), batch.mix, options_.labelSmoothing).mean();
  zeroGrad();
  const bool scaling = options_.amp == Amp::FP16 && options_.device.is_cuda();
  (scaling ? loss * lossScale_ : loss).backward();
  const double value = loss.item<double>();
  if (!std::isfinite(value)) {
    zeroGrad();
    std::ostringstream message;
    message << "loss is " << (std::isnan(value) ? "NaN" : "infinite") << " at this step (lrs " << formatList(hyper.lrs)
            << "); expected a finite loss. The weights were not updated: lower the learning rate, or check the "
               "inputs and targets";
    throw NonFiniteLoss(message.str());
  }
  if (scaling && !unscaleGradients()) {
    // Overflow in fp16: skip this step and halve the scale, as torch.cuda.amp.GradScaler does.
    lossScale_ /= 2;
    goodSteps_ = 0;
    zeroGrad();
    return value;
  }
  optimizer_->step();
  if (scaling && ++goodSteps_ >= 2000) {
    lossScale_ *= 2;
    goodSteps_ = 0;
  }
  return value;
}

EvalResult LearnerCore::evalStep(const BatchSpec& batch, bool wantProbs) {
  c10::DeviceGuard deviceGuard(options_.device);
  torch::NoGradGuard noGrad;
  model_->eval();
  auto logits = forward(inputs(batch)).to(torch::kFloat);
  auto labels = onDevice(batch.labels);
  auto targets = onDevice(batch.targets);
  EvalResult result;
  result.loss = batchLoss(logits, labels, targets, std::nullopt, options_.labelSmoothing).mean().item<double>();
  auto truth = labels.defined() ? labels : targets.argmax(1);
  result.correct = logits.argmax(1).eq(truth).sum().item<int64_t>();
  if (wantProbs) result.probs = torch::softmax(logits, 1).cpu().contiguous();
  return result;
}

torch::Tensor LearnerCore::predict(const BatchSpec& batch) {
  c10::DeviceGuard deviceGuard(options_.device);
  torch::NoGradGuard noGrad;
  model_->eval();
  auto logits = forward(inputs(batch)).to(torch::kFloat);
  return torch::softmax(logits, 1).cpu().contiguous();
}

void LearnerCore::freeze(int upTo) {
  frozenUpTo_ = upTo;
  for (int g = 0; g < groupCount(); ++g) {
    for (auto& [name, p] : groups_[g]) p.set_requires_grad(g >= upTo || p.dim() <= 1);
  }
}

void LearnerCore::resetOptimizer() { buildOptimizer(); }

std::vector<ParamInfo> LearnerCore::parameters(int frozenUpTo) const {
  std::vector<ParamInfo> out;
  for (int g = 0; g < groupCount(); ++g) {
    for (const auto& [name, p] : groups_[g]) {
      out.push_back({name, p.sizes().vec(), g, g >= frozenUpTo || p.dim() <= 1});
    }
  }
  return out;
}

NamedTensors LearnerCore::optimizerState() const {
  NamedTensors out;
  auto& state = optimizer_->state();
  for (const auto& item : model_->named_parameters()) {
    auto found = state.find(compat::optimizerStateKey(state, item.value()));
    if (found == state.end()) continue;
    const std::string prefix = kOptPrefix + item.key() + ".";
    if (options_.optimizer == OptimizerKind::AdamW) {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*found->second);
      out.emplace_back(prefix + "step", torch::tensor(s.step(), torch::kLong));
      out.emplace_back(prefix + "exp_avg", s.exp_avg().detach().cpu());
      out.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq().detach().cpu());
    } else {
      auto& s = static_cast<torch::optim::SGDParamState&>(*found->second);
      if (s.momentum_buffer().defined()) out.emplace_back(prefix + "momentum_buffer", s.momentum_buffer().detach().cpu());
    }
  }
  return out;
}

void LearnerCore::restoreOptimizerState(const NamedTensors& tensors) {
  buildOptimizer();
  std::map<std::string, torch::Tensor> byName(tensors.begin(), tensors.end());
  auto get = [&](const std::string& name) {
    auto found = byName.find(name);
    return found == byName.end() ? torch::Tensor() : found->second;
  };
  auto& state = optimizer_->state();
  for (const auto& item : model_->named_parameters()) {
    const std::string prefix = kOptPrefix + item.key() + ".";
    const auto& p = item.value();
    auto like = [&](const torch::Tensor& t) { return t.to(p.device(), p.scalar_type()).contiguous(p.suggest_memory_format()); };
    if (options_.optimizer == OptimizerKind::AdamW) {
      auto step = get(prefix + "step"), avg = get(prefix + "exp_avg"), sq = get(prefix + "exp_avg_sq");
      if (!step.defined() || !avg.defined() || !sq.defined()) continue;
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step.item<int64_t>());
      s->exp_avg(like(avg));
      s->exp_avg_sq(like(sq));
      state[compat::optimizerStateKey(state, p)] = std::move(s);
    } else {
      auto buffer = get(prefix + "momentum_buffer");
      if (!buffer.defined()) continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(like(buffer));
      state[compat::optimizerStateKey(state, p)] = std::move(s);
    }
  }
}

void LearnerCore::save(const std::string& path, const std::string& meta) {
  Archive archive;
  for (const auto& item : model_->named_parameters()) archive.tensors.emplace_back(item.key(), item.value().detach().cpu());
  for (const auto& item : model_->named_buffers()) archive.tensors.emplace_back(item.key(), item.value().detach().cpu());
  for (auto& named : optimizerState()) archive.tensors.push_back(std::move(named));
  archive.meta["meta"] = meta;
  archive.meta["arch"] = options_.arch;
  archive.meta["numClasses"] = std::to_string(options_.numClasses);
  archive.meta["optimizer"] = options_.optimizer == OptimizerKind::AdamW ? "adamw" : "sgd";
  archive.meta["lossScale"] = std::to_string(lossScale_);
  writeArchive(path, archive);
}

std::string LearnerCore::load(const std::string& path) {
  Archive archive = readArchive(path);
  const auto meta = [&](const char* key) {
    auto found = archive.meta.find(key);
    return found == archive.meta.end() ? std::string("?") : found->second;
  };
  if (meta("arch") != options_.arch || meta("numClasses") != std::to_string(options_.numClasses)) {
    throw std::invalid_argument("checkpoint " + path + " holds a " + meta("arch") + " with " + meta("numClasses") +
                                " classes; expected a " + options_.arch + " with " +
                                std::to_string(options_.numClasses) + " classes");
  }
  NamedTensors weights, optimizer;
  for (auto& [name, t] : archive.tensors) {
    (name.rfind(kOptPrefix, 0) == 0 ? optimizer : weights).emplace_back(name, t);
  }
  loadStateDict(*model_, weights, /*skipHead=*/false);
  if (meta("optimizer") == (options_.optimizer == OptimizerKind::AdamW ? "adamw" : "sgd")) {
    restoreOptimizerState(optimizer);
  } else {
    buildOptimizer();
  }
  if (meta("lossScale") != "?") lossScale_ = std::stod(meta("lossScale"));
  goodSteps_ = 0;
  auto userMeta = archive.meta.find("meta");
  return userMeta == archive.meta.end() ? std::string() : userMeta->second;
}

LoadReport LearnerCore::loadTorchvision(const std::string& path, bool skipHead) {
  auto report = loadStateDict(*model_, readTorchSave(path), skipHead);
  buildOptimizer();
  return report;
}

}  // namespace torchts
