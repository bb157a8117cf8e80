// Learner core: a model, its optimizer and its loss on one device. Plain C++; every
// method except the constructor runs on the Learner's worker thread (learner_binding.cc).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "augment.h"
#include "checkpoint.h"
#include "models/registry.h"
#include "torch_compat.h"

namespace torchts {

enum class Amp { None, BF16, FP16 };
enum class OptimizerKind { AdamW, SGD };

struct LearnerOptions {
  std::string arch;
  int64_t numClasses = 0;
  torch::Device device = torch::kCPU;
  OptimizerKind optimizer = OptimizerKind::AdamW;
  double weightDecay = 0.01;
  double beta2 = 0.99;
  double eps = 1e-5;
  double labelSmoothing = 0.0;
  Normalisation norm;
  Amp amp = Amp::None;
  int64_t seed = 0;
};

// The step's hyper-parameters: one lr per group (stem, body, head) and beta1/momentum.
struct Hyper {
  std::vector<double> lrs;
  double mom = 0.9;
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
  explicit LearnerCore(const LearnerOptions& options);

  double trainStep(const BatchSpec& batch, const Hyper& hyper);
  EvalResult evalStep(const BatchSpec& batch, bool wantProbs);
  torch::Tensor predict(const BatchSpec& batch);  // [n, c] float on the CPU

  // Groups [0, upTo) stop training their weights; their 1-D parameters (norm weights and
  // biases) keep training, as fastai's train_bn does. 0 unfreezes everything.
  void freeze(int upTo);
  void resetOptimizer();

  void save(const std::string& path, const std::string& meta);
  std::string load(const std::string& path);
  LoadReport loadTorchvision(const std::string& path, bool skipHead);

  // Names, shapes and groups (immutable after construction); `frozenUpTo` gives trainable.
  std::vector<ParamInfo> parameters(int frozenUpTo) const;
  int groupCount() const { return static_cast<int>(groups_.size()); }
  int64_t numClasses() const { return options_.numClasses; }
  const torch::Device& device() const { return options_.device; }

 private:
  struct OptGroup {
    int group;   // model group (stem, body, head)
    bool decay;  // weight decay applies
  };

  void buildOptimizer();
  void applyHyper(const Hyper& hyper);
  torch::Tensor forward(const torch::Tensor& images);
  torch::Tensor inputs(const BatchSpec& batch);
  torch::Tensor onDevice(const torch::Tensor& t) const;
  void zeroGrad();
  // fp16 loss scaling: unscales the gradients; false when one is not finite (skip the step).
  bool unscaleGradients();
  NamedTensors optimizerState() const;
  void restoreOptimizerState(const NamedTensors& tensors);

  LearnerOptions options_;
  ClassifierPtr model_;
  std::vector<NamedTensors> groups_;
  std::vector<OptGroup> optGroups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int frozenUpTo_ = 0;
  double lossScale_ = 65536.0;
  int goodSteps_ = 0;
};

}  // namespace torchts
