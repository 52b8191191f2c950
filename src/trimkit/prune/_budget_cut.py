"""The budgeted cut and ``round_to: auto`` on a pruning session (see ``_budget``)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from trimkit.measure._latency_table import (LatencyTable, build_table, count_step, fit_calibration, model_key,
                                            table_counts)
from trimkit.errors import TrimkitError
from trimkit.measure._timer import export_onnx
from trimkit.measure._units import UnitShape, layer_units
from trimkit.prune._budget import (BudgetOutcome, BudgetRound, CostModel, PruneTarget, check_reachable,
                                   greedy_counts, noise_of, removal_for, step_of, unit_shares)
from trimkit.prune._graph import ChannelGroup
from trimkit.prune._scoring import GroupScorer
from trimkit.prune._session import PruningSession

# a count is as fast as a smaller one when its table time is within this of it
SAME_SPEED = 0.03
# seconds of calls each whole model gets when the calibration and a budget's rounds time it
WHOLE_MODEL_TIME_S = 1.0


def runtime_table(session: PruningSession, groups: list[ChannelGroup], target: PruneTarget, progress: bool
                  ) -> tuple[LatencyTable, dict[str, UnitShape], dict, Callable[[UnitShape, int, int], float], float]:
    """The table of the session's model on the target runtime (only the counts pruning
    these groups can leave), its layers, their group shares, a layer's in-model time at
    given counts, and the constant."""
    units = layer_units(session.original, session.inputs)
    shares = unit_shares(session.graph, groups, units)
    counts = {}
    for name, unit in units.items():
        directions = {direction for _group, direction, _share in shares.get(name, ())}
        counts[name] = (table_counts(unit.in_channels) if "in" in directions else [unit.in_channels],
                        table_counts(unit.out_channels) if "out" in directions else [unit.out_channels])
    table, _ = build_table(session.original, session.inputs, target.runtime(), batch_size=target.batch_size,
                           counts=counts, table_path=target.table, progress=progress,
                           calibrate=_two_point_calibration(session, target), timer=target.timer())
    constant, scale = table.calibration(model_key(session.original, units))

    def in_model_ms(unit: UnitShape, in_count: int, out_count: int) -> float:
        return scale * table.layer_ms(unit, in_count, out_count)

    return table, units, shares, in_model_ms, constant


def latency_table(model: torch.nn.Module, example_inputs, target: PruneTarget | dict | None = None, *,
                  progress: bool = False, **settings) -> LatencyTable:
    """The latency table a budgeted cut of ``model`` uses on ``target``'s runtime (a
    :class:`PruneTarget` or its fields: ``backend``, ``batch_size``, ``threads``,
    ``precision``, ``table``): every count of every prunable layer, calibrated on the
    model and its half. Cached as :func:`trimkit.measure.build_table` caches."""
    target = PruneTarget.of(target, **settings)
    session = PruningSession(model, example_inputs, verify=False)
    table, _ = build_table(model, session.inputs, target.runtime(), batch_size=target.batch_size,
                           table_path=target.table, progress=progress,
                           calibrate=_two_point_calibration(session, target), timer=target.timer())
    return table


def _two_point_calibration(session: PruningSession, target: PruneTarget):
    """Calibrate the table on the whole model and on it with half of every conv's
    channels cut, timed interleaved: two points fix what is not a layer (the constant)
    and what a layer costs inside the model against alone (the scale)."""
    def calibrate(table: LatencyTable, units: dict[str, UnitShape]) -> tuple[float, float]:
        from trimkit.prune.structured import structured

        timer = target.timer()
        options = target.runtime().model_copy(update={"min_time_s": WHOLE_MODEL_TIME_S})
        shapes = [tuple(t.shape[1:]) for t in session.inputs]
        full_sum = sum(table.layer_ms(u, u.in_channels, u.out_channels) for u in units.values())
        try:
            half = structured(session.original, session.inputs, ratio=0.5, layers="both", verify=False).model
        except TrimkitError:  # nothing to halve: the whole model alone
            (whole,) = timer.time_models([session.original], options, target.batch_size, shapes)
            return fit_calibration([(whole.p50_ms, full_sum)])
        cut = layer_units(half, session.inputs)
        whole, halved = timer.time_models([session.original, half], options, target.batch_size, shapes)
        half_sum = sum(table.layer_ms(u, cut[name].in_channels, cut[name].out_channels) if name in cut
                       else table.layer_ms(u, u.in_channels, u.out_channels) for name, u in units.items())
        return fit_calibration([(whole.p50_ms, full_sum), (halved.p50_ms, half_sum)])

    return calibrate


def cut_to_budget(session: PruningSession, groups: list[ChannelGroup], scorer: GroupScorer, target: PruneTarget,
                  progress: bool = False) -> BudgetOutcome:
    graph = session.graph
    sizes = {g.name: graph.size(g) for g in groups}
    layouts = {g.name: graph.layout(g) for g in groups}
    # a group's scores are its producers' mean; a channel's importance is their sum, as what
    # it saves is the sum over the layers it spans (a residual channel spans a whole stage)
    scores = {g.name: scorer.scores(g) * len(g.producers) for g in groups}
    steps = {g.name: step_of(sizes[g.name], layouts[g.name], count_step(sizes[g.name])) for g in groups}
    floor = {name: min(sizes[name], max(step, math.ceil((1 - target.max_ratio) * sizes[name])))
             for name, step in steps.items()}
    table_text, build_s = None, None
    if target.on_runtime:
        table, units, shares, cost, constant = runtime_table(session, groups, target, progress)
        unit, table_text, build_s = "ms", table.settings.describe(), table.build_s
        measure = _latency_of(session, target)
    else:
        units = layer_units(session.original, session.inputs)
        shares = unit_shares(graph, groups, units)
        kind = target.budget_kind
        cost = UnitShape.macs if kind == "macs" else UnitShape.params
        whole = session.before.macs if kind == "macs" else session.before.params
        constant = whole - sum(cost(u, u.in_channels, u.out_channels) for u in units.values())
        unit = "MACs" if kind == "macs" else "params"
        measure = _counted(session, kind)
    model = CostModel(units, cost, constant, shares, sizes)
    unpruned = model.total(sizes)
    budget = {"latency_ms": target.latency_ms, "speedup": unpruned / (target.speedup or 1.0),
              "macs": target.macs, "params": target.params}[target.budget_kind]
    initial_frozen = list(session.frozen)
    # a latency aims inside the band [budget * (1 - tolerance), budget], at its middle, so
    # that noise in either direction keeps it there; a count is predicted exactly
    desired = budget * (1 - target.tolerance / 2) if target.on_runtime else budget
    aim, rounds, tried = desired, [], []

    def recut(kept: dict[str, int]) -> None:
        if tried:
            session.reset()
            session.frozen[:] = initial_frozen
        _cut(session, groups, scores, kept, layouts)

    def cut_and_measure(kept: dict[str, int], aimed: float) -> bool:
        """Cut to ``kept``, measure, record the round; whether it lands in the band."""
        recut(kept)
        measured, noise, reference = measure()
        rounds.append(BudgetRound(aimed, model.total(kept), measured, reference))
        # a speed-up is over the unpruned model timed beside the cut one: in the table's scale,
        # the cut one measures measured * unpruned / reference
        scale = unpruned / reference if target.budget_kind == "speedup" and reference else 1.0
        tried.append((kept, measured * scale, noise * scale))
        return budget * (1 - target.tolerance) <= measured * scale <= budget + noise * scale

    floor_cost = model.total(floor)
    if target.on_runtime and unpruned > budget and floor_cost > budget:
        # the table says the floor is too slow: a table is a prediction, so measure the floor itself
        landed = cut_and_measure(dict(floor), floor_cost)
        _, measured, noise = tried[-1]
        if measured > budget + noise:
            reference = rounds[-1].unpruned_measured or unpruned
            raise TrimkitError(f"the budget {target.describe()} cannot be reached: with every group cut as far as "
                               f"allowed (max_ratio {target.max_ratio:g}) the model measured "
                               f"{rounds[-1].measured:.4g} ms against {reference:.4g} ms unpruned "
                               f"({reference / rounds[-1].measured:.2f}x); give a larger budget, a larger max_ratio, "
                               "or prune more layers (layers: both)")
        aim = min(max(_next_aim(rounds, tried, budget, desired), floor_cost), unpruned * (1 - 1e-6))
    else:
        check_reachable(unpruned, budget, floor_cost, unit)
        landed = False
    while not landed and len(rounds) < target.rounds:
        kept = greedy_counts(model, groups, scores, steps, aim, floor)
        if any(kept == earlier for earlier, _, _ in tried):
            break  # the aim moved too little to change the cut: measuring it again tells nothing
        landed = cut_and_measure(kept, aim)
        if not landed:
            aim = _next_aim(rounds, tried, budget, desired)
            aim = min(max(aim, floor_cost), unpruned * (1 - 1e-6))
    met = [index for index, (_, measured, noise) in enumerate(tried) if measured <= budget + noise]
    best = max(met, key=lambda i: tried[i][1]) if met else min(range(len(tried)), key=lambda i: tried[i][1])
    if best != len(tried) - 1:
        recut(tried[best][0])
    chosen = rounds[best]
    _kept, scaled, scaled_noise = tried[best]
    scale = scaled / chosen.measured if chosen.measured else 1.0
    return BudgetOutcome(target.describe(), unit, budget / scale, unpruned, chosen.predicted, chosen.measured,
                         scaled_noise / scale, scaled <= budget + scaled_noise, rounds, table_text, build_s,
                         chosen.unpruned_measured)


def _next_aim(rounds: list[BudgetRound], tried: list, budget: float, desired: float) -> float:
    """Where the next cut aims its prediction. Between a round measured too slow and one
    too fast, by linear interpolation of measured against predicted (a runtime's kernels
    change at some channel counts, so one round's ratio overshoots both ways); before
    there are both, the last prediction corrected by the ratio it was off by."""
    points = [(r.predicted, measured, noise) for r, (_, measured, noise) in zip(rounds, tried, strict=True)]
    slow = [(p, m) for p, m, noise in points if m > budget + noise]
    fast = [(p, m) for p, m, noise in points if m <= budget + noise]
    if slow and fast:
        (p_slow, m_slow), (p_fast, m_fast) = min(slow, key=lambda x: x[1]), max(fast, key=lambda x: x[1])
        if m_slow > m_fast:
            return p_fast + (desired - m_fast) * (p_slow - p_fast) / (m_slow - m_fast)
    predicted, measured, _ = points[-1]
    return desired * predicted / max(measured, 1e-12)


def _cut(session: PruningSession, groups, scores, kept, layouts) -> None:
    for group in groups:
        removal = removal_for(scores[group.name], kept[group.name], layouts[group.name])
        if removal:
            session.cut(group, removal)


def _latency_of(session: PruningSession, target: PruneTarget) -> Callable[[], tuple[float, float, float]]:
    """Time the cut model and the unpruned one interleaved: p50 and noise of the cut one,
    p50 of the unpruned one."""
    shapes = [tuple(t.shape[1:]) for t in session.inputs]
    options = target.runtime().model_copy(update={"min_time_s": WHOLE_MODEL_TIME_S})
    timer = target.timer()
    kept = tempfile.TemporaryDirectory(prefix="trimkit-unpruned-")  # removed with the closure
    original: list[Path] = []

    def measure() -> tuple[float, float, float]:
        if not original:  # exported once, timed beside every round's cut
            original.append(export_onnx(session.original, Path(kept.name), shapes))
        cut, unpruned = timer.time_models([session.model, original[0]], options, target.batch_size, shapes)
        return cut.p50_ms, noise_of(cut.p50_ms, cut.p90_ms, cut.iterations), unpruned.p50_ms

    return measure


def _counted(session: PruningSession, kind: str) -> Callable[[], tuple[float, float, None]]:
    from trimkit.measure import profile

    def measure() -> tuple[float, float, None]:
        counted = profile(session.model, session.inputs)
        return float(counted.macs if kind == "macs" else counted.params), 0.0, None

    return measure


class AutoRounding:
    """``round_to: auto``: a group keeps a channel count its target's kernels like -- one
    that every larger count runs slower than (by more than SAME_SPEED); of those, the
    nearest to what the ratio or threshold chose (the larger on a tie). A count past a
    vector width or a blocked layout's block is then rounded back to it, and a count
    below a step in the table up to the largest count that runs as fast."""

    def __init__(self, session: PruningSession, groups: list[ChannelGroup], target: PruneTarget,
                 progress: bool = False) -> None:
        _table, units, shares, cost, constant = runtime_table(session, groups, target, progress)
        self.sizes = {g.name: session.graph.size(g) for g in groups}
        self.model = CostModel(units, cost, constant, shares, self.sizes)
        self.affected: dict[str, list[str]] = {}
        for name, entries in shares.items():
            for group, _direction, _share in entries:
                self.affected.setdefault(group, []).append(name)

    def efficient_counts(self, group: ChannelGroup) -> list[int]:
        size = self.sizes.get(group.name)
        units = self.affected.get(group.name)
        if size is None or not units:
            return []
        grid = table_counts(size)
        costs = {c: sum(self.model.unit_cost(u, {group.name: c}) for u in units) for c in grid}
        return [c for c in grid if all(costs[d] > costs[c] * (1 + SAME_SPEED) for d in grid if d > c)]

    def keep(self, group: ChannelGroup, kept: int) -> int:
        counts = self.efficient_counts(group)
        if not counts or kept >= self.sizes[group.name]:
            return kept
        return min(counts, key=lambda c: (abs(c - kept), -c))

    def adjust(self, group: ChannelGroup, scores: torch.Tensor, removal: list[int]) -> list[int]:
        """The removal with the group's count moved to the nearest efficient count."""
        kept = self.keep(group, scores.numel() - len(removal))
        count = scores.numel() - kept
        return sorted(torch.sort(scores, stable=True).indices[:count].tolist()) if count > 0 else []
