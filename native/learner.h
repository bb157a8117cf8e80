// Learner core: a model (model.h) with its optimizer and its loss. Plain C++; every method
// except the constructor runs on the Learner's worker thread (learner_binding.cc).
#pragma once
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "augment.h"
#include "checkpoint.h"
#include "data_parallel.h"
#include "model.h"
#include "torch_compat.h"

namespace torchts {

enum class OptimizerKind { AdamW, SGD };

// Every field is set by the binding (option_schema.h): the defaults live in TypeScript.
struct LearnerOptions {
  ModelOptions model;
  OptimizerKind optimizer;
  double weightDecay;
  double beta2;
  double eps;
  double labelSmoothing;
  uint64_t seed;
  // BatchNorm layers use their running statistics while training (and leave them unchanged).
  bool frozenBatchNorm;
};

// What a training step reports.
struct StepResult {
  double loss;  // data-parallel: the mean over every rank
  bool stop;    // data-parallel: some rank asked to stop after this step (requestStop)
};

// The step's hyper-parameters: one lr per group (stem, body, head), or one for all, and
// beta1/momentum.
struct Hyper {
  std::vector<double> lrs;
  double mom;
};

struct EvalResult {
  double loss = 0;
  int64_t correct = 0;
  torch::Tensor probs;  // [n, c] float on the CPU, when asked
};

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int group = 0;
  bool trainable = true;
};

// Thrown when the loss is NaN or infinite; the step is not applied.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class LearnerCore {
 public:
  // Seeds the global generator with options.seed, then builds the model: same seed, same weights.
  explicit LearnerCore(const LearnerOptions& options);

  StepResult trainStep(const BatchSpec& batch, const Hyper& hyper);
  EvalResult evalStep(const BatchSpec& batch, bool wantProbs);
  torch::Tensor predict(const BatchSpec& batch) { return model_.predict(batch); }
  torch::Tensor logits(const BatchSpec& batch) { return model_.logits(batch); }

  // Groups [0, upTo) stop training their weights; their 1-D parameters (norm weights and
  // biases) keep training, as fastai's train_bn does. 0 unfreezes everything.
  void freeze(int upTo);
  void resetOptimizer();

  void save(const std::string& path, const std::string& meta);
  std::string load(const std::string& path);
  LoadReport loadTorchvision(const std::string& path, bool skipHead);

  // The weights as a checkpoint holds them: parameters, then buffers, on the CPU.
  NamedTensors stateDict() const { return model_.stateDict(); }
  std::vector<std::string> nonFiniteWeights() const { return model_.nonFiniteWeights(); }

  // Names, shapes and groups (immutable after construction); `frozenUpTo` gives trainable.
  std::vector<ParamInfo> parameters(int frozenUpTo) const;
  int groupCount() const { return model_.groupCount(); }
  int64_t numClasses() const { return model_.options().numClasses; }
  const torch::Device& device() const { return model_.device(); }

  // Data-parallel training (data_parallel.h): joins the group; from then on every step averages
  // the gradients over the ranks.
  void joinGroup(const GroupOptions& options, bool overlap);
  const DataParallel* parallel() const { return parallel_.get(); }
  // Sums `values` over every rank (the values themselves when there is no group).
  std::vector<double> allReduce(const std::vector<double>& values);
  void reportFailure(const std::string& message) noexcept {
    if (parallel_) parallel_->reportFailure(message);
  }
  // Safe from any thread: the ranks stop together after the next step (StepResult::stop).
  void requestStop() const { stopRequested_ = true; }

 private:
  struct OptGroup {
    int group;   // model group (stem, body, head)
    bool decay;  // weight decay applies
  };

  void buildOptimizer();
  void applyHyper(const Hyper& hyper);
  void zeroGrad();
  // Train mode, but BatchNorm in eval mode when its statistics are frozen.
  void trainMode();

  // fp16 loss scaling: unscales the gradients; false when one is not finite (skip the step).
  bool unscaleGradients();
  NamedTensors optimizerState() const;
  void restoreOptimizerState(const NamedTensors& tensors);
  const char* optimizerName() const { return options_.optimizer == OptimizerKind::AdamW ? "adamw" : "sgd"; }

  LearnerOptions options_;
  ModelCore model_;
  std::vector<OptGroup> optGroups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  // Dynamic fp16 loss scaling as torch.cuda.amp.GradScaler does it: its initial scale, halved on
  // overflow, doubled after kScaleGrowthInterval good steps.
  static constexpr double kInitialLossScale = 65536.0;
  static constexpr int kScaleGrowthInterval = 2000;
  double lossScale_ = kInitialLossScale;
  int goodSteps_ = 0;
  std::unique_ptr<DataParallel> parallel_;
  int64_t steps_ = 0;
  mutable std::atomic<bool> stopRequested_{false};
};

}  // namespace torchts
