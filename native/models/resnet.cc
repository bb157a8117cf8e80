#include "resnet.h"

#include <stdexcept>

namespace torchts {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// A residual block; torchvision's BasicBlock and Bottleneck share this interface.
struct Block : nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

// The shortcut when shape changes: strided 1x1 conv then BN, named "0" and "1".
nn::Sequential downsample(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(conv(in, out, 1, stride, 0), nn::BatchNorm2d(out));
}

struct BasicBlock : Block {
  static constexpr int64_t kExpansion = 1;
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential shortcut{nullptr};

  BasicBlock(int64_t in, int64_t width, int64_t stride) {
    conv1 = register_module("conv1", conv(in, width, 3, stride, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(width));
    conv2 = register_module("conv2", conv(width, width, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(width));
    if (stride != 1 || in != width) shortcut = register_module("downsample", downsample(in, width, stride));
  }

  torch::Tensor forward(torch::Tensor x) override {
    // In place where PyTorch's blocks are: BN outputs are not needed by their backward.
    auto y = bn1(conv1(x)).relu_();
    y = bn2(conv2(y));
    return y.add_(shortcut ? shortcut->forward(x) : x).relu_();
  }
};

// torchvision's Bottleneck (v1.5): the stride sits on the 3x3 conv.
struct Bottleneck : Block {
  static constexpr int64_t kExpansion = 4;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential shortcut{nullptr};

  Bottleneck(int64_t in, int64_t width, int64_t stride) {
    const int64_t out = width * kExpansion;
    conv1 = register_module("conv1", conv(in, width, 1, 1, 0));
    bn1 = register_module("bn1", nn::BatchNorm2d(width));
    conv2 = register_module("conv2", conv(width, width, 3, stride, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(width));
    conv3 = register_module("conv3", conv(width, out, 1, 1, 0));
    bn3 = register_module("bn3", nn::BatchNorm2d(out));
    if (stride != 1 || in != out) shortcut = register_module("downsample", downsample(in, out, stride));
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto y = bn1(conv1(x)).relu_();
    y = bn2(conv2(y)).relu_();
    y = bn3(conv3(y));
    return y.add_(shortcut ? shortcut->forward(x) : x).relu_();
  }
};

// One of layer1..layer4: blocks registered as "0", "1", ... like an nn.Sequential.
struct Layer : nn::Module {
  std::vector<std::shared_ptr<Block>> blocks;

  void add(std::shared_ptr<Block> block) {
    blocks.push_back(register_module(std::to_string(blocks.size()), std::move(block)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& block : blocks) x = block->forward(x);
    return x;
  }
};

class ResNet : public Classifier {
 public:
  template <typename BlockT>
  static std::shared_ptr<ResNet> build(const std::vector<int>& depths, int64_t numClasses) {
    auto net = std::make_shared<ResNet>();
    net->conv1_ = net->register_module("conv1", conv(3, 64, 7, 2, 3));
    net->bn1_ = net->register_module("bn1", nn::BatchNorm2d(64));
    int64_t channels = 64;
    for (size_t i = 0; i < depths.size(); ++i) {
      auto layer = std::make_shared<Layer>();
      const int64_t width = 64 << i;
      for (int b = 0; b < depths[i]; ++b) {
        const int64_t stride = (i > 0 && b == 0) ? 2 : 1;
        layer->add(std::make_shared<BlockT>(channels, width, stride));
        channels = width * BlockT::kExpansion;
      }
      net->layers_.push_back(net->register_module("layer" + std::to_string(i + 1), layer));
    }
    net->fc_ = net->register_module("fc", nn::Linear(channels, numClasses));
    net->initWeights();
    return net;
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = bn1_(conv1_(x)).relu_();
    x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& layer : layers_) x = layer->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc_(x);
  }

  std::vector<NamedTensors> paramGroups() override { return groupByPrefix(*this, {"conv1.", "bn1."}, headPrefix()); }

  std::string headPrefix() const override { return "fc"; }

 private:
  void initWeights() {
    torch::NoGradGuard noGrad;
    for (auto& module : modules(false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
        nn::init::ones_(bn->weight);
        nn::init::zeros_(bn->bias);
      }
    }
    // fc keeps libtorch's default Linear init, which is PyTorch's.
  }

  nn::Conv2d conv1_{nullptr};
  nn::BatchNorm2d bn1_{nullptr};
  std::vector<std::shared_ptr<Layer>> layers_;
  nn::Linear fc_{nullptr};
};

}  // namespace

ClassifierPtr makeResNet(int depth, int64_t numClasses) {
  switch (depth) {
    case 18: return ResNet::build<BasicBlock>({2, 2, 2, 2}, numClasses);
    case 34: return ResNet::build<BasicBlock>({3, 4, 6, 3}, numClasses);
    case 50: return ResNet::build<Bottleneck>({3, 4, 6, 3}, numClasses);
    default: throw std::invalid_argument("resnet depth " + std::to_string(depth) + " is not one of 18, 34, 50");
  }
}

}  // namespace torchts
