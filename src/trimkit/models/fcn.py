"""FCN (Long et al. 2015, "Fully Convolutional Networks for Semantic Segmentation") on a
dilated ImageNet-style ResNet (He et al. 2016), the robots seed's teacher (FCN ResNet-101).

The ResNet keeps its 7x7 stem and max pool; the strides of its last stages become
dilations (Yu & Koltun 2016; DeepLab) so features end at ``output_stride`` 8 (both last
stages dilated, the usual FCN-ResNet) or 16 (only the last), not 32. The head is a 3x3
conv to a quarter of the channels + BN + ReLU + dropout, then a 1x1 classifier; logits
are upsampled bilinearly to the input size. ``width`` scales the base width of 64.
"""

from __future__ import annotations

import torch
from torch import nn

from trimkit.models._registry import register
from trimkit.models._segmentation_heads import (SEGMENTATION_DATA, SEGMENTATION_INPUT_SIZES,
                                                SEGMENTATION_NORMALIZATIONS, upsample_to)

DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
          101: ("bottleneck", (3, 4, 23, 3))}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, dilation: int, first_dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, first_dilation, dilation=first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided or dilated), 1x1 expand by 4; the stride sits on the 3x3."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, dilation: int, first_dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, first_dilation, dilation=first_dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class DilatedResNet(nn.Module):
    def __init__(self, depth: int, in_channels: int = 3, width: float = 1.0, output_stride: int = 8) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        kind, counts = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        base = max(8, int(round(64 * width)))
        self.conv1 = nn.Conv2d(in_channels, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, in_planes, current_stride, dilation = [], base, 4, 1
        for index, count in enumerate(counts):
            planes = base * 2 ** index
            stride = 1 if index == 0 else 2
            first_dilation = dilation
            if current_stride * stride > output_stride:
                dilation *= stride
                stride = 1
            else:
                current_stride *= stride
            blocks = [block(in_planes, planes, stride, dilation, first_dilation)]
            in_planes = planes * block.expansion
            blocks += [block(in_planes, planes, 1, dilation, dilation) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class FCNHead(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        inter = in_channels // 4
        super().__init__(nn.Conv2d(in_channels, inter, 3, padding=1, bias=False), nn.BatchNorm2d(inter), nn.ReLU(),
                         nn.Dropout(dropout), nn.Conv2d(inter, num_classes, 1))


class FCNResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 21, in_channels: int = 3, width: float = 1.0,
                 output_stride: int = 8) -> None:
        super().__init__()
        self.backbone = DilatedResNet(depth, in_channels, width, output_stride)
        self.head = FCNHead(self.backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_to(self.head(self.backbone(x)), x)


def _register(depth: int):
    def builder(num_classes: int = 21, in_channels: int = 3, width: float = 1.0, output_stride: int = 8) -> nn.Module:
        return FCNResNet(depth, num_classes, in_channels, width, output_stride)

    builder.__name__ = f"fcn_resnet{depth}"
    builder.__doc__ = (f"FCN on a dilated ResNet-{depth} (output stride 8 by default); width scales it down.")
    return register(family="fcn", in_channels=3, input_sizes=SEGMENTATION_INPUT_SIZES,
                    normalizations=SEGMENTATION_NORMALIZATIONS, default_data=SEGMENTATION_DATA,
                    task="segmentation")(builder)


# FCN-ResNet-50 and -101 (the seed's teacher, 51.9 M parameters without an auxiliary head)
# are built by FCNResNet(50) and FCNResNet(101); they are not listed in the zoo, whose every
# model is exported, profiled and pruned in the test suite.
fcn_resnet18 = _register(18)
