"""Channel groups: the channels that must be removed together, from Torch-Pruning's
DependencyGraph, and the surgery that removes them.

A group is named by its first producer in execution order. Producers are the
convolution and dense layers whose output channels (filters, neurons) make up the
group; a residual add, a concatenation or a depthwise convolution ties several
producers into one group. Groups that reach the model's output are never offered. A
group that zero padding widens is rooted at its narrowest producer, so that its channels
are those on both sides of the pad (the padding channels themselves cannot go).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from trimkit._running import eval_mode, output_tensors
from trimkit.measure._profile import ExampleInputs, as_input_tuple
from trimkit.prune import _pads, _shuffles, _splits
from trimkit.prune._custom_layers import customized_pruners

WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass(frozen=True)
class Member:
    """One module's share of a group: which of its channels (in its own current
    numbering) correspond to which channels of the group's root."""

    name: str
    module: nn.Module
    direction: str  # "out": the module's output channels; "in": its input channels
    positions: tuple[int, ...]
    root_positions: tuple[int, ...]

    @property
    def is_producer(self) -> bool:
        return self.direction == "out" and isinstance(self.module, WEIGHT_LAYERS)


@dataclass(frozen=True)
class Layout:
    """A removal takes the same offsets from each of ``blocks`` equal blocks (a grouped
    convolution) and whole ``granule``s of consecutive channels (a group norm's groups)."""

    blocks: int = 1
    granule: int = 1


@dataclass(frozen=True)
class ChannelGroup:
    name: str
    root: nn.Module
    producers: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.name if len(self.producers) == 1 else f"{self.name} (+{len(self.producers) - 1} coupled)"


