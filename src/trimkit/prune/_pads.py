"""Zero padding on the channel dimension (``F.pad``), as option-A ResNet shortcuts use it.

Torch-Pruning takes such a pad for an element-wise operation and couples channel ``i``
before it with channel ``i`` after it, so the pruned model no longer adds what it added.
Here channel ``i`` before the pad is channel ``i + before`` after it, and the padding
channels belong to no group: their widths are written in the model's code, so they stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch_pruning as tp
from torch.overrides import TorchFunctionMode
from torch_pruning import ops
from torch_pruning.dependency import index_mapping

CHANNELS = 1


@dataclass
class Padding:
    """A pad's channels: ``before`` zero channels, then the ``inner`` channels it got."""

    before: int
    inner: int

    def span(self) -> tuple[int, int]:
        return self.before, self.before + self.inner


class PadRecorder(TorchFunctionMode):
    """Records, while Torch-Pruning traces the model, the shape of each padded tensor
    (autograd keeps the widths of a pad, not the dimensions they apply to)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: dict[object, tuple[int, ...]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        grad_fn = getattr(result, "grad_fn", None)
        if grad_fn is not None and grad_fn.name().startswith("ConstantPadNd") and args:
            self.shapes[grad_fn] = tuple(args[0].shape)
        return result


def describe_pads(graph: tp.DependencyGraph, shapes: dict[object, tuple[int, ...]]) -> None:
    """Mark each pad in ``graph`` that widens the channel dimension with its Padding."""
    for node in graph.module2node.values():
        shape = shapes.get(node.grad_fn) if node.type == ops.OPTYPE.ELEMENTWISE else None
        if shape is None or len(shape) <= CHANNELS:
            continue
        widths = tuple(node.grad_fn._saved_pad)
        pair = len(shape) - 1 - CHANNELS
        if len(widths) < 2 * pair + 2 or not (widths[2 * pair] or widths[2 * pair + 1]):
            continue
        if widths[2 * pair] >= 0 and widths[2 * pair + 1] >= 0:
            node.module.trimkit_padding = Padding(int(widths[2 * pair]), int(shape[CHANNELS]))


def map_pads(graph: tp.DependencyGraph) -> None:
    """Map channels through every described pad at its current size (before a group is
    made: the sizes change as channels are cut)."""
    for node in graph.module2node.values():
        padding = getattr(node.module, "trimkit_padding", None)
        if padding is None:
            continue
        for dep in node.dependencies:
            if dep.target in node.outputs:
                dep.index_mapping[0] = index_mapping._SplitIndexMapping(offset=padding.span(), reverse=True)
        for consumer in node.outputs:
            for dep in consumer.dependencies:
                if dep.target is node:
                    dep.index_mapping[0] = index_mapping._SplitIndexMapping(offset=padding.span(), reverse=False)


def padded(tp_group) -> bool:
    """Whether the group goes through a pad that widens the channels."""
    return any(hasattr(item.dep.target.module, "trimkit_padding") for item in tp_group)


def after_cut(tp_group) -> None:
    """The pads a cut went through now get fewer channels."""
    removed: dict[int, tuple[Padding, set[int]]] = {}
    for item in tp_group:
        padding = getattr(item.dep.target.module, "trimkit_padding", None)
        if padding is not None:
            removed.setdefault(id(padding), (padding, set()))[1].update(int(i) for i in item.idxs)
    for padding, channels in removed.values():
        padding.inner -= len(channels)
