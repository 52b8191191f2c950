"""Scores of a group's channels: the criterion on each producer, normalised within
that producer, averaged over the producers.

Coupled groups (a residual add, a concatenation, a depthwise convolution) have
several producers, each with its own scale of criterion values. Each producer's
values over the group's channels are normalised first (``rank``, ``percentile``,
``max``, ``mean`` or ``none``), then a channel's group score is the mean of its normalised
values over the producers that hold it. With ``rank`` every producer votes equally.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trimkit._running import eval_mode
from trimkit.errors import TrimkitError
from trimkit.prune._graph import ChannelGraph, ChannelGroup, Member
from trimkit.prune.criteria import Criterion, channel_matrix

NORMALIZATIONS = ("rank", "percentile", "max", "mean", "none")


@dataclass(frozen=True)
class Calibration:
    inputs: tuple[torch.Tensor, ...]
    labels: torch.Tensor | None


def normalize_scores(values: torch.Tensor, method: str) -> torch.Tensor:
    """Map one producer's criterion values to a scale comparable across layers."""
    count = values.numel()
    if method == "none":
        return values.float()
    if method == "max":
        peak = values.abs().max()
        return values.float() / peak if peak > 0 else torch.zeros_like(values, dtype=torch.float)
    if method == "mean":
        average = values.abs().mean()
        return values.float() / average if average > 0 else torch.zeros_like(values, dtype=torch.float)
    if method == "rank":
        if count == 1:
            return torch.ones(1)
        order = torch.sort(values, stable=True).indices
        ranks = torch.empty(count)
        ranks[order] = torch.arange(count, dtype=torch.float)
        return ranks / (count - 1)
    if method == "percentile":
        below = (values[None, :] < values[:, None]).sum(dim=1).float()
        at_or_below = (values[None, :] <= values[:, None]).sum(dim=1).float()
        return (below + at_or_below) / (2 * count)
    raise TrimkitError(f"unknown normalize {method!r}; choose one of: {', '.join(NORMALIZATIONS)}")


class GroupScorer:
    """Scores groups of one graph by one criterion; data criteria run the calibration
    batch through the current (partly pruned) model each time responses are needed."""

    def __init__(self, graph: ChannelGraph, criterion: Criterion, normalize: str,
                 calibration: Calibration | None) -> None:
        if criterion.needs_data and calibration is None:
            raise TrimkitError(f"criterion {criterion.name!r} needs data: pass calibration=inputs or (inputs, labels)")
        if criterion.needs == "gradients" and (calibration is None or calibration.labels is None):
            raise TrimkitError(f"criterion {criterion.name!r} needs labels: pass calibration=(inputs, labels)")
        self.graph = graph
        self.criterion = criterion
        self.normalize = normalize
        self.calibration = calibration

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        if self.criterion.needs == "group":
            return normalize_scores(self._whole_group(group), self.normalize)
        size = self.graph.size(group)
        producers = [m for m in self.graph.members(group) if m.is_producer]
        responses = self._responses([m.name for m in producers]) if self.criterion.needs_data else {}
        total = torch.zeros(size)
        votes = torch.zeros(size)
        for member in producers:
            raw = self._raw(member, responses)
            if raw.shape != (len(member.positions),):
                raise TrimkitError(
                    f"criterion {self.criterion.name!r} returned shape {tuple(raw.shape)} for layer {member.name}; "
                    f"it must return one score per filter ({len(member.positions)})"
                )
            root = torch.tensor(member.root_positions)
            total[root] += normalize_scores(raw.detach().float().cpu(), self.normalize)
            votes[root] += 1
        return total / votes.clamp_min(1)

    def _whole_group(self, group: ChannelGroup) -> torch.Tensor:
        """The criterion on every member's slice of the group's channels, summed per
        channel (members without per-channel weights, an activation say, add nothing)."""
        total = torch.zeros(self.graph.size(group))
        for member in self.graph.members(group):
            matrix = channel_matrix(member.module, member.direction)
            if matrix is None:
                continue
            values = self.criterion.function(matrix[list(member.positions)])
            total.index_add_(0, torch.tensor(member.root_positions), values.float())
        return total

    def _raw(self, member: Member, responses) -> torch.Tensor:
        positions = list(member.positions)
        weights = channel_matrix(member.module, "out")[positions]
        if not self.criterion.needs_data:
            return self.criterion.function(weights)
        response, gradient = responses[member.name]
        gradient = gradient[:, positions] if gradient is not None else None
        return self.criterion.function(weights, response[:, positions], gradient)

    def _responses(self, producer_names: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Each producer's response (after a batch norm fed by it directly) and its gradient."""
        model = self.graph.model
        names = {module: name for name, module in model.named_modules()}
        outputs: dict[str, torch.Tensor] = {}
        consumers: dict[int, str] = {}
        want_gradients = self.criterion.needs == "gradients"

        def record(module, inputs, output):
            name = names[module]
            if inputs and isinstance(inputs[0], torch.Tensor):
                consumers.setdefault(id(inputs[0]), name)
            if isinstance(output, torch.Tensor):
                if want_gradients and output.requires_grad:
                    output.retain_grad()
                outputs[name] = output

        handles = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
        try:
            with eval_mode(model), torch.set_grad_enabled(want_gradients):
                logits = model(*self.calibration.inputs)
                if want_gradients:
                    model.zero_grad(set_to_none=True)
                    F.cross_entropy(logits, self.calibration.labels).backward()
        finally:
            for handle in handles:
                handle.remove()
        result = {}
        for name in producer_names:
            response = outputs[name]
            follower = consumers.get(id(response))
            if follower is not None and isinstance(model.get_submodule(follower), nn.modules.batchnorm._BatchNorm):
                response = outputs[follower]
            gradient = response.grad if want_gradients else None
            result[name] = (response.detach(), None if gradient is None else gradient.detach())
        if want_gradients:
            model.zero_grad(set_to_none=True)
        return result