class ChannelGraph:
    """The dependency graph of ``model`` (which it prunes in place)."""

    def __init__(self, model: nn.Module, example_inputs: ExampleInputs) -> None:
        self.model = model
        self.inputs = as_input_tuple(example_inputs)
        self.names = {module: name for name, module in model.named_modules()}
        self.execution_order, self.output_layers = _trace_order(model, self.inputs)
        self._full_members: dict[str, list[Member]] = {}  # valid until the next cut
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            with _pads.PadRecorder() as pads, _shuffles.ShuffleRecorder() as shuffles:
                self.graph = _splits.with_split_pruner(tp.DependencyGraph()).build_dependency(
                    model, example_inputs=self.inputs, customized_pruners=customized_pruners(), verbose=False
                )
            _splits.describe_splits(self.graph)
            _pads.describe_pads(self.graph, pads.shapes)
            _shuffles.describe_shuffles(self.graph, shuffles.groups)

    def groups(self) -> list[ChannelGroup]:
        """Every prunable group, ordered by the execution of its first producer."""
        rank = {name: index for index, name in enumerate(self.execution_order)}
        ignored = [self.named(name) for name in self.output_layers]
        found = []
        self._map_moves()
        for tp_group in self.graph.get_all_groups(ignored_layers=ignored, root_module_types=WEIGHT_LAYERS):
            root = tp_group[0].dep.target.module
            producers = [m.name for m in self._members(tp_group) if m.is_producer]
            producers.sort(key=lambda name: rank.get(name, len(rank)))
            if producers and _pads.padded(tp_group):
                root = self.named(min(producers, key=lambda name: self.graph.get_out_channels(self.named(name))))
            if producers:
                found.append(ChannelGroup(producers[0], root, tuple(producers)))
        found.sort(key=lambda group: rank.get(group.name, len(rank)))
        return found

    def size(self, group: ChannelGroup) -> int:
        return self.graph.get_pruner_of_module(group.root).get_out_channels(group.root)

    def members(self, group: ChannelGroup, root_positions: list[int] | None = None) -> list[Member]:
        """The group's members now, for all of its channels or the given ones."""
        if root_positions is not None:
            return self._members(self._tp_group(group, sorted(root_positions)))
        if group.name not in self._full_members:
            self._full_members[group.name] = self._members(self._tp_group(group, list(range(self.size(group)))))
        return self._full_members[group.name]

    def layout(self, group: ChannelGroup) -> Layout:
        """What a removal from the group must respect: the same offsets from each of the
        equal blocks a grouped convolution among its members makes, in whole granules of
        consecutive channels where a group norm normalises them together."""
        blocks, granule = 1, 1
        for member in self.members(group):
            module = member.module
            if isinstance(module, nn.GroupNorm):
                granule = math.lcm(granule, module.num_channels // module.num_groups)
            if not isinstance(module, nn.modules.conv._ConvNd) or module.groups == 1:
                continue
            depthwise = module.groups == module.in_channels == module.out_channels
            if not depthwise:
                blocks = math.lcm(blocks, module.groups)
        whole = self._tp_group(group, list(range(self.size(group))))
        blocks = math.lcm(blocks, _splits.blocks_of(whole), _shuffles.blocks_of(whole))
        return Layout(blocks, granule)

    def unprunable(self, group: ChannelGroup) -> str | None:
        """Why no channel of the group can be removed exactly, or None."""
        problem = _splits.problem_of(self._tp_group(group, list(range(self.size(group)))))
        if problem:
            return problem
        for member in self.members(group):
            module = member.module
            if isinstance(module, nn.GroupNorm) and module.num_groups == 1:
                return (f"{member.name} is a GroupNorm with one group: it normalises all {module.num_channels} "
                        "channels together, so removing any would change what the others become")
            if isinstance(module, nn.LayerNorm):
                return (f"{member.name} is a LayerNorm over the channels: it normalises them together, so "
                        "removing any would change what the others become")
        return None

    def inconsistency(self, group: ChannelGroup) -> str | None:
        """Why Torch-Pruning's view of the group cannot be right, or None.

        An operation its tracer cannot see through (``F.pad`` on the channel dimension,
        say) can make it map a group's channels past the end of a member layer.
        """
        for member in self.members(group):
            pruner = self.graph.get_pruner_of_module(member.module)
            count = (pruner.get_out_channels(member.module) if member.direction == "out"
                     else pruner.get_in_channels(member.module))
            if count is not None and member.positions and max(member.positions) >= count:
                return (f"the dependency graph maps the group onto {member.direction}put channel "
                        f"{max(member.positions)} of {member.name}, which has {count}: an operation it cannot "
                        "trace (such as F.pad on channels) couples these layers")
        return None

    def moves_in(self, group: ChannelGroup) -> list[str]:
        """The splits and shuffles the group's channels pass through, in words."""
        whole = self._tp_group(group, list(range(self.size(group))))
        return _splits.described(whole) + _shuffles.described(whole)

    def forget_members(self) -> None:
        """Drop cached member lists (after modules were changed behind the graph's back)."""
        self._full_members.clear()

    def plan_cut(self, group: ChannelGroup, root_positions: list[int]) -> PlannedCut:
        """What removing channels ``root_positions`` of the group takes from each member."""
        tp_group = self._tp_group(group, sorted(root_positions))
        return PlannedCut(self, tp_group, self._members(tp_group))

    def named(self, name: str) -> nn.Module:
        return self.model.get_submodule(name)

    def _tp_group(self, group: ChannelGroup, positions: list[int]):
        pruner = self.graph.get_pruner_of_module(group.root)
        self._map_moves()
        return self.graph.get_pruning_group(group.root, pruner.prune_out_channels, positions)

    def _map_moves(self) -> None:
        """Map channels through the pads and shuffles at their current sizes."""
        _pads.map_pads(self.graph)
        _shuffles.map_shuffles(self.graph)

    def _members(self, tp_group) -> list[Member]:
        members = []
        for item in tp_group:
            module = item.dep.target.module
            if not isinstance(module, nn.Module) or module not in self.names:
                continue  # Torch-Pruning's stand-ins for add, concat, reshape: nothing to cut
            direction = "out" if self.graph.is_out_channel_pruning_fn(item.dep.handler) else "in"
            members.append(Member(self.names[module], module, direction, tuple(item.idxs), tuple(item.root_idxs)))
        return members


@dataclass(frozen=True)
class PlannedCut:
    graph: ChannelGraph
    tp_group: object
    members: list[Member]

    @property
    def operations(self) -> list[nn.Module]:
        """Torch-Pruning's stand-ins the cut edits (concatenations, splits, pads, shuffles)."""
        return [item.dep.target.module for item in self.tp_group
                if isinstance(item.dep.target.module, (tp.ops._SplitOp, tp.ops._ConcatOp))
                or hasattr(item.dep.target.module, "trimkit_padding")
                or hasattr(item.dep.target.module, "trimkit_shuffle")]

    def apply(self) -> None:
        self.graph.forget_members()
        self.tp_group.prune(record_history=False)
        _splits.after_cut(self.tp_group)
        _pads.after_cut(self.tp_group)
        _shuffles.after_cut(self.tp_group)


def _trace_order(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[list[str], list[str]]:
    """Leaf modules in the order they first run, and the weight layers that produce
    the model's output: directly, or as the last weight layer to run when it has as
    many channels as the model's output (Combine's "last layer")."""
    order: list[str] = []
    outputs: dict[str, torch.Tensor] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, _inputs, output):
        name = names[module]
        if name not in outputs:
            order.append(name)
        if isinstance(output, torch.Tensor):
            outputs[name] = output

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with eval_mode(model), torch.no_grad():
            result = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    final = output_tensors(result)
    weight_layers = [n for n in order if isinstance(model.get_submodule(n), WEIGHT_LAYERS)]
    at_output = {n for n, t in outputs.items() if n in weight_layers and any(t is f for f in final)}
    if weight_layers and any(_channels(outputs[weight_layers[-1]]) == _channels(f) for f in final):
        at_output.add(weight_layers[-1])  # a classifier before softmax, a conv head before pooling
    if weight_layers and any(outputs[weight_layers[-1]].numel() == f.numel() for f in final):
        at_output.add(weight_layers[-1])  # rearranged into the output: a pixel shuffle, a reshape
    return order, sorted(at_output)


def _channels(tensor: torch.Tensor) -> int | None:
    return int(tensor.shape[1]) if tensor.dim() >= 2 else None
