"""``torch.split`` and ``torch.chunk`` on the channel dimension, traced right.

Torch-Pruning 1.6 reads a split's sizes from autograd attributes that PyTorch 2 renamed,
falls back to guessing them from the consumers, and takes the consumers to come in the
order of the pieces: a chunk whose first piece goes straight into a concatenation is then
mapped onto the wrong channels, and a pruned model fails to run. Here each split's sizes
come from its autograd node, each consumer is tied to its piece by the output number
autograd records for it, and the sizes are kept as channels are cut (Torch-Pruning's own
split pruner edits them wrongly, so it is replaced by one that leaves them alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch_pruning as tp
from torch import nn
from torch_pruning import ops
from torch_pruning.dependency import index_mapping
from torch_pruning.pruner.function import BasePruningFunc

CHANNELS = 1


@dataclass
class Pieces:
    """How a split cuts its input's channels: the piece sizes now, and which piece each
    consumer (a Torch-Pruning node) reads."""

    sizes: list[int]
    equal: bool  # pieces of one size (a chunk, say): a cut takes as many channels from each
    piece_of: dict[int, int] = field(default_factory=dict)  # id(consumer node) -> piece number
    read: list[int] = field(default_factory=list)  # the piece each consumer reads, in Torch-Pruning's order
    problem: str | None = None

    def span(self, piece: int) -> tuple[int, int]:
        start = sum(self.sizes[:piece])
        return start, start + self.sizes[piece]

    def remove(self, channels: Iterable[int]) -> None:
        spans = [self.span(piece) for piece in range(len(self.sizes))]
        for channel in set(channels):
            for piece, (start, end) in enumerate(spans):
                if start <= channel < end:
                    self.sizes[piece] -= 1
                    break


class SplitPruner(BasePruningFunc):
    """Nothing to cut in a split itself; its piece sizes are kept by ``after_cut``."""

    TARGET_MODULES = (ops._SplitOp,)

    def prune_out_channels(self, layer: nn.Module, idxs) -> nn.Module:
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> int | None:
        pieces = getattr(layer, "trimkit_pieces", None)
        return sum(pieces.sizes) if pieces is not None else None

    get_in_channels = get_out_channels


def with_split_pruner(graph: tp.DependencyGraph) -> tp.DependencyGraph:
    """``graph`` (not built yet) with splits left to trimkit: pass customized pruners to
    its build, which refreshes its cache of pruning functions."""
    graph.REGISTERED_PRUNERS[ops.OPTYPE.SPLIT] = SplitPruner()
    return graph


def describe_splits(graph: tp.DependencyGraph) -> None:
    """Give every channel split in ``graph`` its true pieces (after the graph is built)."""
    for node in graph.module2node.values():
        if node.type == ops.OPTYPE.SPLIT:
            pieces = _pieces(node)
            if pieces is not None:
                node.module.trimkit_pieces = pieces
                _share_sizes(node.module)
                for consumer in node.outputs:
                    if consumer.type == ops.OPTYPE.CONCAT:
                        consumer.module.concat_sizes = None  # measured again, from the right sizes


def _share_sizes(split: nn.Module) -> None:
    """Tell Torch-Pruning the size each consumer reads (it sizes concatenations from them)."""
    pieces = split.trimkit_pieces
    if pieces.problem:
        return
    split.split_sizes = [pieces.sizes[piece] for piece in pieces.read]
    split.offsets = [0, *(sum(split.split_sizes[: n + 1]) for n in range(len(split.split_sizes)))]


def after_cut(tp_group) -> list[nn.Module]:
    """Shrink the pieces of the splits a cut went through; the splits touched."""
    removed: dict[int, tuple[nn.Module, set[int]]] = {}
    for item in tp_group:
        module = item.dep.target.module
        if isinstance(module, ops._SplitOp) and hasattr(module, "trimkit_pieces"):
            removed.setdefault(id(module), (module, set()))[1].update(int(i) for i in item.idxs)
    for module, channels in removed.values():
        module.trimkit_pieces.remove(channels)
        _share_sizes(module)
    return [module for module, _ in removed.values()]


def blocks_of(tp_group) -> int:
    """The number of equal pieces a removal from the group must take equally from."""
    blocks = 1
    for item in tp_group:
        pieces = getattr(item.dep.target.module, "trimkit_pieces", None)
        if pieces is not None and pieces.equal and len(pieces.sizes) > 1:
            blocks = math.lcm(blocks, len(pieces.sizes))
    return blocks


def described(tp_group) -> list[str]:
    """Each split the group passes through, in words."""
    found = {}
    for item in tp_group:
        pieces = getattr(item.dep.target.module, "trimkit_pieces", None)
        if pieces is not None:
            found[id(pieces)] = (f"a split of {sum(pieces.sizes)} channels into {pieces.sizes}, whose sizes the "
                                 "model's code may fix (split(6) rather than chunk(2), or sizes from the tensor's "
                                 "shape)")
    return list(found.values())


def problem_of(tp_group) -> str | None:
    for item in tp_group:
        pieces = getattr(item.dep.target.module, "trimkit_pieces", None)
        if pieces is not None and pieces.problem:
            return pieces.problem
    return None


def _pieces(node) -> Pieces | None:
    grad_fn = node.grad_fn
    dim = getattr(grad_fn, "_saved_dim", None)
    total = list(getattr(grad_fn, "_saved_self_sym_sizes", ()))
    if dim is None or not total or dim % len(total) != CHANNELS:
        return None
    channels = int(total[CHANNELS])
    if hasattr(grad_fn, "_saved_split_sizes"):
        sizes, by_one_size = [int(s) for s in grad_fn._saved_split_sizes], False
    elif hasattr(grad_fn, "_saved_split_size"):
        size = int(grad_fn._saved_split_size)
        sizes = [size] * (channels // size) + ([channels % size] if channels % size else [])
        by_one_size = True
    else:
        return None
    pieces = Pieces(sizes, len(set(sizes)) == 1)
    if by_one_size and len(set(sizes)) > 1:
        pieces.problem = (f"a chunk of {channels} channels into pieces of {sizes}: removing channels would move "
                          "them from one piece to another")
    for consumer in node.outputs:
        numbers = {number for function, number in getattr(consumer.grad_fn, "next_functions", ())
                   if function is grad_fn}
        if len(numbers) != 1:
            pieces.problem = (f"one layer reads {len(numbers) or 'none'} of the pieces of a split of "
                              f"{channels} channels, which the dependency graph cannot map")
            continue
        pieces.piece_of[id(consumer)] = numbers.pop()
        pieces.read.append(pieces.piece_of[id(consumer)])
    return pieces


_original_update = index_mapping.update_split_index_mapping


def _update_split_index_mapping(graph, split_node) -> None:
    """Torch-Pruning's hook point, called before every group is made: map each consumer
    onto its own piece, at the pieces' current sizes."""
    pieces = getattr(split_node.module, "trimkit_pieces", None)
    if pieces is None or pieces.problem:
        _original_update(graph, split_node)
        return
    for consumer in split_node.outputs:
        span = pieces.span(pieces.piece_of[id(consumer)])
        for dep in split_node.dependencies:
            if dep.target is consumer:
                dep.index_mapping[0] = index_mapping._SplitIndexMapping(offset=span, reverse=False)
        for dep in consumer.dependencies:
            if dep.target is split_node:
                dep.index_mapping[0] = index_mapping._SplitIndexMapping(offset=span, reverse=True)


index_mapping.update_split_index_mapping = _update_split_index_mapping
