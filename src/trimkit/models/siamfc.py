"""SiamFC (Bertinetto et al. 2016): a fully-convolutional Siamese tracker.

One backbone embeds both the exemplar (the target, 127x127) and the search region
(255x255); the exemplar's features are then slid over the search features as a
correlation kernel, giving a score map whose peak is the target's position.

The correlation is a grouped convolution over the batch: the search features of ``B``
pairs become one ``1 x (B*C) x H x W`` image and the ``B`` exemplar feature maps its
``B`` groups of kernels, so one ``conv2d`` scores every pair against its own exemplar
and exports to ONNX as a plain ``Conv`` whose weight is an input, not an initializer.

Two zoo models:

- ``siamfc``: the paper's network, AlexNet-like with batch norm, total stride 8,
  127 -> 6x6x256, 255 -> 22x22x256, a 17x17 score map;
- ``siamfc_seed``: the quantisation seed's variant (Przewlocka et al. 2020), 32-channel
  features at total stride 4: 127 -> 17x17x32, 255 -> 49x49x32, a 33x33 score map.

Both take ``width`` (a multiplier of the hidden channels; the features keep their
width) so that a tracker trains on two CPU cores. The convolutions are ungrouped (the
original's groups of 2 came from AlexNet's two GPUs); ``groups=2`` restores them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.models._registry import IMAGENET_NORMALIZATION, register

EXEMPLAR_SIZE = 127
SEARCH_SIZE = 255


def xcorr(exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Correlate each search feature map with its exemplar's (``B x C x h x w`` kernels,
    or one kernel for every search map): ``B x 1 x (H-h+1) x (W-w+1)``."""
    if exemplar.shape[0] == 1 and search.shape[0] > 1:
        exemplar = exemplar.expand(search.shape[0], -1, -1, -1)
    batch, channels, height, width = search.shape
    scores = F.conv2d(search.reshape(1, batch * channels, height, width), exemplar, groups=batch)
    return scores.reshape(batch, 1, scores.shape[-2], scores.shape[-1])


class _XCorr(torch.autograd.Function):
    """:func:`xcorr` as one autograd node, so that Torch-Pruning's tracer sees a layer
    with channels in (the features of both branches) and one channel out, instead of
    reshapes that fold the batch into the channels (its index mapping of those never
    finishes). The gradients are xcorr's own."""

    @staticmethod
    def forward(ctx, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(exemplar, search)
        return xcorr(exemplar, search)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        exemplar, search = ctx.saved_tensors
        with torch.enable_grad():
            exemplar = exemplar.detach().requires_grad_()
            search = search.detach().requires_grad_()
            gradients = torch.autograd.grad(xcorr(exemplar, search), (exemplar, search), grad)
        return gradients[0], gradients[1]


class Correlation(nn.Module):
    """:func:`xcorr` as a layer: no weights of its own; ``in_channels`` (the feature
    width) is bookkeeping for pruning (prune/_custom_layers.py tells Torch-Pruning that
    its input channels follow the backbone's last layer)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        self.in_channels = int(search.shape[1])  # what it was last run with (a loaded, pruned model included)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return xcorr(exemplar, search)
        return _XCorr.apply(exemplar, search)


class ScoreAdjust(nn.Module):
    """SiamFC's output scale: ``scale * scores + bias``, two scalars (not a convolution,
    so that a quantisation policy's ``last`` layer is the backbone's last one, as in the
    seed's Table 2)."""

    def __init__(self, scale: float = 1e-3) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale]))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.scale + self.bias


class SiamFC(nn.Module):
    """``forward(exemplar, search) -> score map``; ``embed`` runs the shared backbone and
    ``head`` correlates features and applies the output scale (``adjust``, initialised
    to SiamFC's 0.001)."""

    def __init__(self, backbone: nn.Sequential, stride: int, exemplar_size: int = EXEMPLAR_SIZE,
                 search_size: int = SEARCH_SIZE) -> None:
        super().__init__()
        self.backbone = backbone
        self.correlation = Correlation(_out_channels(backbone))
        self.adjust = ScoreAdjust()
        self.total_stride = stride
        self.exemplar_size = exemplar_size
        self.search_size = search_size

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def head(self, exemplar_features: torch.Tensor, search_features: torch.Tensor) -> torch.Tensor:
        return self.adjust(self.correlation(exemplar_features, search_features))

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(exemplar), self.embed(search))

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero exemplar and search crops, for profiling and tracing."""
        return (torch.zeros(batch, 3, self.exemplar_size, self.exemplar_size),
                torch.zeros(batch, 3, self.search_size, self.search_size))

    def score_size(self) -> int:
        """Side of the score map for the model's exemplar and search sizes."""
        return int(self.forward(*self.example_inputs()).shape[-1])


def _out_channels(backbone: nn.Sequential) -> int:
    return [m for m in backbone.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def _block(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
           last: bool = False) -> list[nn.Module]:
    if last:
        return [nn.Conv2d(in_channels, out_channels, kernel, stride, groups=groups)]
    return [nn.Conv2d(in_channels, out_channels, kernel, stride, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


def _hidden(channels: int, width: float, groups: int) -> int:
    scaled = max(groups, int(round(channels * width)))
    return scaled - scaled % groups


def alexnet_backbone(widths: tuple[int, ...], kernels: tuple[int, ...], pool_after: tuple[int, ...],
                     in_channels: int = 3, width: float = 1.0, groups: int = 1) -> nn.Sequential:
    """Convolutions (the first of stride 2) with batch norm and ReLU, 3x3/2 max pooling
    after the layers in ``pool_after``; the last convolution has a bias and no norm."""
    layers: list[nn.Module] = []
    channels = in_channels
    for index, (out, kernel) in enumerate(zip(widths, kernels)):
        last = index == len(widths) - 1
        out = out if last else _hidden(out, width, groups)
        layers += _block(channels, out, kernel, stride=2 if index == 0 else 1,
                         groups=1 if index == 0 else groups, last=last)
        if index in pool_after:
            layers.append(nn.MaxPool2d(3, 2))
        channels = out
    return nn.Sequential(*layers)


_COMMON = dict(family="siamfc", in_channels=3, input_sizes={3: (SEARCH_SIZE, SEARCH_SIZE)},
               normalizations={3: IMAGENET_NORMALIZATION}, default_data="tracking", task="tracking")


@register(**_COMMON)
def siamfc(num_classes: int = 1, in_channels: int = 3, width: float = 1.0, groups: int = 1,
           features: int = 256) -> nn.Module:
    """SiamFC: AlexNet-like backbone with batch norm, stride 8, 17x17 score map."""
    backbone = alexnet_backbone((96, 256, 384, 384, features), (11, 5, 3, 3, 3), (0, 1), in_channels, width, groups)
    return SiamFC(backbone, stride=8)


@register(**_COMMON)
def siamfc_seed(num_classes: int = 1, in_channels: int = 3, width: float = 1.0, groups: int = 1,
                features: int = 32) -> nn.Module:
    """The seed's SiamFC variant: 32-channel features at stride 4, 33x33 score map."""
    backbone = alexnet_backbone((96, 256, 384, 384, features), (11, 5, 5, 3, 3), (0,), in_channels, width, groups)
    return SiamFC(backbone, stride=4)
