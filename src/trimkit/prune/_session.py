"""A pruning session: a copy of the model, cut group by group, each cut verified.

Structured pruning runs one session over all groups; sensitivity analysis runs one
per group and cuts it deeper step by step, so the dependency graph, the verification
reference and the bookkeeping are built once and shared by every point.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

from torch import nn

from trimkit._masks import carry_through_cut
from trimkit._shape_edits import attribute_changes, record_edits
from trimkit._threads import single_thread
from trimkit.measure import profile
from trimkit.measure._profile import ExampleInputs, as_input_tuple, macs_after_channel_edits
from trimkit.prune._graph import WEIGHT_LAYERS, ChannelGraph, ChannelGroup
from trimkit.prune._ledger import ChannelLedger
from trimkit.prune._result import FrozenGroup, LayerChange, PruneResult
from trimkit.prune._verify import MaskedReference, VerificationError

SURGERY_ERRORS = (RuntimeError, ValueError, IndexError, AssertionError, TypeError, KeyError)


class PruningSession:
    def __init__(self, model: nn.Module, example_inputs: ExampleInputs, *, verify: bool = True) -> None:
        self.started = time.perf_counter()
        self.original = model
        self.inputs = as_input_tuple(example_inputs)
        with single_thread():
            self.before = profile(model, self.inputs)
            self.model = copy.deepcopy(model)
            self.graph = ChannelGraph(self.model, self.inputs)
            self.ledger = ChannelLedger(self.graph)
            self.reference = MaskedReference(model, self.inputs) if verify else None
        self.frozen: list[FrozenGroup] = []
        self.groups_cut: set[str] = set()
        self.candidate_layers: list[str] = []
        self._pristine: dict[int, tuple[nn.Module, nn.Module]] = {}  # first-touch copies, for reset()

    def candidates(self, selected) -> list[ChannelGroup]:
        """Groups ``selected(group)`` accepts; those the graph cannot describe are frozen."""
        found = []
        for group in self.graph.groups():
            if not selected(group):
                continue
            problem = self.graph.inconsistency(group) or self.graph.unprunable(group)
            if problem is None:
                found.append(group)
            else:
                self.freeze(group, problem)
        self.candidate_layers = [name for group in found for name in group.producers]
        return found

    def freeze(self, group: ChannelGroup, reason: str) -> None:
        self.frozen.append(FrozenGroup(group.label, group.producers, reason))

    def cut(self, group: ChannelGroup, positions: Sequence[int]) -> bool:
        """Remove channels (root numbering, now) of the group and verify; on failure the
        touched modules are restored, the group frozen, and False returned."""
        with single_thread():
            return self._cut(group, positions)

    def _cut(self, group: ChannelGroup, positions: Sequence[int]) -> bool:
        try:
            planned = self.graph.plan_cut(group, list(positions))
        except SURGERY_ERRORS as error:
            self.freeze(group, _surgery_failure(error))
            return False
        members = planned.members
        touched = [m.module for m in members] + planned.operations
        backups = {id(module): (module, copy.deepcopy(module)) for module in touched}
        for key, backup in backups.items():
            self._pristine.setdefault(key, backup)
        masks = self.ledger.masks_after(members)
        try:
            planned.apply()
            if self.reference is not None:
                self.reference.check(self.model, masks)
        except VerificationError as error:
            reason = str(error)
        except SURGERY_ERRORS as error:
            reason = _surgery_failure(error)
        else:
            self.ledger.commit(members)
            if self.reference is not None:
                self.reference.commit(masks)
            self.groups_cut.add(group.name)
            return True
        _restore(backups)
        self.graph.forget_members()
        moves = self.graph.moves_in(group)
        if moves:
            reason = f"it goes through {'; '.join(moves)}: {reason}"

        self.freeze(group, reason)
        return False

    def reset(self) -> None:
        """Undo every cut: the model, the bookkeeping and the reference are as at the
        start, and the dependency graph (which holds the same module objects) stays valid."""
        _restore(self._pristine)
        self._pristine.clear()
        self.graph.forget_members()
        self.ledger = ChannelLedger(self.graph)
        if self.reference is not None:
            self.reference.commit({})
        self.groups_cut.clear()

    def macs(self) -> int:
        """MACs of the model as it stands, from its layer shapes where that is exact."""
        counted = macs_after_channel_edits(self.model, self.before, self.original)
        if counted is not None:
            return counted
        with single_thread():
            return profile(self.model, self.inputs).macs

    def root_channels(self, group: ChannelGroup) -> list[int]:
        """The original numbers of the group's channels still present, in current order."""
        return self.ledger.kept(self.graph.names[group.root], self.graph.size(group))

    def result(self) -> PruneResult:
        self.model.train(self.original.training)
        record_edits(self.model, attribute_changes(self.original, self.model))
        carry_through_cut(self.model, self.ledger.removed)  # unstructured masks follow the cut
        with single_thread():
            after = profile(self.model, self.inputs)
        weight_layers = [n for n, m in self.original.named_modules() if isinstance(m, WEIGHT_LAYERS)]
        return PruneResult(
            model=self.model,
            before=self.before,
            after=after,
            layers={name: LayerChange(_out_channels(self.original.get_submodule(name)),
                                      _out_channels(self.model.get_submodule(name))) for name in weight_layers},
            removed_channels={name: sorted(self.ledger.removed.get((name, "out"), ())) for name in weight_layers},
            frozen=list(self.frozen),
            prunable_layers=list(self.candidate_layers),
            groups_pruned=len(self.groups_cut),
            verified=self.reference is not None,
            seconds=time.perf_counter() - self.started,
        )


def _restore(backups: dict[int, tuple[nn.Module, nn.Module]]) -> None:
    """Put modules back as their backups were, keeping the module objects themselves (the
    dependency graph refers to them). The backups are copied again, so that later cuts,
    which replace entries of the restored ``_parameters`` dicts, cannot reach them."""
    for module, backup in backups.values():
        module.__dict__.clear()
        module.__dict__.update(copy.deepcopy(backup).__dict__)


def _surgery_failure(error: Exception) -> str:
    first = str(error).strip().splitlines()
    return f"surgery failed: {type(error).__name__}: {first[0] if first else ''}"


def _out_channels(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.modules.conv._ConvNd) else module.out_features
