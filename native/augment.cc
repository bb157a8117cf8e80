#include "augment.h"

namespace torchts {
namespace F = torch::nn::functional;

torch::Tensor projectiveGrid(const torch::Tensor& matrices, int64_t size) {
  const auto n = matrices.size(0);
  auto options = matrices.options();
  // Output pixel centres with align_corners = true: -1 and 1 are the outer pixel centres.
  auto axis = torch::linspace(-1.0, 1.0, size, options);
  auto ys = axis.view({size, 1}).expand({size, size});
  auto xs = axis.view({1, size}).expand({size, size});
  auto ones = torch::ones({size, size}, options);
  auto points = torch::stack({xs, ys, ones}, -1).view({1, size * size, 3});
  // [n, S*S, 3] = points @ M^T
  auto mapped = torch::matmul(points.expand({n, size * size, 3}), matrices.view({n, 3, 3}).transpose(1, 2));
  auto w = mapped.narrow(2, 2, 1);
  // Keep the homogeneous divide finite for degenerate matrices; the sign is kept.
  auto safeW = torch::where(w.abs() < 1e-8, torch::full_like(w, 1e-8), w);
  return (mapped.narrow(2, 0, 2) / safeW).view({n, size, size, 2});
}

namespace {

torch::Tensor perImage(const std::vector<float>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kFloat).to(device).view({-1, 1, 1, 1});
}

torch::Tensor warp(const torch::Tensor& x, const AugmentSpec& aug, const torch::Device& device) {
  if (aug.matrices.empty()) {
    if (x.size(2) == aug.size && x.size(3) == aug.size) return x;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{aug.size, aug.size})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  }
  auto matrices = torch::tensor(aug.matrices, torch::kFloat).to(device).view({x.size(0), 9});
  auto grid = projectiveGrid(matrices, aug.size);
  return F::grid_sample(x, grid, F::GridSampleFuncOptions()
                                     .mode(torch::kBilinear)
                                     .padding_mode(torch::kReflection)
                                     .align_corners(true));
}

// y = sigmoid((logit(x) + b) * c) on [0, 1] values.
torch::Tensor lighting(torch::Tensor x, const AugmentSpec& aug, const torch::Device& device) {
  if (aug.brightness.empty() && aug.contrast.empty()) return x;
  auto logit = torch::logit(x, 1e-7);
  if (!aug.brightness.empty()) logit = logit + perImage(aug.brightness, device);
  if (!aug.contrast.empty()) logit = logit * perImage(aug.contrast, device);
  return torch::sigmoid(logit);
}

}  // namespace

torch::Tensor prepareImages(const BatchSpec& batch, const Normalisation& norm, const PrepareOptions& options) {
  torch::Tensor bytes = batch.images;
  if (options.device.is_cuda()) {
    // Copy the uint8 bytes (4x smaller than floats) and convert on the device.
    if (options.pin) bytes = compat::pinned(bytes);
    bytes = bytes.to(options.device, /*non_blocking=*/options.pin);
  }
  // NHWC uint8 -> float; the NCHW view of NHWC memory is channels_last.
  auto x = bytes.to(torch::kFloat).permute({0, 3, 1, 2}).div(255.0);
  if (batch.augment) {
    x = warp(x, *batch.augment, options.device);
    x = lighting(x, *batch.augment, options.device);
  }
  // Same arithmetic as (x/255 - mean)/std in PyTorch, so the inputs match its bit for bit.
  if (!norm.mean.empty()) {
    auto mean = torch::tensor(norm.mean, torch::kFloat).to(options.device).view({1, 3, 1, 1});
    auto std = torch::tensor(norm.std, torch::kFloat).to(options.device).view({1, 3, 1, 1});
    x = (x - mean) / std;
  }
  if (batch.mix) x = mixImages(x, *batch.mix);
  return x.contiguous(options.channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

torch::Tensor mixImages(const torch::Tensor& images, const MixSpec& mix) {
  const auto device = images.device();
  auto perm = torch::tensor(mix.perm, torch::kLong).to(device);
  auto partners = images.index_select(0, perm);
  if (!mix.box) {
    auto lambda = perImage(mix.lambda, device);
    return partners + lambda * (images - partners);
  }
  const auto [x0, y0, x1, y1] = *mix.box;
  auto out = images.clone();
  out.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).copy_(partners.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
  return out;
}

}  // namespace torchts
