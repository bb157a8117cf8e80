// Batch-level tensor work on the device: uint8 NHWC -> float, projective warp, lighting,
// normalisation, and the mixup / cutmix blend.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "torch_compat.h"

namespace torchts {

// Per-image projective warp + lighting, or (no matrices) a plain resize to `size`.
struct AugmentSpec {
  int64_t size = 0;
  std::vector<float> matrices;    // n*9 row-major, output [-1,1] coords -> input coords
  std::vector<float> brightness;  // n, added in logit space
  std::vector<float> contrast;    // n, multiplies in logit space
};

// Mixup (no box) or cutmix (box [x0, y0, x1, y1) in pixels of the augmented image).
struct MixSpec {
  std::vector<int64_t> perm;
  std::vector<float> lambda;
  std::optional<std::array<int64_t, 4>> box;
};

// One batch as the native side sees it. `images` wraps the caller's bytes without a copy.
struct BatchSpec {
  torch::Tensor images;   // uint8 [n, h, w, 3] on the CPU
  int64_t n = 0, h = 0, w = 0;
  torch::Tensor labels;   // int64 [n], or undefined
  torch::Tensor targets;  // float [n, classes], or undefined
  std::optional<AugmentSpec> augment;
  std::optional<MixSpec> mix;
  // Side of the image the model sees (after augment).
  int64_t outHeight() const { return augment ? augment->size : h; }
  int64_t outWidth() const { return augment ? augment->size : w; }
};

// Per-channel statistics in [0, 1] units; empty = no normalisation beyond /255.
struct Normalisation {
  std::vector<float> mean;
  std::vector<float> std;
};

struct PrepareOptions {
  torch::Device device = torch::kCPU;
  bool channelsLast = false;  // memory format handed to the model
  bool pin = false;           // page-lock host bytes before a non_blocking copy (CUDA)
};

// uint8 NHWC bytes -> normalised float NCHW on the device, augmented when asked.
torch::Tensor prepareImages(const BatchSpec& batch, const Normalisation& norm, const PrepareOptions& options);

// Blends the (normalised) images with their partners: mixup or cutmix.
torch::Tensor mixImages(const torch::Tensor& images, const MixSpec& mix);

// Sampling grid [n, size, size, 2] for row-major 3x3 projective matrices [n, 9].
torch::Tensor projectiveGrid(const torch::Tensor& matrices, int64_t size);

}  // namespace torchts
