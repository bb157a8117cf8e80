// A classifier on one device with the input preparation it expects: everything inference needs,
// and nothing of training (no optimizer, no loss). LearnerCore (learner.h) trains one. Plain C++;
// every method except the constructor runs on the owner's worker thread.
#pragma once
#include <string>
#include <vector>

#include "augment.h"
#include "checkpoint.h"
#include "models/registry.h"
#include "torch_compat.h"

namespace torchts {

enum class Amp { None, BF16, FP16 };

// Every field is set by the binding (option_schema.h); none has a default here.
struct ModelOptions {
  std::string arch;
  int64_t numClasses;
  torch::Device device;
  Normalisation norm;
  Amp amp;
};

class ModelCore {
 public:
  // Builds the network with the global generator's current state: seed it first for fixed
  // initial weights (LearnerCore does).
  explicit ModelCore(const ModelOptions& options);

  // uint8 batch -> the normalised, augmented, mixed float input on the device.
  torch::Tensor inputs(const BatchSpec& batch) const;
  // Logits, under autocast when amp is on and the device is CUDA.
  torch::Tensor forward(const torch::Tensor& images);
  // Softmax probabilities [n, c], float on the CPU, eval mode; throws when they are not finite.
  torch::Tensor predict(const BatchSpec& batch);
  // The logits [n, c] before the softmax, float on the CPU, eval mode (what an export is checked against).
  torch::Tensor logits(const BatchSpec& batch);
  torch::Tensor onDevice(const torch::Tensor& t) const;
  // Names of the parameters and buffers holding NaN or infinite values (none: empty).
  std::vector<std::string> nonFiniteWeights() const;
  // The parameters and buffers by state_dict name, on the CPU (what checkpoint() holds).
  NamedTensors stateDict() const { return checkpoint().tensors; }

  // The weights (parameters, then buffers, by state_dict name) and the arch and class count,
  // as a checkpoint holds them; the caller adds its own tensors and metadata.
  Archive checkpoint() const;
  // Reads a checkpoint of this arch and class count and copies its weights in. Returns the rest
  // of the file: its metadata and the optimizer tensors (kOptimizerPrefix), which a model drops.
  Archive load(const std::string& path);
  LoadReport loadTorchvision(const std::string& path, bool skipHead);

  Classifier& network() { return *network_; }
  const Classifier& network() const { return *network_; }
  // Parameters by group (stem, body, head); fixed at construction.
  const std::vector<NamedTensors>& groups() const { return groups_; }
  int groupCount() const { return static_cast<int>(groups_.size()); }
  const ModelOptions& options() const { return options_; }
  const torch::Device& device() const { return options_.device; }

 private:
  ModelOptions options_;
  ClassifierPtr network_;
  std::vector<NamedTensors> groups_;
};

}  // namespace torchts
