#include "losses.h"

namespace torchts {

torch::Tensor smoothedCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, double eps) {
  auto logp = torch::log_softmax(logits.to(torch::kFloat), 1);
  auto nll = -logp.gather(1, labels.view({-1, 1})).squeeze(1);
  if (eps == 0.0) return nll;
  // mean over classes of -log p_k is (1/c) * sum_k -log p_k.
  return (1.0 - eps) * nll - eps * logp.mean(1);
}

torch::Tensor softTargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets, double eps) {
  auto logp = torch::log_softmax(logits.to(torch::kFloat), 1);
  auto t = targets.to(torch::kFloat);
  if (eps != 0.0) t = (1.0 - eps) * t + eps / static_cast<double>(logits.size(1));
  return -(t * logp).sum(1);
}

torch::Tensor batchLoss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& targets,
                        const std::optional<MixSpec>& mix, double eps) {
  const auto device = logits.device();
  if (!mix) {
    return targets.defined() ? softTargetCrossEntropy(logits, targets, eps) : smoothedCrossEntropy(logits, labels, eps);
  }
  auto perm = torch::tensor(mix->perm, torch::kLong).to(device);
  auto lambda = torch::tensor(mix->lambda, torch::kFloat).to(device);
  if (targets.defined()) {
    // The loss is linear in the targets, so mixing the targets is the mixed loss.
    auto mixed = lambda.view({-1, 1}) * targets + (1 - lambda.view({-1, 1})) * targets.index_select(0, perm);
    return softTargetCrossEntropy(logits, mixed, eps);
  }
  auto own = smoothedCrossEntropy(logits, labels, eps);
  auto partner = smoothedCrossEntropy(logits, labels.index_select(0, perm), eps);
  return lambda * own + (1 - lambda) * partner;
}

}  // namespace torchts
