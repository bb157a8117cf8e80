// fastai-style XResNets (xresnet18/34/50), see shared/reference/fastai-behaviour.md.
//
// Parameter names (the layout of a state_dict of ours):
//   stem.{0,1,2}.conv.weight, stem.{0,1,2}.bn.*          three 3x3 conv-BN-ReLU (3->32 s2, 32->32, 32->64)
//   stages.S.B.convs.K.conv.weight, stages.S.B.convs.K.bn.*   stage S (0..3), block B, conv K of the
//                                                         residual branch (2 convs, or 3 for the bottleneck)
//   stages.S.B.shortcut.conv.weight, stages.S.B.shortcut.bn.* 1x1 conv + BN, only when channels change
//                                                         (the 2x2 average pool before it has no weights)
//   fc.weight, fc.bias                                    the classifier after global average pooling
#pragma once
#include "registry.h"

namespace torchts {

// depth: 18, 34 or 50. Kaiming normal (fan_in) conv and linear weights, zero biases,
// BN weight 1 except the last BN of each residual branch, which starts at 0.
ClassifierPtr makeXResNet(int depth, int64_t numClasses);

}  // namespace torchts
