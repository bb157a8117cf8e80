#include "batch_schema.h"

#include <cmath>
#include <sstream>
#include <string>
#include <utility>

#include "errors.h"
#include "js_values.h"
#include "input_limits.h"

namespace torchts {
namespace {

AugmentSpec parseAugment(const Napi::Value& value, int64_t n) {
  auto object = objectArg(value, "batch.augment");
  AugmentSpec spec;
  spec.size = intField(object, "size", "batch.augment.size", 1, kMaxSide);
  if (hasField(object, "matrices")) {
    spec.matrices = floatArray(object.Get("matrices"), "batch.augment.matrices");
    requireLength(spec.matrices.size(), n * 9, "batch.augment.matrices", "n*9");
    requireFinite(spec.matrices, "batch.augment.matrices");
  }
  for (auto [key, target] : {std::pair{"brightness", &spec.brightness}, std::pair{"contrast", &spec.contrast}}) {
    if (!hasField(object, key)) continue;
    const std::string what = std::string("batch.augment.") + key;
    *target = floatArray(object.Get(key), what);
    requireLength(target->size(), n, what, "n");
    requireFinite(*target, what);
  }
  return spec;
}

std::array<int64_t, 4> parseBox(const Napi::Value& value, int64_t height, int64_t width) {
  auto list = numberList(value, "batch.mix.box");
  if (list.size() != 4) badInput("batch.mix.box must be [x0, y0, x1, y1]; got " + std::to_string(list.size()) + " numbers");
  std::array<int64_t, 4> box{};
  for (size_t i = 0; i < 4; ++i) {
    if (list[i] != std::floor(list[i])) badInput("batch.mix.box must hold whole pixel coordinates");
    box[i] = static_cast<int64_t>(list[i]);
  }
  if (box[0] < 0 || box[1] < 0 || box[0] > box[2] || box[1] > box[3] || box[2] > width || box[3] > height) {
    std::ostringstream out;
    out << "batch.mix.box [" << box[0] << ", " << box[1] << ", " << box[2] << ", " << box[3] << ") is not inside the "
        << width << "x" << height << " image; expected 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height";
    badInput(out.str());
  }
  return box;
}

torch::Tensor parseLabels(const Napi::Value& value, int64_t n, int64_t numClasses) {
  auto labels = int32Array(value, "batch.labels");
  requireLength(labels.size(), n, "batch.labels", "n");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= numClasses) {
      badInput("batch.labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
               " is out of range; expected a class index in [0, " + std::to_string(numClasses) + ")");
    }
  }
  return torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kLong);
}

torch::Tensor parseTargets(const Napi::Value& value, int64_t n, int64_t numClasses) {
  auto targets = floatArray(value, "batch.targets");
  requireLength(targets.size(), n * numClasses, "batch.targets", "n*numClasses");
  requireFinite(targets, "batch.targets");
  return torch::tensor(targets, torch::kFloat).view({n, numClasses});
}

}  // namespace

MixSpec parseMix(const Napi::Value& value, int64_t n, int64_t height, int64_t width) {
  auto object = objectArg(value, "batch.mix");
  MixSpec spec;
  auto perm = int32Array(object.Get("perm"), "batch.mix.perm");
  requireLength(perm.size(), n, "batch.mix.perm", "n");
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= n) {
      badInput("batch.mix.perm[" + std::to_string(i) + "] = " + std::to_string(perm[i]) +
               " is out of range; expected a batch index in [0, " + std::to_string(n) + ")");
    }
    spec.perm.push_back(perm[i]);
  }
  spec.lambda = floatArray(object.Get("lambda"), "batch.mix.lambda");
  requireLength(spec.lambda.size(), n, "batch.mix.lambda", "n");
  for (size_t i = 0; i < spec.lambda.size(); ++i) {
    if (!(spec.lambda[i] >= 0.0f && spec.lambda[i] <= 1.0f)) {
      std::ostringstream out;
      out << "batch.mix.lambda[" << i << "] = " << spec.lambda[i] << "; expected a weight in [0, 1]";
      badInput(out.str());
    }
  }
  if (hasField(object, "box")) spec.box = parseBox(object.Get("box"), height, width);
  return spec;
}

BatchSpec parseBatch(const Napi::Value& value, int64_t numClasses, Napi::Uint8Array* images) {
  auto object = objectArg(value, "batch");
  BatchSpec spec;
  spec.n = intField(object, "n", "batch.n", 1, kMaxBatch);
  spec.h = intField(object, "h", "batch.h", 1, kMaxSide);
  spec.w = intField(object, "w", "batch.w", 1, kMaxSide);
  auto array = uint8Array(object.Get("images"), "batch.images", "a Uint8Array of n*h*w*3 RGB bytes (NHWC)");
  const int64_t expected = spec.n * spec.h * spec.w * 3;
  if (static_cast<int64_t>(array.ByteLength()) != expected) {
    badInput("batch.images has " + std::to_string(array.ByteLength()) + " bytes; expected n*h*w*3 = " +
             std::to_string(spec.n) + "*" + std::to_string(spec.h) + "*" + std::to_string(spec.w) + "*3 = " +
             std::to_string(expected));
  }
  spec.images = torch::from_blob(array.Data(), {spec.n, spec.h, spec.w, 3}, torch::kUInt8);
  *images = array;

  if (hasField(object, "labels")) spec.labels = parseLabels(object.Get("labels"), spec.n, numClasses);
  if (hasField(object, "targets")) {
    if (spec.labels.defined()) badInput("batch has both labels and targets; expected one of them");
    spec.targets = parseTargets(object.Get("targets"), spec.n, numClasses);
  }
  if (hasField(object, "augment")) spec.augment = parseAugment(object.Get("augment"), spec.n);
  if (hasField(object, "mix")) spec.mix = parseMix(object.Get("mix"), spec.n, spec.outHeight(), spec.outWidth());
  return spec;
}

std::shared_ptr<BatchSpec> ownedBatch(const Napi::Value& value, int64_t numClasses) {
  Napi::Uint8Array images;
  auto batch = std::make_shared<BatchSpec>(parseBatch(value, numClasses, &images));
  batch->images = batch->images.clone();
  return batch;
}

Normalisation parseNormalisation(const Napi::Object& object) {
  Normalisation norm;
  const bool hasMean = hasField(object, "mean"), hasStd = hasField(object, "std");
  if (hasMean != hasStd) badInput("mean and std go together; got only " + std::string(hasMean ? "mean" : "std"));
  if (!hasMean) return norm;
  for (auto [key, target] : {std::pair{"mean", &norm.mean}, std::pair{"std", &norm.std}}) {
    auto list = numberList(object.Get(key), key);
    if (list.size() != 3) badInput(std::string(key) + " must hold 3 numbers (R, G, B); got " + std::to_string(list.size()));
    for (double v : list) {
      if (!std::isfinite(v)) badInput(std::string(key) + " must hold finite numbers");
      target->push_back(static_cast<float>(v));
    }
  }
  for (size_t c = 0; c < 3; ++c) {
    if (!(norm.std[c] > 0)) badInput("std[" + std::to_string(c) + "] = " + std::to_string(norm.std[c]) + "; expected > 0");
  }
  return norm;
}

}  // namespace torchts
