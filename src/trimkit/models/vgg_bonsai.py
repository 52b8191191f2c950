"""The three VGG-inspired models of the Bonsai paper (seed 001, Fig. 4).

3x3 convolutions with padding 1 and ReLU, 2x2 average pooling, then dense layers.
Model A is convolution-heavy, B balanced, C dense-heavy. The paper names no
normalisation layers, so there are none. Inputs: 1x28x28 (MNIST) or 3x32x32 (CIFAR-10).
"""

from __future__ import annotations

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.models._registry import CIFAR_NORMALIZATION, MNIST_NORMALIZATION, register

POOL = "avgpool"

# Layer lists straight from Fig. 4: an int is a conv3 with that many filters.
CONFIGS: dict[str, tuple[list[int | str], list[int]]] = {
    "a": ([64, 64, POOL, 128, 128, 256, POOL], [64, 32]),
    "b": ([64, 64, POOL, 128, 128, 128, 256, POOL], [256, 128, 64, 32]),
    "c": ([2, 2, POOL, 4, 4, 4, POOL], [256, 128, 64, 32]),
}


class BonsaiVGG(nn.Module):
    def __init__(
        self,
        conv_layers: list[int | str],
        dense_widths: list[int],
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
    ) -> None:
        super().__init__()
        features: list[nn.Module] = []
        channels, side = in_channels, input_size
        for item in conv_layers:
            if item == POOL:
                features.append(nn.AvgPool2d(2))
                side //= 2
            else:
                features += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*features)
        dense: list[nn.Module] = [nn.Flatten()]
        width = channels * side * side
        for hidden in dense_widths:
            dense += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _build(variant: str, num_classes: int, in_channels: int, width: float = 1.0) -> nn.Module:
    """``width`` scales every convolution's filters (at least one each), as MobileNet's
    width multiplier does; the dense layers keep the paper's widths."""
    if not 0 < width <= 4:
        raise TrimkitError(f"width must be in (0, 4], got {width}")
    conv_layers, dense_widths = CONFIGS[variant]
    scaled = [item if item == POOL else max(1, round(int(item) * width)) for item in conv_layers]
    input_size = 28 if in_channels == 1 else 32
    return BonsaiVGG(scaled, dense_widths, num_classes, in_channels, input_size)


_COMMON = dict(
    family="vgg_bonsai",
    in_channels=1,
    input_sizes={1: (28, 28), 3: (32, 32)},
    normalizations={1: MNIST_NORMALIZATION, 3: CIFAR_NORMALIZATION},
    default_data="mnist5k",
)


@register(**_COMMON)
def vgg_a(num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> nn.Module:
    """Bonsai model A, convolution-heavy: conv 64-64-128-128-256, FC 64-32."""
    return _build("a", num_classes, in_channels, width)


@register(**_COMMON)
def vgg_b(num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> nn.Module:
    """Bonsai model B, balanced: conv 64-64-128-128-128-256, FC 256-128-64-32."""
    return _build("b", num_classes, in_channels, width)


@register(**_COMMON)
def vgg_c(num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> nn.Module:
    """Bonsai model C, dense-heavy: conv 2-2-4-4-4, FC 256-128-64-32."""
    return _build("c", num_classes, in_channels, width)
