"""LeNet-5 for 28x28 digits (LeCun et al. 1998), with ReLU and max pooling."""

from __future__ import annotations

import torch
from torch import nn

from trimkit.models._registry import CIFAR_NORMALIZATION, MNIST_NORMALIZATION, register


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = (input_size // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register(
    family="lenet",
    in_channels=1,
    input_sizes={1: (28, 28), 3: (32, 32)},
    normalizations={1: MNIST_NORMALIZATION, 3: CIFAR_NORMALIZATION},
    default_data="mnist5k",
)
def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5: two 5x5 convolutions and three dense layers."""
    return LeNet5(num_classes, in_channels, input_size=28 if in_channels == 1 else 32)
