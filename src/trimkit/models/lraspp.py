"""LR-ASPP, the "Lite Reduced Atrous Spatial Pyramid Pooling" head of MobileNetV3
(Howard et al. 2019, Section 6.4), on a MobileNetV3-Large backbone at output stride 16.

The high-level features go through a 1x1 conv + BN + ReLU (128 channels), gated by a
squeeze-and-excitation-like branch (pooling, 1x1 conv, sigmoid); the result is upsampled
to the output-stride-8 features and classified, and a 1x1 classifier of those low-level
features is added. The paper pools with a large strided kernel; here the gate pools
globally (the common implementation, 3.2 M parameters at 21 classes), which also keeps
the model independent of input size.
"""

from __future__ import annotations

import torch
from torch import nn

from trimkit.models._registry import register
from trimkit.models._segmentation_heads import (SEGMENTATION_DATA, SEGMENTATION_INPUT_SIZES,
                                                SEGMENTATION_NORMALIZATIONS, upsample_to)
from trimkit.models.mobilenetv3 import MobileNetV3Features, conv_bn_act, make_divisible


class LRASPPHead(nn.Module):
    def __init__(self, low_channels: int, high_channels: int, num_classes: int, inter_channels: int) -> None:
        super().__init__()
        self.reduce = conv_bn_act(high_channels, inter_channels, 1)
        self.gate_pool = nn.AdaptiveAvgPool2d(1)
        self.gate_conv = nn.Conv2d(high_channels, inter_channels, 1, bias=False)
        self.gate = nn.Sigmoid()
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        gated = self.reduce(high) * self.gate(self.gate_conv(self.gate_pool(high)))
        return self.low_classifier(low) + self.high_classifier(upsample_to(gated, low))


class LRASPPMobileNetV3(nn.Module):
    def __init__(self, num_classes: int = 21, in_channels: int = 3, width: float = 1.0,
                 inter_channels: int = 128) -> None:
        super().__init__()
        self.backbone = MobileNetV3Features(in_channels, width, output_stride=16)
        self.head = LRASPPHead(self.backbone.low_channels, self.backbone.high_channels, num_classes,
                               make_divisible(inter_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.backbone(x)
        return upsample_to(self.head(low, high), x)


@register(
    family="lraspp",
    in_channels=3,
    input_sizes=SEGMENTATION_INPUT_SIZES,
    normalizations=SEGMENTATION_NORMALIZATIONS,
    default_data=SEGMENTATION_DATA,
    task="segmentation",
)
def lraspp_mobilenetv3_large(num_classes: int = 21, in_channels: int = 3, width: float = 1.0,
                             inter_channels: int = 128) -> nn.Module:
    """LR-ASPP on MobileNetV3-Large (output strides 8 and 16); width scales it down."""
    return LRASPPMobileNetV3(num_classes, in_channels, width, inter_channels)
