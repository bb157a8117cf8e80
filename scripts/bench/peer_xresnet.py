"""xresnet18 in plain PyTorch after fastai's design, for the benchmark peers (fastai is not
installed here): a 3-conv stem, residual blocks whose shortcut average-pools when strided and
projects when widths differ, the last BN of each branch starting at zero, kaiming init."""
import torch.nn as nn
import torch.nn.functional as F


def conv_layer(cin, cout, stride=1, act=True, zero_bn=False):
    bn = nn.BatchNorm2d(cout)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    parts = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn]
    if act:
        parts.append(nn.ReLU(inplace=True))
    return nn.Sequential(*parts)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv_layer(cin, cout, stride), conv_layer(cout, cout, act=False, zero_bn=True))
        skip = [nn.AvgPool2d(2, ceil_mode=True)] if stride != 1 else []
        if cin != cout:
            skip += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.skip = nn.Sequential(*skip)

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


def xresnet18(num_classes):
    stem = [conv_layer(3, 32, 2), conv_layer(32, 32), conv_layer(32, 64), nn.MaxPool2d(3, 2, 1)]
    blocks, cin = [], 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for k in range(2):
            blocks.append(ResBlock(cin, width, 2 if stage > 0 and k == 0 else 1))
            cin = width
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    model = nn.Sequential(*stem, *blocks, *head)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
