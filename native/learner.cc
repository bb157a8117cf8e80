#include "learner.h"

#include <cmath>
#include <map>
#include <sstream>

#include <c10/core/DeviceGuard.h>

#include "errors.h"
#include "losses.h"

namespace torchts {
namespace {

std::string formatList(const std::vector<double>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

// The model, built after seeding, so the same seed gives the same initial weights.
ModelCore seededModel(const LearnerOptions& options) {
  torch::manual_seed(options.seed);
  return ModelCore(options.model);
}

}  // namespace

LearnerCore::LearnerCore(const LearnerOptions& options) : options_(options), model_(seededModel(options)) {
  buildOptimizer();
}

// lr and beta1/momentum below are placeholders: applyHyper sets both before every step.
void LearnerCore::buildOptimizer() {
  constexpr double kPlaceholderLr = 1e-3, kPlaceholderMom = 0.9;
  std::vector<torch::optim::OptimizerParamGroup> paramGroups;
  optGroups_.clear();
  const auto& groups = model_.groups();
  for (int g = 0; g < groupCount(); ++g) {
    for (bool decay : {true, false}) {
      std::vector<torch::Tensor> params;
      // 1-D parameters are biases and norm weights: no weight decay for them.
      for (const auto& [name, p] : groups[g]) {
        if ((p.dim() > 1) == decay) params.push_back(p);
      }
      if (params.empty()) continue;
      const double wd = decay ? options_.weightDecay : 0.0;
      std::unique_ptr<torch::optim::OptimizerOptions> groupOptions;
      if (options_.optimizer == OptimizerKind::AdamW) {
        groupOptions = std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(kPlaceholderLr)
                                                                         .betas({kPlaceholderMom, options_.beta2})
                                                                         .eps(options_.eps)
                                                                         .weight_decay(wd));
      } else {
        groupOptions = std::make_unique<torch::optim::SGDOptions>(
            torch::optim::SGDOptions(kPlaceholderLr).momentum(kPlaceholderMom).weight_decay(wd));
      }
      paramGroups.emplace_back(params, std::move(groupOptions));
      optGroups_.push_back({g, decay});
    }
  }
  // Every group carries its own options; the optimizer-wide ones are never used.
  if (options_.optimizer == OptimizerKind::AdamW) {
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        paramGroups, torch::optim::AdamWOptions(kPlaceholderLr).betas({kPlaceholderMom, options_.beta2}).eps(options_.eps));
  } else {
    optimizer_ = std::make_unique<torch::optim::SGD>(paramGroups, torch::optim::SGDOptions(kPlaceholderLr).momentum(kPlaceholderMom));
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

void LearnerCore::zeroGrad() {
  for (auto& p : model_.network().parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

bool LearnerCore::unscaleGradients() {
  std::vector<torch::Tensor> finite;
  const double inverse = 1.0 / lossScale_;
  for (auto& p : model_.network().parameters()) {
    if (!p.grad().defined()) continue;
    p.mutable_grad().mul_(inverse);
    finite.push_back(torch::isfinite(p.grad()).all());
  }
  if (finite.empty()) return true;
  return torch::stack(finite).all().item<bool>();
}

void LearnerCore::trainMode() {
  model_.network().train();
  if (!options_.frozenBatchNorm) return;
  for (const auto& module : model_.network().modules(false)) {
    if (module->as<torch::nn::BatchNorm2d>()) module->eval();
  }
}

StepResult LearnerCore::trainStep(const BatchSpec& batch, const Hyper& hyper) {
  c10::DeviceGuard deviceGuard(device());  // the current CUDA device of this thread, for cuda:N
  applyHyper(hyper);
  trainMode();
  auto x = model_.inputs(batch);
  auto logits = model_.forward(x);
  auto loss = batchLoss(logits, model_.onDevice(batch.labels), model_.onDevice(batch.targets), batch.mix,
                        options_.labelSmoothing)
                  .mean();
  zeroGrad();
  ++steps_;
  const bool scaling = options_.model.amp == Amp::FP16 && device().is_cuda();
  if (parallel_) parallel_->beforeBackward(steps_);
  try {
    (scaling ? loss * lossScale_ : loss).backward();
  } catch (...) {
    if (parallel_) parallel_->abandonStep();
    throw;
  }
  double value = loss.item<double>();
  bool stop = false;
  if (parallel_) {
    // Every rank gets the same mean loss, so all of them take the same branch below.
    const auto agreed = parallel_->afterBackward(value, stopRequested_.exchange(false));
    value = agreed.meanLoss;
    stop = agreed.stop;
  }
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
    return {value, stop};
  }
  optimizer_->step();
  if (scaling && ++goodSteps_ >= kScaleGrowthInterval) {
    lossScale_ *= 2;
    goodSteps_ = 0;
  }
  return {value, stop};
}

void LearnerCore::joinGroup(const GroupOptions& options, bool overlap) {
  if (parallel_) badInput("joinGroup: this learner already belongs to a process group");
  c10::DeviceGuard deviceGuard(device());
  parallel_ = std::make_unique<DataParallel>(options, model_.network(), device(), overlap);
}

std::vector<double> LearnerCore::allReduce(const std::vector<double>& values) {
  if (!parallel_) return values;
  c10::DeviceGuard deviceGuard(device());
  return parallel_->allReduce(values);
}

EvalResult LearnerCore::evalStep(const BatchSpec& batch, bool wantProbs) {
  c10::DeviceGuard deviceGuard(device());
  torch::NoGradGuard noGrad;
  model_.network().eval();
  auto logits = model_.forward(model_.inputs(batch)).to(torch::kFloat);
  auto labels = model_.onDevice(batch.labels);
  auto targets = model_.onDevice(batch.targets);
  EvalResult result;
  result.loss = batchLoss(logits, labels, targets, std::nullopt, options_.labelSmoothing).mean().item<double>();
  auto truth = labels.defined() ? labels : targets.argmax(1);
  result.correct = logits.argmax(1).eq(truth).sum().item<int64_t>();
  if (wantProbs) result.probs = torch::softmax(logits, 1).cpu().contiguous();
  return result;
}

void LearnerCore::freeze(int upTo) {
  const auto& groups = model_.groups();
  for (int g = 0; g < groupCount(); ++g) {
    for (const auto& [name, p] : groups[g]) p.set_requires_grad(g >= upTo || p.dim() <= 1);
  }
}

void LearnerCore::resetOptimizer() { buildOptimizer(); }

std::vector<ParamInfo> LearnerCore::parameters(int frozenUpTo) const {
  std::vector<ParamInfo> out;
  const auto& groups = model_.groups();
  for (int g = 0; g < groupCount(); ++g) {
    for (const auto& [name, p] : groups[g]) {
      out.push_back({name, p.sizes().vec(), g, g >= frozenUpTo || p.dim() <= 1});
    }
  }
  return out;
}

NamedTensors LearnerCore::optimizerState() const {
  NamedTensors out;
  auto& state = optimizer_->state();
  for (const auto& item : model_.network().named_parameters()) {
    auto found = state.find(compat::optimizerStateKey(state, item.value()));
    if (found == state.end()) continue;
    const std::string prefix = kOptimizerPrefix + item.key() + ".";
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
  for (const auto& item : model_.network().named_parameters()) {
    const std::string prefix = kOptimizerPrefix + item.key() + ".";
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
  Archive archive = model_.checkpoint();
  for (auto& named : optimizerState()) archive.tensors.push_back(std::move(named));
  archive.meta[kUserMetaKey] = meta;
  archive.meta["optimizer"] = optimizerName();
  archive.meta["lossScale"] = std::to_string(lossScale_);
  writeArchive(path, archive);
}

std::string LearnerCore::load(const std::string& path) {
  Archive rest = model_.load(path);
  const auto meta = [&](const char* key) {
    auto found = rest.meta.find(key);
    return found == rest.meta.end() ? std::string("?") : found->second;
  };
  if (meta("optimizer") == optimizerName()) {
    restoreOptimizerState(rest.tensors);
  } else {
    buildOptimizer();
  }
  if (meta("lossScale") != "?") lossScale_ = std::stod(meta("lossScale"));
  goodSteps_ = 0;
  // Every rank read the same file; copying rank 0's weights makes sure they match bit for bit.
  if (parallel_) parallel_->syncFromRankZero("loading " + path);
  return userMeta(rest);
}

LoadReport LearnerCore::loadTorchvision(const std::string& path, bool skipHead) {
  auto report = model_.loadTorchvision(path, skipHead);
  buildOptimizer();
  if (parallel_) parallel_->syncFromRankZero("loading " + path);
  return report;
}

}  // namespace torchts
