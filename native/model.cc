#include "model.h"

#include <c10/core/DeviceGuard.h>

#include <stdexcept>

namespace torchts {
namespace {

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

}  // namespace

ModelCore::ModelCore(const ModelOptions& options) : options_(options) {
  network_ = createModel(options_.arch, options_.numClasses);
  network_->to(options_.device);
  if (options_.device.is_cuda()) {
    // channels_last weights for the conv kernels that prefer NHWC (tensor cores).
    torch::NoGradGuard noGrad;
    for (auto& p : network_->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  groups_ = network_->paramGroups();
}

torch::Tensor ModelCore::onDevice(const torch::Tensor& t) const { return t.defined() ? t.to(options_.device) : t; }

torch::Tensor ModelCore::inputs(const BatchSpec& batch) const {
  PrepareOptions prep;
  prep.device = options_.device;
  prep.channelsLast = options_.device.is_cuda();
  prep.pin = options_.device.is_cuda();
  return prepareImages(batch, options_.norm, prep);
}

torch::Tensor ModelCore::forward(const torch::Tensor& images) {
  const bool autocast = options_.device.is_cuda() && options_.amp != Amp::None;
  AutocastScope scope(autocast, options_.amp == Amp::FP16 ? at::kHalf : at::kBFloat16);
  return network_->forward(images);
}

torch::Tensor ModelCore::logits(const BatchSpec& batch) {
  c10::DeviceGuard deviceGuard(options_.device);  // the current CUDA device of this thread, for cuda:N
  torch::NoGradGuard noGrad;
  network_->eval();
  return forward(inputs(batch)).to(torch::kFloat).cpu().contiguous();
}

torch::Tensor ModelCore::predict(const BatchSpec& batch) {
  auto probs = torch::softmax(logits(batch), 1).contiguous();
  // A diverged or damaged model gives NaN everywhere: say so rather than predict a class.
  if (!torch::isfinite(probs).all().item<bool>()) {
    throw std::runtime_error("the model's outputs are not finite (NaN or infinite): its weights are damaged, or the fit that made it diverged");
  }
  return probs;
}

std::vector<std::string> ModelCore::nonFiniteWeights() const {
  std::vector<std::string> names;
  for (const auto& item : network_->named_parameters()) {
    if (!torch::isfinite(item.value()).all().item<bool>()) names.push_back(item.key());
  }
  for (const auto& item : network_->named_buffers()) {
    if (item.value().is_floating_point() && !torch::isfinite(item.value()).all().item<bool>()) names.push_back(item.key());
  }
  return names;
}

Archive ModelCore::checkpoint() const {
  Archive archive;
  for (const auto& item : network_->named_parameters()) archive.tensors.emplace_back(item.key(), item.value().detach().cpu());
  for (const auto& item : network_->named_buffers()) archive.tensors.emplace_back(item.key(), item.value().detach().cpu());
  archive.meta["arch"] = options_.arch;
  archive.meta["numClasses"] = std::to_string(options_.numClasses);
  return archive;
}

Archive ModelCore::load(const std::string& path) {
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
  NamedTensors weights, rest;
  for (auto& [name, t] : archive.tensors) {
    (name.rfind(kOptimizerPrefix, 0) == 0 ? rest : weights).emplace_back(name, t);
  }
  loadStateDict(*network_, weights, /*skipHead=*/false);
  archive.tensors = std::move(rest);
  return archive;
}

LoadReport ModelCore::loadTorchvision(const std::string& path, bool skipHead) {
  auto state = readTorchSave(path);
  try {
    return loadStateDict(*network_, state, skipHead);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());  // which file does not fit
  }
}

}  // namespace torchts
