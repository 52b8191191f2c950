"""Channel shuffles (ShuffleNet's ``view(n, g, c // g, h, w).transpose(1, 2)``), mapped.

Torch-Pruning sees the reshapes and the transpose as operations that keep channel ``i``
where it was, but a shuffle moves channel ``k * (c // g) + j`` to ``j * g + k``. Here the
transpose carries that permutation (at the channel count it has now), and a cut through a
shuffle takes the same offsets from each of its ``g`` blocks, which keeps it a shuffle of
the channels left (any other cut would send them to other places).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch.overrides import TorchFunctionMode
from torch_pruning import ops
from torch_pruning._helpers import _HybridIndex

CHANNELS = 1
SWAPS = ("transpose", "swapaxes", "swapdims", "permute")


@dataclass
class Shuffle:
    groups: int
    channels: int  # now

    def after(self, channel: int) -> int:
        width = self.channels // self.groups
        return (channel % width) * self.groups + channel // width

    def before(self, channel: int) -> int:
        width = self.channels // self.groups
        return (channel % self.groups) * width + channel // self.groups


class _Permutation:
    """Torch-Pruning's index-mapping protocol: channel numbers before the shuffle to
    after it (``forward``) or back."""

    def __init__(self, shuffle: Shuffle, forward: bool) -> None:
        self.shuffle, self.forward = shuffle, forward

    def __call__(self, idxs):
        move = self.shuffle.after if self.forward else self.shuffle.before
        return [_HybridIndex(idx=move(int(i.idx)), root_idx=i.root_idx) for i in idxs]


class ShuffleRecorder(TorchFunctionMode):
    """Records, while Torch-Pruning traces the model, each swap of the two dimensions a
    channel shuffle exchanges: the grad_fn of its result and the number of groups."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[object, tuple[int, int]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        grad_fn = getattr(result, "grad_fn", None)
        if grad_fn is not None and name in SWAPS and args and isinstance(args[0], torch.Tensor):
            source = args[0]
            if source.dim() >= 3 and tuple(result.shape[1:3]) == (source.shape[2], source.shape[1]) \
                    and _swaps_channel_dims(name, args[1:], kwargs or {}, source.dim()):
                self.groups[grad_fn] = (int(source.shape[1]), int(source.shape[1] * source.shape[2]))
        return result


def _swaps_channel_dims(name: str, rest: tuple, kwargs: dict, rank: int) -> bool:
    if name == "permute":
        order = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
        order = order or list(kwargs.get("dims", ()))
        return [d % rank for d in order[:3]] == [0, 2, 1] and order[3:] == list(range(3, rank))
    dims = list(rest[:2]) or [kwargs.get("dim0"), kwargs.get("dim1")]
    return None not in dims and sorted(d % rank for d in dims) == [1, 2]


def describe_shuffles(graph: tp.DependencyGraph, groups: dict[object, tuple[int, int]]) -> None:
    for node in graph.module2node.values():
        if node.grad_fn in groups and node.type == ops.OPTYPE.ELEMENTWISE:
            count, channels = groups[node.grad_fn]
            node.module.trimkit_shuffle = Shuffle(count, channels)


def map_shuffles(graph: tp.DependencyGraph) -> None:
    for node in graph.module2node.values():
        shuffle = getattr(node.module, "trimkit_shuffle", None)
        if shuffle is None:
            continue
        for dep in node.dependencies:
            if dep.target in node.outputs:
                dep.index_mapping[0] = _Permutation(shuffle, forward=True)
        for consumer in node.outputs:
            for dep in consumer.dependencies:
                if dep.target is node:
                    dep.index_mapping[0] = _Permutation(shuffle, forward=False)


def blocks_of(tp_group) -> int:
    blocks = 1
    for item in tp_group:
        shuffle = getattr(item.dep.target.module, "trimkit_shuffle", None)
        if shuffle is not None:
            blocks = math.lcm(blocks, shuffle.groups)
    return blocks


def described(tp_group) -> list[str]:
    found = {}
    for item in tp_group:
        shuffle = getattr(item.dep.target.module, "trimkit_shuffle", None)
        if shuffle is not None:
            found[id(shuffle)] = (f"a channel shuffle of {shuffle.channels} channels in {shuffle.groups} groups, "
                                  "which stays one only if a cut takes the same channels from every group; the "
                                  "layers around it cannot all follow such a cut (a grouped convolution after "
                                  "it, or a second group shuffled in with this one)")
    return list(found.values())


def after_cut(tp_group) -> None:
    removed: dict[int, tuple[Shuffle, set[int]]] = {}
    for item in tp_group:
        shuffle = getattr(item.dep.target.module, "trimkit_shuffle", None)
        if shuffle is not None:
            removed.setdefault(id(shuffle), (shuffle, set()))[1].update(int(i) for i in item.idxs)
    for shuffle, channels in removed.values():
        shuffle.channels -= len(channels)
