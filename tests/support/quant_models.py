"""Small models built outside the zoo, for the quantisation tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyNet(nn.Module):
    """conv(1->8, stride 2, bias) + BN + ReLU module, conv(8->16, stride 2, no bias) +
    functional ReLU, 2x2 average pooling, linear(64->10). 28x28 single-channel input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.head(torch.flatten(self.pool(x), 1))


class TwoBranchNet(nn.Module):
    """Two inputs, each with its own first convolution; a shared dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.branch_a = nn.Conv2d(1, 4, 3)
        self.branch_b = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(8, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        features = torch.cat([F.relu(self.branch_a(a)).mean((2, 3)), F.relu(self.branch_b(b)).mean((2, 3))], 1)
        return self.head(features)


class SiameseNet(nn.Module):
    """One backbone shared by two inputs, cross-correlated: no layer's output is returned."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        kernel = self.backbone(exemplar)
        return F.conv2d(self.backbone(search), kernel[:1])


class ScaledInputNet(nn.Module):
    """Rescales its input before the first layer and ends with a softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(F.relu(self.conv(x * 2.0)).mean((2, 3))), 1)


class SharedLayerNet(nn.Module):
    """The same convolution module at two places."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.again = self.conv
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.again(F.relu(self.conv(x))))
        return self.fc(x.mean((2, 3)))
