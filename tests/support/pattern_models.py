"""Small models, one per architectural pattern that channel pruning must get right.

Every convolution and dense layer has a bias or a batch norm after it, so that a
channel can be made dead by zeroing its filter, its bias and its batch-norm affine
parameters (see ``dead_channel_plans``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def conv_bn(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class PlainChain(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = conv_bn(3, 8), conv_bn(8, 12), conv_bn(12, 10, k=1)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        return self.c3(x).mean((2, 3))


class FlattenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 20)
        self.fc2 = nn.Linear(20, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class PoolLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = conv_bn(3, 8), conv_bn(8, 16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class ResidualB(nn.Module):
    """Option-B residual: a 1x1 convolution shortcut where the width changes."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.a1, self.a2 = conv_bn(8, 8), conv_bn(8, 8)
        self.b1, self.b2 = conv_bn(8, 12, stride=2), conv_bn(12, 12)
        self.b_short = conv_bn(8, 12, k=1, stride=2)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.a2(F.relu(self.a1(x))))
        x = F.relu(self.b_short(x) + self.b2(F.relu(self.b1(x))))
        return self.fc(x.mean((2, 3)))


class ResidualA(nn.Module):
    """Option-A residual written inline with F.pad on the channel dimension, as the
    popular pretrained CIFAR ResNets do: Torch-Pruning cannot see through it."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.a1, self.a2 = conv_bn(8, 8), conv_bn(8, 8)
        self.b1, self.b2 = conv_bn(8, 16, stride=2), conv_bn(16, 16)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.a2(F.relu(self.a1(x))))
        shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4))
        x = F.relu(shortcut + self.b2(F.relu(self.b1(x))))
        return self.fc(x.mean((2, 3)))


class DenseConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 6)
        self.d1, self.d2 = conv_bn(6, 4), conv_bn(10, 4)
        self.trans = conv_bn(14, 8, k=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = torch.cat([x, F.relu(self.d1(x))], 1)
        x = torch.cat([x, F.relu(self.d2(x))], 1)
        return self.fc(F.relu(self.trans(x)).mean((2, 3)))


class InvertedResidual(nn.Module):
    """Depthwise-separable convolution and an inverted residual with a linear bottleneck."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.dw, self.pw = conv_bn(8, 8, groups=8), conv_bn(8, 8, k=1)
        self.expand, self.dw2, self.project = conv_bn(8, 24, k=1), conv_bn(24, 24, groups=24), conv_bn(24, 8, k=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.pw(F.relu(self.dw(x))))
        x = x + self.project(F.relu6(self.dw2(F.relu6(self.expand(x)))))
        return self.fc(x.mean((2, 3)))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.grouped = conv_bn(8, 16, groups=4)
        self.out = conv_bn(16, 8, k=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.grouped(F.relu(self.stem(x))))
        return self.fc(F.relu(self.out(x)).mean((2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.body = conv_bn(3, 8), conv_bn(8, 16)
        self.se_reduce, self.se_expand = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.body(F.relu(self.stem(x))))
        scale = torch.sigmoid(self.se_expand(F.relu(self.se_reduce(x.mean((2, 3), keepdim=True)))))
        return self.fc((x * scale).mean((2, 3)))


class UNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = conv_bn(3, 8), conv_bn(8, 16)
        self.dec = conv_bn(16 + 8, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        skip = F.relu(self.enc1(x))
        deep = F.relu(self.enc2(F.max_pool2d(skip, 2)))
        up = F.interpolate(deep, scale_factor=2, mode="nearest")
        return self.head(F.relu(self.dec(torch.cat([up, skip], 1))))


class SiameseXCorr(nn.Module):
    """Two inputs, one shared backbone; the head cross-correlates the search features
    with the exemplar features used as the kernel (SiamFC-style)."""

    def __init__(self):
        super().__init__()
        self.b1, self.b2 = conv_bn(3, 8), conv_bn(8, 12)

    def features(self, x):
        return F.relu(self.b2(F.relu(self.b1(x))))

    def forward(self, exemplar, search):
        kernel, scene = self.features(exemplar), self.features(search)
        maps = [F.conv2d(scene[i : i + 1], kernel[i : i + 1]) for i in range(scene.shape[0])]
        return torch.cat(maps, 0)


def example_inputs(model: nn.Module):
    generator = torch.Generator().manual_seed(1)
    if isinstance(model, SiameseXCorr):
        return (torch.randn(2, 3, 6, 6, generator=generator), torch.randn(2, 3, 14, 14, generator=generator))
    size = 16 if isinstance(model, (FlattenLinear, UNetLike)) else 12
    return torch.randn(2, 3, size, size, generator=generator)


PATTERNS = {
    "plain_chain": PlainChain,
    "flatten_linear": FlattenLinear,
    "pool_linear": PoolLinear,
    "residual_option_a": ResidualA,
    "residual_option_b": ResidualB,
    "concat": DenseConcat,
    "inverted_residual": InvertedResidual,
    "grouped_conv": Grouped,
    "squeeze_excite": SqueezeExcite,
    "unet_skip_concat": UNetLike,
    "siamese_xcorr": SiameseXCorr,
}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give batch norms non-trivial statistics so zeroed channels are not zero by accident."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
    return model.eval()


# For each pattern: channels to make dead, as {channel-producing module: channels}; a
# producer is a conv/linear (possibly inside a conv_bn Sequential, whose BN is zeroed
# too). Coupled producers list the same channels.
DEAD_CHANNELS = {
    "plain_chain": {"c1": [1, 5], "c2": [0, 7, 11]},
    "flatten_linear": {"c1": [2], "c2": [3, 4], "fc1": [0, 19]},
    "pool_linear": {"c1": [0], "c2": [15]},
    "residual_option_a": {"a1": [3], "b1": [1, 2]},
    "residual_option_b": {"stem": [2], "a2": [2], "b1": [0], "b2": [5], "b_short": [5]},
    "concat": {"stem": [1], "d1": [2], "d2": [0, 3]},
    "inverted_residual": {"expand": [5, 6], "dw2": [5, 6], "stem": [7], "dw": [7], "pw": [4], "project": [4]},
    "grouped_conv": {"out": [1]},
    "squeeze_excite": {"stem": [0], "se_reduce": [2]},
    "unet_skip_concat": {"enc1": [3], "enc2": [9], "dec": [0]},
    "siamese_xcorr": {"b1": [2], "b2": [4, 5]},
}


def kill_channels(model: nn.Module, plan: dict[str, list[int]]) -> nn.Module:
    """Zero the planned channels' filters, biases and batch-norm affine parameters."""
    with torch.no_grad():
        for name, channels in plan.items():
            block = model.get_submodule(name)
            layers = list(block) if isinstance(block, nn.Sequential) else [block]
            for layer in layers:
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    layer.weight[channels] = 0
                    if layer.bias is not None:
                        layer.bias[channels] = 0
                if isinstance(layer, nn.BatchNorm2d):
                    layer.weight[channels] = 0
                    layer.bias[channels] = 0
    return model


def producer_name(model: nn.Module, name: str) -> str:
    """The conv/linear inside a conv_bn block, or the layer itself."""
    block = model.get_submodule(name)
    return f"{name}.0" if isinstance(block, nn.Sequential) else name


def independent_macs(model: nn.Module, inputs) -> int:
    """MACs per sample by PyTorch's own FLOP counter (an oracle independent of trimkit)."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.get_total_flops() // (2 * inputs[0].shape[0])
