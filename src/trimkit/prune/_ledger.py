"""Which original channels every module has lost, so that cuts made in each module's
current numbering can be stated, masked and reported in the original numbering."""

from __future__ import annotations

from collections import defaultdict

from trimkit.prune._graph import ChannelGraph, Member


class ChannelLedger:
    def __init__(self, graph: ChannelGraph) -> None:
        self._graph = graph
        self._kept: dict[tuple[str, str], list[int]] = {}
        self.removed: dict[tuple[str, str], set[int]] = defaultdict(set)  # (module, direction) -> channels

    def kept(self, name: str, current_count: int) -> list[int]:
        """Original numbers of the output channels ``name`` still has."""
        return list(self._kept.get((name, "out"), range(current_count)))

    def original_positions(self, member: Member) -> list[int]:
        kept = self._kept[(member.name, member.direction)]
        return [kept[p] for p in member.positions]

    def masks_after(self, members: list[Member]) -> dict[tuple[str, str], set[int]]:
        """The removed channels (original numbering) if ``members`` were cut too.

        Call before the cut: it also starts the record of any module seen for the first
        time, at its current (so far uncut, hence original) channel count.
        """
        for member in members:
            key = (member.name, member.direction)
            if key not in self._kept:
                self._kept[key] = list(range(self._channels(member)))
        masks = {key: set(value) for key, value in self.removed.items()}
        for member in members:
            masks.setdefault((member.name, member.direction), set()).update(self.original_positions(member))
        return masks

    def commit(self, members: list[Member]) -> None:
        """Record a cut; call with the members as :meth:`masks_after` saw them."""
        for member in members:
            key = (member.name, member.direction)
            kept = self._kept[key]
            cut = set(member.positions)
            self.removed[key].update(kept[p] for p in cut)
            self._kept[key] = [original for position, original in enumerate(kept) if position not in cut]

    def _channels(self, member: Member) -> int:
        """The member's channel count now; for a module no cut has touched, its original."""
        pruner = self._graph.graph.get_pruner_of_module(member.module)
        count = (pruner.get_out_channels(member.module) if member.direction == "out"
                 else pruner.get_in_channels(member.module))
        return int(count)
