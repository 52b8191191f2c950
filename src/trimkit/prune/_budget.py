"""Pruning to a budget: a latency on a named runtime (or a speed-up over the unpruned
model there), or a number of MACs or parameters, instead of a ratio.

The cost of a choice of channel counts is predicted layer by layer (a latency table
measured on the target, or MAC and parameter counts), and channels go greedily across
all groups at once: at each step the removal that gives up the least importance per
millisecond (or MAC) saved, HALP's knapsack solved greedily as NetAdapt does. The cut is
then made and verified as any other, the result measured, and the prediction corrected
by what the measurement found, until the measured cost is within the budget (within the
measurement's noise) and not more than ``tolerance`` below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import torch
from pydantic import AfterValidator, Field, model_validator

from trimkit._options import Options
from trimkit.errors import TrimkitError
from trimkit.measure._options import RuntimeOptions, _known_backend, _known_precision
from trimkit.measure._timer import LocalTimer, RemoteTimer, Timer
from trimkit.measure._units import UnitShape
from trimkit.prune._graph import ChannelGroup, Layout
from trimkit.prune._selection import enforce_keep_rules

BUDGET_KINDS = ("latency_ms", "speedup", "macs", "params")
_REMOTE_TIMERS: dict[tuple, RemoteTimer] = {}  # one per queue, so that the device is asked where it is once
NOISE_FLOOR = 0.02  # a latency within 2 % of the budget is at the budget: what repeated runs differ by here


class PruneTarget(Options):
    """What a budgeted cut aims at, and the runtime its latency is measured on. With no
    budget it still names the runtime whose latency table chooses channel counts
    (``round_to: auto``). No group loses more than ``max_ratio`` of its channels (as
    Torch-Pruning's ``max_pruning_ratio``): with importance normalised per layer, the
    cheapest savings would otherwise empty the layers with the most MACs per channel.
    ``tolerance``: how far below the budget the measured result may be; ``rounds``: at
    most this many cuts measured and corrected; ``table``: a latency table file to use.
    ``queue`` and ``device_name``: time on another device instead of here, through the
    PostgreSQL benchmark queue its ``trimkit bench-worker`` serves (the table's layers,
    the calibration and every round), waiting at most ``timeout_s`` for each job."""

    latency_ms: float | None = Field(default=None, gt=0.0)
    speedup: float | None = None
    macs: int | None = Field(default=None, gt=0)
    params: int | None = Field(default=None, gt=0)
    backend: Annotated[str, AfterValidator(_known_backend)] = "onnxruntime"
    batch_size: int = Field(default=1, ge=1)
    threads: int | None = Field(default=None, ge=1)
    precision: Annotated[str, AfterValidator(_known_precision)] = "auto"
    table: str | None = None
    max_ratio: float = Field(default=0.9, gt=0.0, lt=1.0)
    tolerance: float = Field(default=0.1, gt=0.0, lt=1.0)
    rounds: int = Field(default=4, ge=1, le=12)
    queue: str | None = None
    device_name: str | None = None
    timeout_s: float = Field(default=600.0, gt=0.0)

    @model_validator(mode="after")
    def _one_budget(self) -> PruneTarget:
        given = [name for name in BUDGET_KINDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one budget, not {' and '.join(given)}")
        if self.speedup is not None and not (math.isfinite(self.speedup) and self.speedup > 1.0):
            raise ValueError(f"speedup {self.speedup} is not above 1: a budget asks for a faster model; give a "
                             "speed-up over the unpruned model such as 2.0")
        if (self.queue is None) != (self.device_name is None):
            raise ValueError("timing on another device needs both queue (its benchmark queue's PostgreSQL URL) "
                             "and device_name (the queue its trimkit bench-worker serves)")
        if self.queue is not None and self.backend not in ("onnxruntime", "openvino"):
            raise ValueError(f"a benchmark worker times ONNX files on onnxruntime or openvino, not {self.backend}")
        return self

    def timer(self) -> Timer:
        """Where latencies are timed: here, or by the benchmark worker of ``device_name``."""
        if self.queue is None:
            return LocalTimer()
        key = (self.queue, self.device_name, self.timeout_s)
        if key not in _REMOTE_TIMERS:
            _REMOTE_TIMERS[key] = RemoteTimer(self.queue, self.device_name or "", self.timeout_s)
        return _REMOTE_TIMERS[key]

    @property
    def budget_kind(self) -> str | None:
        return next((name for name in BUDGET_KINDS if getattr(self, name) is not None), None)

    @property
    def on_runtime(self) -> bool:
        return self.budget_kind in ("latency_ms", "speedup")

    def runtime(self) -> RuntimeOptions:
        return RuntimeOptions(backend=self.backend, threads=self.threads, precision=self.precision)

    def describe(self) -> str:
        where = f"{self.backend}, batch {self.batch_size}" + (f", {self.threads} threads" if self.threads else "")
        if self.device_name is not None:
            where += f", on device {self.device_name}"
        kind = self.budget_kind
        if kind == "latency_ms":
            return f"{self.latency_ms:g} ms on {where}"
        if kind == "speedup":
            return f"{self.speedup:g}x faster on {where}"
        return f"{getattr(self, kind):,} {'MACs' if kind == 'macs' else kind}" if kind else where


@dataclass
class BudgetRound:
    aimed: float  # what the prediction was asked to meet
    predicted: float
    measured: float
    unpruned_measured: float | None = None  # the unpruned model timed interleaved with the cut one


@dataclass
class BudgetOutcome:
    """What a budgeted cut aimed at, predicted and measured (latencies in ms)."""

    target: str
    unit: str
    budget: float
    unpruned: float
    predicted: float
    measured: float
    noise: float
    met: bool
    rounds: list[BudgetRound] = field(default_factory=list)
    table: str | None = None
    table_build_s: float | None = None
    unpruned_measured: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def verdict(self) -> str:
        if self.measured <= self.budget:
            return "met"
        return "met within the measurement's noise" if self.met else "NOT met"

    def summary(self) -> str:
        rounds = f"after {len(self.rounds)} round(s)"
        if self.unit != "ms":
            return (f"budget {self.target}: {self.verdict}: {self.measured:,.0f} {self.unit} (unpruned "
                    f"{self.unpruned:,.0f}; {self.unpruned / max(self.measured, 1e-12):.2f}x fewer) {rounds}")
        reference = self.unpruned_measured or self.unpruned
        return (f"budget {self.target} = {self.budget:.4g} ms: {self.verdict}: measured {self.measured:.4g} "
                f"± {self.noise:.2g} ms against {reference:.4g} ms unpruned timed beside it "
                f"({reference / max(self.measured, 1e-12):.2f}x; the table predicted {self.predicted:.4g} ms) "
                f"{rounds}")


class CostModel:
    """The predicted cost (ms, MACs or parameters) of the model with each candidate group
    cut to a number of channels; other layers stay as they are."""

    def __init__(self, units: dict[str, UnitShape], cost: Callable[[UnitShape, int, int], float], constant: float,
                 shares: dict[str, list[tuple[str, str, float]]], sizes: dict[str, int]) -> None:
        self.units, self.cost, self.constant = units, cost, constant
        self.shares = shares  # unit -> [(group, "in"|"out", channels of the unit per channel of the group)]
        self.sizes = sizes

    def counts_of(self, name: str, kept: dict[str, int]) -> tuple[int, int]:
        unit = self.units[name]
        in_count, out_count = float(unit.in_channels), float(unit.out_channels)
        for group, direction, share in self.shares.get(name, ()):
            removed = (self.sizes[group] - kept.get(group, self.sizes[group])) * share
            if direction == "in":
                in_count -= removed
            else:
                out_count -= removed
        return max(1, round(in_count)), max(1, round(out_count))

    def total(self, kept: dict[str, int]) -> float:
        return self.constant + sum(self.unit_cost(name, kept) for name in self.units)

    def unit_cost(self, name: str, kept: dict[str, int]) -> float:
        return self.cost(self.units[name], *self.counts_of(name, kept))


def unit_shares(graph, groups: list[ChannelGroup], units: dict[str, UnitShape]
                ) -> dict[str, list[tuple[str, str, float]]]:
    """For each layer of the table, the groups whose channels it reads or makes, and how
    many of its channels one channel of the group is (a flatten makes one many)."""
    shares: dict[str, list[tuple[str, str, float]]] = {}
    for group in groups:
        size = graph.size(group)
        for member in graph.members(group):
            if member.name in units and member.positions:
                shares.setdefault(member.name, []).append((group.name, member.direction, len(member.positions) / size))
    return shares


def step_of(size: int, layout: Layout, counts_step: int) -> int:
    """Channels one greedy step removes from a group: the table's count step, in whole
    layout units (one offset of every block, whole norm groups)."""
    unit = max(layout.blocks, 1) * max(layout.granule, 1)
    step = max(unit, math.ceil(counts_step / unit) * unit)
    return min(step, max(size - unit, unit))


def greedy_counts(model: CostModel, groups: list[ChannelGroup], scores: dict[str, torch.Tensor],
                  steps: dict[str, int], aim: float, floor: dict[str, int]) -> dict[str, int]:
    """Channel counts per group whose predicted cost is at most ``aim``: remove, step by
    step, the channels that give up the least importance per unit of cost saved (looking
    at every depth a group can still be cut to, as a cost may fall only in whole blocks)."""
    kept = {g.name: scores[g.name].numel() for g in groups}
    ordered = {name: torch.sort(values.float()).values for name, values in scores.items()}
    affected: dict[str, list[str]] = {}
    for unit, entries in model.shares.items():
        for group, _direction, _share in entries:
            affected.setdefault(group, []).append(unit)
    current = model.total(kept)
    while current > aim:
        best = None
        for group in groups:
            name = group.name
            # every depth down to the floor: a blocked kernel saves nothing until a whole block goes
            for left in range(kept[name] - steps[name], floor[name] - 1, -steps[name]):
                trial = {**kept, name: left}
                saved = sum(model.unit_cost(u, kept) - model.unit_cost(u, trial) for u in affected.get(name, ()))
                if saved <= 0:
                    continue
                removed = kept[name] - left
                start = ordered[name].numel() - kept[name]
                lost = float(ordered[name][start:start + removed].sum())
                ratio = lost / saved
                if best is None or ratio < best[0]:
                    best = (ratio, name, left, saved)
        if best is None:
            break
        _, name, left, saved = best
        kept[name] = left
        current -= saved
    return kept


def removal_for(scores: torch.Tensor, keep: int, layout: Layout) -> list[int]:
    """The lowest-scored channels beyond ``keep``, made to respect the layout."""
    count = scores.numel() - keep
    if count <= 0:
        return []
    removal = sorted(torch.sort(scores, stable=True).indices[:count].tolist())
    return enforce_keep_rules(scores, removal, None, layout)


def check_reachable(unpruned: float, budget: float, floor_cost: float, unit: str) -> None:
    if budget >= unpruned:
        raise TrimkitError(f"the budget {budget:,.4g} {unit} is not below the unpruned model's {unpruned:,.4g} "
                           f"{unit}; it needs no pruning (give a smaller budget, or a speed-up above 1)")
    if floor_cost > budget:
        raise TrimkitError(f"the budget {budget:,.4g} {unit} cannot be reached: with every group cut as far as "
                           f"allowed (max_ratio) it is predicted at {floor_cost:,.4g} {unit} (unpruned "
                           f"{unpruned:,.4g}); give a larger budget, a larger max_ratio, or prune more layers "
                           "(layers: both)")


def noise_of(p50_ms: float, p90_ms: float, calls: int) -> float:
    """How far the median may be off: the spread from median to 90th percentile over the
    square root of the calls timed (the median's own error, not one call's), at least
    NOISE_FLOOR of the median (what repeated runs differ by)."""
    return max(NOISE_FLOOR * p50_ms, (p90_ms - p50_ms) / math.sqrt(max(calls, 1)))
