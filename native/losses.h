// Classification losses, per sample (the caller takes the mean). Computed in float32
// whatever the logits' dtype, so autocast does not lower the loss's precision.
#pragma once
#include "augment.h"
#include "torch_compat.h"

namespace torchts {

// Cross entropy against class indices with label smoothing `eps`:
// (1 - eps) * -log p_y + (eps / c) * sum_k -log p_k  (torch's cross_entropy(label_smoothing=eps)).
torch::Tensor smoothedCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, double eps);

// Cross entropy against target distributions [n, c]: -sum_k t_k log p_k, with the targets
// smoothed to (1 - eps) * t + eps / c first (equal to the above for one-hot targets).
torch::Tensor softTargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets, double eps);

// The loss of one batch, per sample: labels or targets, mixed with the partners when `mix`
// is set: lambda * L(pred, y) + (1 - lambda) * L(pred, y[perm]).
torch::Tensor batchLoss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& targets,
                        const std::optional<MixSpec>& mix, double eps);

}  // namespace torchts
