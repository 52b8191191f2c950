"""MobileNetV2 (Sandler et al. 2018), CIFAR variant: stride 1 in the stem and the
second stage, so 32x32 inputs end at 4x4 rather than 1x1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.models._registry import CIFAR_NORMALIZATION, MNIST_NORMALIZATION, register

# (expansion, out_planes, blocks, stride) per stage.
STAGES = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 linear projection; identity add when shapes match."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_planes * expansion
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.use_residual = stride == 1 and in_planes == out_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self.bn1(self.conv1(x)))
        out = F.relu6(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + x if self.use_residual else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks = []
        in_planes = 32
        for expansion, out_planes, count, stride in STAGES:
            for index in range(count):
                blocks.append(InvertedResidual(in_planes, out_planes, expansion, stride if index == 0 else 1))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(320, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu6(self.bn2(self.conv2(out)))
        return self.linear(torch.flatten(self.pool(out), 1))


@register(
    family="mobilenetv2",
    in_channels=3,
    input_sizes={3: (32, 32), 1: (28, 28)},
    normalizations={3: CIFAR_NORMALIZATION, 1: MNIST_NORMALIZATION},
    default_data="cifar10",
)
def mobilenetv2(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """MobileNetV2, CIFAR variant: inverted residuals with depthwise convolutions."""
    return MobileNetV2(num_classes, in_channels)
