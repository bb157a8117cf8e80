"""xresnet18/34/50 with the module tree of fastai's XResNet (fastai itself is not installed
here): an nn.Sequential of three stem ConvLayers (0-2), a max pool (3), four stages of
ResBlocks (4-7), then pool, flatten, dropout and the Linear (8-11). A ConvLayer is
Sequential(conv, bn[, relu]); a ResBlock holds `convpath`, and `idpath` = [avg pool when
strided] + [1x1 ConvLayer when the width changes]. Names in its state_dict are therefore
the ones fastai's own xresnet has, which is what torchts's PyTorch export is checked against."""
import torch.nn as nn


def conv_layer(ni, nf, ks=3, stride=1, act=True):
    layers = [nn.Conv2d(ni, nf, ks, stride, ks // 2, bias=False), nn.BatchNorm2d(nf)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, expansion, ni, width, stride):
        super().__init__()
        nf = width * expansion
        if expansion == 1:
            path = [conv_layer(ni, width, 3, stride), conv_layer(width, nf, 3, act=False)]
        else:
            path = [conv_layer(ni, width, 1), conv_layer(width, width, 3, stride), conv_layer(width, nf, 1, act=False)]
        self.convpath = nn.Sequential(*path)
        idpath = [nn.AvgPool2d(stride, ceil_mode=True)] if stride != 1 else []
        if ni != nf:
            idpath.append(conv_layer(ni, nf, 1, act=False))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.convpath(x) + self.idpath(x))


DEPTHS = {18: (1, (2, 2, 2, 2)), 34: (1, (3, 4, 6, 3)), 50: (4, (3, 4, 6, 3))}


def xresnet(depth, n_out):
    expansion, blocks = DEPTHS[depth]
    stem = [conv_layer(3, 32, stride=2), conv_layer(32, 32), conv_layer(32, 64)]
    stages, ni = [], 64
    for i, count in enumerate(blocks):
        width = 64 << i
        stage = []
        for b in range(count):
            stage.append(ResBlock(expansion, ni, width, 2 if i > 0 and b == 0 else 1))
            ni = width * expansion
        stages.append(nn.Sequential(*stage))
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.0), nn.Linear(ni, n_out)]
    return nn.Sequential(*stem, nn.MaxPool2d(3, 2, 1), *stages, *head)
