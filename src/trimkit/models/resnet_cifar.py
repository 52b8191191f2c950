"""CIFAR ResNets of He et al. (2016), 6n+2 layers, option-A (zero-padding) shortcuts.

Module names follow the widely used akamaster/pytorch_resnet_cifar10 checkpoints
(``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``linear``), so their state dicts load
as they are (after the ``module.`` prefix of DataParallel is stripped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.models._registry import IMAGENET_NORMALIZATION, register


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride``, then place input channels among zero channels.

    ``source[j]`` is the input channel that output channel ``j`` copies, or -1 for a
    zero channel. Built as in the paper, the inputs sit in the middle with ``pad`` zero
    channels on each side (``F.pad`` on the channel dimension). Pruning edits
    ``source`` and ``in_channels``, so a pruned shortcut stays exact; it has no
    parameters, so checkpoints are unaffected.
    """

    def __init__(self, stride: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        pad = (out_channels - in_channels) // 2
        self.stride = stride
        self.in_channels = in_channels
        self.source = [-1] * pad + list(range(in_channels)) + [-1] * (out_channels - in_channels - pad)

    def _padding(self) -> tuple[int, int] | None:
        """(before, after) if ``source`` is zeros, the inputs in order, zeros; else None."""
        before = next((j for j, s in enumerate(self.source) if s != -1), len(self.source))
        if self.source[before : before + self.in_channels] != list(range(self.in_channels)):
            return None
        after = len(self.source) - before - self.in_channels
        if any(s != -1 for s in self.source[before + self.in_channels :]):
            return None
        return before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        padding = self._padding()
        if padding is not None:
            return F.pad(x, (0, 0, 0, 0, *padding))
        zero = x.new_zeros(x.shape[0], 1, *x.shape[2:])
        index = torch.tensor([s if s >= 0 else self.in_channels for s in self.source], device=x.device)
        return torch.cat([x, zero], 1).index_select(1, index)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, in_channels={self.in_channels}, out_channels={len(self.source)}"


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = ZeroPadShortcut(stride, in_planes, planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layers = []
            for index in range(blocks):
                layers.append(BasicBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(torch.flatten(self.pool(out), 1))


_COMMON = dict(
    family="resnet_cifar",
    in_channels=3,
    input_sizes={3: (32, 32), 1: (28, 28)},
    normalizations={3: IMAGENET_NORMALIZATION},
    default_data="cifar10",
)


@register(**_COMMON)
def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet-20, option-A shortcuts."""
    return CifarResNet(20, num_classes, in_channels)


@register(**_COMMON)
def resnet32(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet-32, option-A shortcuts."""
    return CifarResNet(32, num_classes, in_channels)


@register(**_COMMON)
def resnet44(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet-44, option-A shortcuts."""
    return CifarResNet(44, num_classes, in_channels)


@register(**_COMMON)
def resnet56(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet-56, option-A shortcuts."""
    return CifarResNet(56, num_classes, in_channels)


@register(**_COMMON)
def resnet110(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet-110, option-A shortcuts."""
    return CifarResNet(110, num_classes, in_channels)
