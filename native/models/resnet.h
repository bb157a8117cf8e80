// torchvision-compatible ResNets (resnet18/34/50).
//
// Submodules are registered under torchvision's names so that state_dict keys and
// shapes are identical: conv1, bn1, layer1..layer4 (blocks "0", "1", ...; inside a
// block conv1/bn1/conv2/bn2[/conv3/bn3] and downsample.0 (conv) / downsample.1 (BN)),
// fc. A torch.save(model.state_dict()) file from torchvision loads by name.
#pragma once
#include "registry.h"

namespace torchts {

// depth: 18, 34 or 50. Weights initialised as torchvision does (kaiming normal
// fan_out for convs, BN weight 1 / bias 0, PyTorch's default Linear init).
ClassifierPtr makeResNet(int depth, int64_t numClasses);

}  // namespace torchts
