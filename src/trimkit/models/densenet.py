"""A small DenseNet-BC for 32x32 inputs (Huang et al. 2017): dense blocks whose layers
concatenate their output to their input, joined by compressing transitions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.models._registry import CIFAR_NORMALIZATION, MNIST_NORMALIZATION, register


class Bottleneck(nn.Module):
    """BN-ReLU-1x1 conv to 4k channels, BN-ReLU-3x3 conv to k, concatenated to the input."""

    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(
        self,
        block_sizes: tuple[int, ...] = (6, 6, 6),
        growth: int = 12,
        compression: float = 0.5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for index, size in enumerate(block_sizes):
            layers = []
            for _ in range(size):
                layers.append(Bottleneck(planes, growth))
                planes += growth
            stages.append(nn.Sequential(*layers))
            if index < len(block_sizes) - 1:
                out_planes = int(planes * compression)
                stages.append(Transition(planes, out_planes))
                planes = out_planes
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(self.conv1(x))
        out = F.relu(self.bn(out))
        return self.linear(torch.flatten(self.pool(out), 1))


@register(
    family="densenet",
    in_channels=3,
    input_sizes={3: (32, 32), 1: (28, 28)},
    normalizations={3: CIFAR_NORMALIZATION, 1: MNIST_NORMALIZATION},
    default_data="cifar10",
)
def densenet_small(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """DenseNet-BC, 3 dense blocks of 6 bottleneck layers, growth 12."""
    return DenseNet((6, 6, 6), 12, 0.5, num_classes, in_channels)
