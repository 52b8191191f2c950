"""Models with layers and tensor tricks outside the common CNN patterns: channel
shuffle, chunk-and-concatenate, group norm, a ConvNeXt-style block with a permuted
layer norm, transposed convolution, 1-d convolutions, two output heads, pixel shuffle,
PReLU with instance norm.

Each comes with the input it expects and the producer layers whose groups pruning
must freeze (rather than break the model): where removing a channel cannot equal
masking it (the statistics of a one-group group norm or a layer norm over channels), or
where the dependency graph gets the channel mapping wrong (shuffle, chunk).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelShuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 1, groups=4)
        self.c = nn.Conv2d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.a(x))
        n, c, h, w = x.shape
        x = x.view(n, 4, c // 4, h, w).transpose(1, 2).reshape(n, c, h, w)
        x = F.relu(self.c(F.relu(self.b(x))))
        return self.fc(x.mean((2, 3)))


class ShuffleIntoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.c = nn.Conv2d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.a(x))
        n, c, h, w = x.shape
        x = x.view(n, 4, c // 4, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)
        return self.fc(F.relu(self.c(x)).mean((2, 3)))


class ShuffleUnit(nn.Module):
    """ShuffleNet V2's unit: half the channels skip past a branch, and the two halves
    are shuffled together before the next layer."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b, self.c = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        skip, branch = F.relu(self.a(x)).chunk(2, dim=1)
        x = torch.cat([skip, F.relu(self.b(branch))], 1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return self.fc(F.relu(self.c(x)).mean((2, 3)))


class ChunkConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        left, right = F.relu(self.a(x)).chunk(2, dim=1)
        x = F.relu(self.c(torch.cat([left, F.relu(self.b(right))], 1)))
        return self.fc(x.mean((2, 3)))


class GroupNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.norm_a = nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(4, 16)
        self.b, self.norm_b = nn.Conv2d(16, 16, 3, padding=1), nn.GroupNorm(1, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.norm_a(self.a(x)))
        x = F.relu(self.norm_b(self.b(x)))
        return self.fc(x.mean((2, 3)))


class ConvNeXtBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm = nn.LayerNorm(16)
        self.pw1, self.pw2 = nn.Linear(16, 64), nn.Linear(64, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.norm(self.dw(x).permute(0, 2, 3, 1))
        x = x + self.pw2(F.gelu(self.pw1(y))).permute(0, 3, 1, 2)
        return self.fc(x.mean((2, 3)))


class TransposedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.down, self.bn = nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.out(F.relu(self.up(F.relu(self.bn(self.down(x))))))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.bn = nn.Conv1d(3, 16, 5, padding=2), nn.BatchNorm1d(16)
        self.b = nn.Conv1d(16, 32, 3, dilation=2, padding=2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.b(F.relu(self.bn(self.a(x)))))
        return self.fc(x.amax(2))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.classes, self.boxes = nn.Conv2d(16, 5, 1), nn.Conv2d(16, 4, 1)

    def forward(self, x):
        x = F.relu(self.b(F.relu(self.a(x))))
        return self.classes(x), self.boxes(x)


class PixelShuffleUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.b(F.relu(self.a(x))))


class PReLUInstanceNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act = nn.Conv2d(3, 16, 3, padding=1), nn.PReLU(16)
        self.b, self.norm = nn.Conv2d(16, 16, 3, padding=1), nn.InstanceNorm2d(16, affine=True)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = F.relu(self.norm(self.b(self.act(self.a(x)))))
        return self.fc(F.adaptive_avg_pool2d(x, 8).flatten(1))


class OptionAShortcuts(nn.Module):
    """A CIFAR ResNet stage as most published code writes it: the shortcut that doubles
    the width subsamples and zero-pads the channels with ``F.pad`` in a lambda."""

    class Lambda(nn.Module):
        def __init__(self, function):
            super().__init__()
            self.function = function

        def forward(self, x):
            return self.function(x)

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a1, self.a2 = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.shortcut = self.Lambda(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4)))
        self.b1, self.b2 = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.a2(F.relu(self.a1(x))) + self.shortcut(x))
        x = F.relu(self.b2(F.relu(self.b1(x))) + x)
        return self.fc(x.mean((2, 3)))


class SplitBranches(nn.Module):
    """Three pieces of one layer's output, by ``split`` with a size taken from its shape:
    one skipped past the convolutions, one through each, concatenated back in another
    order."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 18, 3, padding=1)
        self.b, self.c = nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 4, 1)
        self.d = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.a(x))
        first, second, third = x.split(x.shape[1] // 3, dim=1)
        x = torch.cat([F.relu(self.c(third)), first, F.relu(self.b(second))], 1)
        return self.fc(F.relu(self.d(x)).mean((2, 3)))


# name -> (model class, input shape, producers of the groups that must be frozen). A group
# norm loses whole groups, but one of a single group normalises all its channels together,
# as a layer norm over the channels does: those cannot be cut exactly. A channel shuffle
# into a grouped convolution of as many groups cannot lose a channel without the
# convolution losing a whole group, which no cut here does.
UNUSUAL = {
    "channel_shuffle": (ChannelShuffle, (2, 3, 16, 16), {("a",)}),
    "shuffle_into_conv": (ShuffleIntoConv, (2, 3, 16, 16), set()),
    "shuffle_unit": (ShuffleUnit, (2, 3, 16, 16), {("a",), ("b",)}),
    "chunk_concat": (ChunkConcat, (2, 3, 16, 16), set()),
    "split_branches": (SplitBranches, (2, 3, 16, 16), set()),
    "option_a_pad": (OptionAShortcuts, (2, 3, 16, 16), set()),
    "group_norm": (GroupNormed, (2, 3, 16, 16), {("b",)}),
    "convnext_block": (ConvNeXtBlock, (2, 3, 32, 32), {("stem", "dw", "pw2")}),
    "transposed_conv": (TransposedConv, (2, 3, 16, 16), set()),
    "conv1d": (Conv1dNet, (2, 3, 50), set()),
    "two_heads": (TwoHeads, (2, 3, 16, 16), set()),
    "pixel_shuffle": (PixelShuffleUp, (2, 3, 16, 16), set()),
    "prelu_instance_norm": (PReLUInstanceNorm, (2, 3, 16, 16), set()),
}
