"""Torch-Pruning pruners for trimkit's own layers that its tracer cannot see through.

Torch-Pruning treats an unknown operation such as ``F.pad`` on the channel dimension
as element-wise, so it couples the 16 channels before an option-A shortcut with the
first 16 of the 32 after it, and the pruned ResNet crashes. Registered here, the
shortcut becomes a layer with its own input and output channels, like a convolution.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn
from torch_pruning.pruner.function import BasePruningFunc

from trimkit.models.resnet_cifar import ZeroPadShortcut
from trimkit.models.siamfc import Correlation


class ZeroPadShortcutPruner(BasePruningFunc):
    TARGET_MODULES = (ZeroPadShortcut,)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        removed = set(idxs)
        layer.source = [source for channel, source in enumerate(layer.source) if channel not in removed]
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        removed = sorted(set(idxs))
        kept = [channel for channel in range(layer.in_channels) if channel not in set(removed)]
        renumber = {old: new for new, old in enumerate(kept)}
        layer.source = [renumber.get(source, -1) for source in layer.source]
        layer.in_channels = len(kept)
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return len(layer.source)

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels


class WholeGroupNormPruner(BasePruningFunc):
    """A group norm loses whole groups (trimkit's selection removes nothing else), and its
    number of groups with them, so that every group left normalises the same channels."""

    TARGET_MODULES = (nn.GroupNorm,)

    def prune_out_channels(self, layer: nn.GroupNorm, idxs: Sequence[int]) -> nn.Module:
        per_group = layer.num_channels // layer.num_groups
        removed = sorted(set(idxs))
        if len(removed) % per_group:
            raise ValueError(f"a GroupNorm of {per_group}-channel groups cannot lose {len(removed)} channels")
        kept = [channel for channel in range(layer.num_channels) if channel not in set(removed)]
        layer.num_groups -= len(removed) // per_group
        layer.num_channels = len(kept)
        if layer.affine:
            layer.weight = self._prune_parameter_and_grad(layer.weight, kept, 0)
            layer.bias = self._prune_parameter_and_grad(layer.bias, kept, 0)
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.GroupNorm) -> int:
        return layer.num_channels

    def get_in_channels(self, layer: nn.GroupNorm) -> int:
        return layer.num_channels


class CorrelationPruner(BasePruningFunc):
    """A Siamese tracker's correlation has no weights: the backbone's last layer loses
    the same channels in both branches, and the correlation sums over those left."""

    TARGET_MODULES = (Correlation,)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        layer.in_channels -= len(set(idxs))
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return 1

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels


def customized_pruners() -> dict[type, BasePruningFunc]:
    return {ZeroPadShortcut: ZeroPadShortcutPruner(), Correlation: CorrelationPruner(),
            nn.GroupNorm: WholeGroupNormPruner()}
