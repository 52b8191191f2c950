"""A small CNN of your own, in its own file, as a team would write it: trimkit names it
``mynet:MyNet`` (from this folder) and needs nothing else from it."""

from torch import nn


class MyNet(nn.Module):
    """Two conv blocks with batch norm, a 1x1 bottleneck and a linear head, for 28x28
    grey images; ``width`` scales every layer."""

    input_shape = (1, 28, 28)

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))
