"""DeepLabV3 (Chen et al. 2017, "Rethinking Atrous Convolution for Semantic Image
Segmentation") on a MobileNetV3-Large backbone, the robots seed's student.

Atrous spatial pyramid pooling (Section 3.3 of the paper): a 1x1 branch, three 3x3
branches at rates (6, 12, 18) for output stride 16 (doubled at output stride 8), and an
image-pooling branch, each with 256 filters and batch norm, concatenated and projected by
a 1x1 convolution. As in the widely published DeepLabV3-MobileNetV3-Large (11.0 M
parameters at 21 classes, the seed's "11.1x10^6"), a 3x3 convolution follows the
projection before the 1x1 classifier; logits are upsampled bilinearly to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.models._registry import register
from trimkit.models._segmentation_heads import (SEGMENTATION_DATA, SEGMENTATION_INPUT_SIZES,
                                                SEGMENTATION_NORMALIZATIONS, upsample_to)
from trimkit.models.mobilenetv3 import MobileNetV3Features, conv_bn_act, make_divisible

ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36), 32: (3, 6, 9)}


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average, 1x1 conv + BN + ReLU, broadcast back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = conv_bn_act(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(self.pool(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...], dropout: float = 0.5) -> None:
        super().__init__()
        branches: list[nn.Module] = [conv_bn_act(in_channels, out_channels, 1)]
        branches += [conv_bn_act(in_channels, out_channels, 3, dilation=rate) for rate in rates]
        branches.append(ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = conv_bn_act(len(branches) * out_channels, out_channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.project(torch.cat([branch(x) for branch in self.branches], dim=1)))


class DeepLabV3Head(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, channels: int, rates: tuple[int, ...]) -> None:
        super().__init__(ASPP(in_channels, channels, rates), conv_bn_act(channels, channels, 3),
                         nn.Conv2d(channels, num_classes, 1))


class DeepLabV3MobileNetV3(nn.Module):
    def __init__(self, num_classes: int = 21, in_channels: int = 3, width: float = 1.0, output_stride: int = 16,
                 aspp_channels: int = 256) -> None:
        super().__init__()
        self.backbone = MobileNetV3Features(in_channels, width, output_stride)
        self.head = DeepLabV3Head(self.backbone.high_channels, num_classes, make_divisible(aspp_channels),
                                  ASPP_RATES[output_stride])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, high = self.backbone(x)
        return upsample_to(self.head(high), x)


@register(
    family="deeplabv3",
    in_channels=3,
    input_sizes=SEGMENTATION_INPUT_SIZES,
    normalizations=SEGMENTATION_NORMALIZATIONS,
    default_data=SEGMENTATION_DATA,
    task="segmentation",
)
def deeplabv3_mobilenetv3_large(num_classes: int = 21, in_channels: int = 3, width: float = 1.0,
                                output_stride: int = 16, aspp_channels: int = 256) -> nn.Module:
    """DeepLabV3 (ASPP) on a dilated MobileNetV3-Large; width and ASPP size scale it down."""
    return DeepLabV3MobileNetV3(num_classes, in_channels, width, output_stride, aspp_channels)
