"""MobileNetV3-Large (Howard et al. 2019, "Searching for MobileNetV3", Table 1) as a
segmentation backbone.

Inverted residual blocks with optional squeeze-and-excitation (hard-sigmoid gate) and
ReLU or hard-swish. For dense prediction the strides of the last stage can be replaced by
dilation (Section 6.4 of the paper; DeepLabV3's atrous backbone), so features end at
output stride 16 or 8 rather than 32. ``width`` scales every channel count (rounded to a
multiple of 8, as the paper's multipliers are), for small variants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """The nearest multiple of ``divisor`` to ``value``, never more than 10 % below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class BlockConfig:
    kernel: int
    expanded: int
    out: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


# Table 1 of the paper: kernel, expansion size, output channels, SE, NL (HS or RE), stride.
LARGE = (
    BlockConfig(3, 16, 16, False, False, 1),
    BlockConfig(3, 64, 24, False, False, 2),
    BlockConfig(3, 72, 24, False, False, 1),
    BlockConfig(5, 72, 40, True, False, 2),
    BlockConfig(5, 120, 40, True, False, 1),
    BlockConfig(5, 120, 40, True, False, 1),
    BlockConfig(3, 240, 80, False, True, 2),
    BlockConfig(3, 200, 80, False, True, 1),
    BlockConfig(3, 184, 80, False, True, 1),
    BlockConfig(3, 184, 80, False, True, 1),
    BlockConfig(3, 480, 112, True, True, 1),
    BlockConfig(3, 672, 112, True, True, 1),
    BlockConfig(5, 672, 160, True, True, 2),
    BlockConfig(5, 960, 160, True, True, 1),
    BlockConfig(5, 960, 160, True, True, 1),
)
STEM_CHANNELS = 16
LAST_CONV_EXPANSION = 6  # the final 1x1 conv has 6x the last block's output channels (160 -> 960)
LOW_LEVEL_BLOCK = 5  # the last block at output stride 8 (40 channels): LR-ASPP's low-level feature


def conv_bn_act(in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1,
                groups: int = 1, activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias) + batch norm + activation; 'same' padding for any dilation."""
    padding = (kernel - 1) // 2 * dilation
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 to a quarter of the channels, ReLU, 1x1 back,
    hard-sigmoid gate multiplying the input (Section 5.3 of the paper)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when it would not expand), depthwise kxk, optional SE,
    1x1 linear projection; identity added when stride is 1 and channels match."""

    def __init__(self, in_channels: int, config: BlockConfig, width: float, stride: int, dilation: int) -> None:
        super().__init__()
        expanded = make_divisible(config.expanded * width)
        out_channels = make_divisible(config.out * width)
        activation = nn.Hardswish if config.hard_swish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_bn_act(in_channels, expanded, 1, activation=activation))
        layers.append(conv_bn_act(expanded, expanded, config.kernel, stride, dilation, groups=expanded,
                                  activation=activation))
        if config.squeeze_excite:
            layers.append(SqueezeExcite(expanded))
        layers.append(conv_bn_act(expanded, out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3Features(nn.Module):
    """The MobileNetV3-Large feature extractor (no classifier). ``forward`` returns the
    low-level features (output stride 8) and the high-level ones (``output_stride``)."""

    def __init__(self, in_channels: int = 3, width: float = 1.0, output_stride: int = 16) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        stem = make_divisible(STEM_CHANNELS * width)
        layers: list[nn.Module] = [conv_bn_act(in_channels, stem, 3, stride=2, activation=nn.Hardswish)]
        current_stride, dilation, channels = 2, 1, stem
        for config in LARGE:
            stride = config.stride
            if current_stride * stride > output_stride:
                dilation *= stride
                stride = 1
            else:
                current_stride *= stride
            block = InvertedResidual(channels, config, width, stride, dilation)
            layers.append(block)
            channels = block.out_channels
        self.low_channels = make_divisible(LARGE[LOW_LEVEL_BLOCK].out * width)
        self.high_channels = make_divisible(LAST_CONV_EXPANSION * LARGE[-1].out * width)
        layers.append(conv_bn_act(channels, self.high_channels, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.low_index = LOW_LEVEL_BLOCK + 1  # after the stem

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = x
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index == self.low_index:
                low = x
        return low, x
