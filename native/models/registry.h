// Image classifiers built in C++: torchvision-compatible ResNets and fastai-style XResNets.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "torch_compat.h"

namespace torchts {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// NCHW float input -> logits. Parameters are split into groups for discriminative
// learning rates and freezing: 0 = stem, 1 = body, 2 = head.
struct Classifier : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Every named parameter appears in exactly one group; names as in named_parameters().
  virtual std::vector<NamedTensors> paramGroups() = 0;
  // Prefix of the classifier's parameter names ("fc" for torchvision resnets).
  virtual std::string headPrefix() const = 0;
};
using ClassifierPtr = std::shared_ptr<Classifier>;

// Splits a model's parameters into the three groups by name: names starting with one of
// `stemPrefixes` are the stem, names starting with `headPrefix + "."` the head, the rest the body.
std::vector<NamedTensors> groupByPrefix(torch::nn::Module& model, const std::vector<std::string>& stemPrefixes,
                                        const std::string& headPrefix);

// Throws std::invalid_argument naming `arch` and listing the known names.
ClassifierPtr createModel(const std::string& arch, int64_t numClasses);
std::vector<std::string> modelNames();

}  // namespace torchts
