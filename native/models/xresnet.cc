#include "xresnet.h"

#include <stdexcept>

namespace torchts {
namespace {

namespace nn = torch::nn;

// conv (no bias) -> BN -> optional ReLU; the unit everything below is made of.
struct ConvBn : nn::Module {
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
  bool relu;

  ConvBn(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool relu, bool zeroBn)
      : relu(relu) {
    conv = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
    torch::NoGradGuard noGrad;
    // A residual branch ending in a zero BN starts as the identity: training begins shallow.
    bn->weight.fill_(zeroBn ? 0.0 : 1.0);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = bn(conv(x));
    return relu ? torch::relu_(x) : x;  // in place: BN's backward does not need its output
  }
};

// A list of ConvBn registered as "0", "1", ...
struct ConvBnList : nn::Module {
  std::vector<std::shared_ptr<ConvBn>> items;
  void add(std::shared_ptr<ConvBn> item) {
    items.push_back(register_module(std::to_string(items.size()), std::move(item)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& item : items) x = item->forward(x);
    return x;
  }
};

// fastai's ResBlock. Basic (expansion 1): 3x3(stride), 3x3. Bottleneck (expansion 4):
// 1x1, 3x3(stride), 1x1. Shortcut: 2x2 average pool (ceil mode) when strided, then a
// 1x1 conv + BN when the channel count changes.
struct XBlock : nn::Module {
  std::shared_ptr<ConvBnList> convs;
  std::shared_ptr<ConvBn> shortcut;
  int64_t stride;

  XBlock(int64_t expansion, int64_t in, int64_t width, int64_t stride) : stride(stride) {
    const int64_t out = width * expansion;
    convs = register_module("convs", std::make_shared<ConvBnList>());
    if (expansion == 1) {
      convs->add(std::make_shared<ConvBn>(in, width, 3, stride, true, false));
      convs->add(std::make_shared<ConvBn>(width, out, 3, 1, false, true));
    } else {
      convs->add(std::make_shared<ConvBn>(in, width, 1, 1, true, false));
      convs->add(std::make_shared<ConvBn>(width, width, 3, stride, true, false));
      convs->add(std::make_shared<ConvBn>(width, out, 1, 1, false, true));
    }
    if (in != out) shortcut = register_module("shortcut", std::make_shared<ConvBn>(in, out, 1, 1, false, false));
  }

  torch::Tensor forward(torch::Tensor x) {
    auto identity = x;
    if (stride != 1) identity = torch::avg_pool2d(identity, 2, 2, 0, /*ceil_mode=*/true);
    if (shortcut) identity = shortcut->forward(identity);
    return convs->forward(x).add_(identity).relu_();
  }
};

struct Stage : nn::Module {
  std::vector<std::shared_ptr<XBlock>> blocks;
  void add(std::shared_ptr<XBlock> block) {
    blocks.push_back(register_module(std::to_string(blocks.size()), std::move(block)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& block : blocks) x = block->forward(x);
    return x;
  }
};

struct StageList : nn::Module {
  std::vector<std::shared_ptr<Stage>> stages;
  void add(std::shared_ptr<Stage> stage) {
    stages.push_back(register_module(std::to_string(stages.size()), std::move(stage)));
  }
};

class XResNet : public Classifier {
 public:
  XResNet(int64_t expansion, const std::vector<int>& depths, int64_t numClasses) {
    stem_ = register_module("stem", std::make_shared<ConvBnList>());
    stem_->add(std::make_shared<ConvBn>(3, 32, 3, 2, true, false));
    stem_->add(std::make_shared<ConvBn>(32, 32, 3, 1, true, false));
    stem_->add(std::make_shared<ConvBn>(32, 64, 3, 1, true, false));
    stages_ = register_module("stages", std::make_shared<StageList>());
    int64_t channels = 64;
    for (size_t i = 0; i < depths.size(); ++i) {
      auto stage = std::make_shared<Stage>();
      const int64_t width = 64 << i;
      for (int b = 0; b < depths[i]; ++b) {
        const int64_t stride = (i > 0 && b == 0) ? 2 : 1;
        stage->add(std::make_shared<XBlock>(expansion, channels, width, stride));
        channels = width * expansion;
      }
      stages_->add(stage);
    }
    fc_ = register_module("fc", nn::Linear(channels, numClasses));
    initWeights();
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = stem_->forward(x);
    x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& stage : stages_->stages) x = stage->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    // fastai's head has a dropout here whose default p is 0: an identity, left out.
    return fc_(x);
  }

  std::vector<NamedTensors> paramGroups() override { return groupByPrefix(*this, {"stem."}, headPrefix()); }

  std::string headPrefix() const override { return "fc"; }

 private:
  // fastai's init_cnn: kaiming normal (fan_in, ReLU gain) for conv and linear weights,
  // zero biases. BN weights were set by ConvBn.
  void initWeights() {
    torch::NoGradGuard noGrad;
    for (auto& p : named_parameters(true)) {
      const std::string& name = p.key();
      const bool convOrLinear = name.find(".conv.weight") != std::string::npos || name == "fc.weight";
      if (convOrLinear) nn::init::kaiming_normal_(p.value(), 0.0, torch::kFanIn, torch::kReLU);
    }
    nn::init::zeros_(fc_->bias);
  }

  std::shared_ptr<ConvBnList> stem_;
  std::shared_ptr<StageList> stages_;
  nn::Linear fc_{nullptr};
};

}  // namespace

ClassifierPtr makeXResNet(int depth, int64_t numClasses) {
  switch (depth) {
    case 18: return std::make_shared<XResNet>(1, std::vector<int>{2, 2, 2, 2}, numClasses);
    case 34: return std::make_shared<XResNet>(1, std::vector<int>{3, 4, 6, 3}, numClasses);
    case 50: return std::make_shared<XResNet>(4, std::vector<int>{3, 4, 6, 3}, numClasses);
    default: throw std::invalid_argument("xresnet depth " + std::to_string(depth) + " is not one of 18, 34, 50");
  }
}

}  // namespace torchts
