"""Sensitivity analysis (edge seed, section 3.2.1): how the metric falls as each
channel group alone is pruned deeper, then groups of similar sensitivity, and the
per-group ratios that save the most MACs for a predicted drop.

A group, never a lone layer: a residual add, a concatenation or a depthwise
convolution ties layers together, and "pruning" one of them alone would either break
the model or, in tools that skip the partners, remove nothing and look insensitive.
Each group is cut for real, deeper and deeper in one pruning session (every cut
verified), so the MACs fall at every point; when the evaluation is a
:class:`CachedEvaluation` and the model traces with torch.fx, only the part of the
network after the group is recomputed for each point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.progress import Progress
from torch import nn

from trimkit.measure._profile import ExampleInputs
from trimkit.prune import criteria as criteria_registry
from trimkit.prune._evaluation import CachedEvaluation
from trimkit.prune._incremental import SuffixEvaluation, traceable
from trimkit.prune._options import parse_calibration, selects
from trimkit.prune._scoring import GroupScorer
from trimkit.prune._selection import enforce_keep_rules
from trimkit.prune._session import PruningSession

DEFAULT_SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class SensitivityResult:
    baseline: float
    baseline_macs: int
    metrics: dict[str, dict[float, float]] = field(default_factory=dict)
    macs: dict[str, dict[float, int]] = field(default_factory=dict)
    layers: dict[str, list[str]] = field(default_factory=dict)
    frozen: dict[str, str] = field(default_factory=dict)

    def drop(self, group: str, sparsity: float) -> float:
        return self.baseline - self.metrics[group][sparsity]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "baseline_macs": self.baseline_macs,
                "groups": {g: {str(s): m for s, m in v.items()} for g, v in self.metrics.items()},
                "macs": {g: {str(s): m for s, m in v.items()} for g, v in self.macs.items()},
                "layers": self.layers, "frozen": self.frozen}


def sensitivity(
    model: nn.Module,
    example_inputs: ExampleInputs,
    evaluate: Callable[[nn.Module], float],
    *,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    criterion: str | Callable[..., torch.Tensor] = "l1",
    layers: str | Sequence[str] = "both",
    normalize: str = "rank",
    calibration: torch.Tensor | tuple | None = None,
    progress: bool = False,
) -> SensitivityResult:
    """Metric and MACs after pruning each group alone at each sparsity (no fine-tuning).

    At sparsity s a group of n channels loses its round(s * n) lowest-scored channels,
    at least one, and keeps at least one, so every point is a real, smaller model.
    """
    levels = sorted(float(s) for s in sparsities)
    session = PruningSession(model, example_inputs)
    groups = session.candidates(lambda group: selects(group, layers, ()))
    result = SensitivityResult(evaluate(model), session.before.macs,
                               frozen={f.group: f.reason for f in session.frozen})
    scorer = GroupScorer(session.graph, criteria_registry.get(criterion), normalize, parse_calibration(calibration))
    graph_module = traceable(session.model) if isinstance(evaluate, CachedEvaluation) else None
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("sensitivity", total=len(groups) * len(levels))
        for group in groups:
            result.layers[group.name] = list(group.producers)
            _sweep(session, group, scorer, evaluate, graph_module, levels, result)
            session.reset()
            bar.advance(task, len(levels))
    return result


def _sweep(session: PruningSession, group, scorer: GroupScorer, evaluate, graph_module, levels,
           result: SensitivityResult) -> None:
    """Cut one group deeper level by level, measuring each level."""
    scores = scorer.scores(group)
    layout = session.graph.layout(group)
    members = {m.name for m in session.graph.members(group)}
    fast = SuffixEvaluation(graph_module, evaluate, members) if graph_module is not None else None
    result.metrics[group.name], result.macs[group.name] = {}, {}
    for level in levels:
        count = max(1, round(level * scores.numel()))
        lowest = sorted(torch.sort(scores, stable=True).indices[:count].tolist())
        target = set(enforce_keep_rules(scores, lowest, None, layout))
        kept = session.root_channels(group)
        delta = [position for position, original in enumerate(kept) if original in target]
        if delta and not session.cut(group, delta):
            result.frozen[group.name] = session.frozen[-1].reason
            return
        result.metrics[group.name][level] = fast() if fast is not None else evaluate(session.model)
        result.macs[group.name][level] = session.macs()


def group_by_sensitivity(result: SensitivityResult, n_groups: int) -> list[dict[str, Any]]:
    """Split the groups into ``n_groups`` clusters of similar mean metric drop over the
    sparsities: the optimal contiguous split of the sorted drops (least squares, as
    Jenks natural breaks), least sensitive cluster first."""
    drops = sorted((sum(result.drop(g, s) for s in levels) / len(levels), g)
                   for g, levels in result.metrics.items() if levels)
    n_groups = max(1, min(n_groups, len(drops)))
    values = [d for d, _ in drops]
    cuts = _optimal_breaks(values, n_groups)
    clusters = []
    for start, stop in zip([0, *cuts], [*cuts, len(values)]):
        members = drops[start:stop]
        clusters.append({"groups": [g for _, g in members],
                         "mean_drop": sum(d for d, _ in members) / len(members)})
    return clusters


def _optimal_breaks(values: list[float], parts: int) -> list[int]:
    """Indices splitting sorted ``values`` into ``parts`` runs with the least total
    within-run squared deviation (dynamic programming)."""
    n = len(values)
    prefix, prefix_sq = [0.0], [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
        prefix_sq.append(prefix_sq[-1] + v * v)

    def cost(i: int, j: int) -> float:
        total = prefix[j] - prefix[i]
        return prefix_sq[j] - prefix_sq[i] - total * total / (j - i)

    best = [[float("inf")] * (n + 1) for _ in range(parts + 1)]
    back = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0.0
    for k in range(1, parts + 1):
        for j in range(k, n + 1):
            for i in range(k - 1, j):
                candidate = best[k - 1][i] + cost(i, j)
                if candidate < best[k][j]:
                    best[k][j], back[k][j] = candidate, i
    cuts, j = [], n
    for k in range(parts, 0, -1):
        j = back[k][j]
        cuts.append(j)
    return sorted(cuts)[1:]


def suggest_ratios(result: SensitivityResult, max_drop: float, resolution: float = 0.01) -> dict[str, float]:
    """Per-group ratios that remove the most MACs while the predicted drop stays within
    ``max_drop``. Prediction: the sum of each group's own measured drop (groups assumed
    independent; a gain counts as no drop). A multiple-choice knapsack over the
    measured sparsities, solved exactly at ``resolution`` metric units."""
    budget = int(round(max_drop / resolution))
    best = {0: (0, {})}  # cost units -> (MACs saved, choice)
    for group, levels in result.metrics.items():
        options = [(0.0, 0, 0)] + [(s, max(0, int(round(result.drop(group, s) / resolution))),
                                    result.baseline_macs - result.macs[group][s]) for s in levels]
        merged: dict[int, tuple[int, dict]] = {}
        for spent, (saved, choice) in best.items():
            for sparsity, cost, gain in options:
                total = spent + cost
                if total > budget:
                    continue
                candidate = (saved + gain, {**choice, group: sparsity} if sparsity else choice)
                if total not in merged or candidate[0] > merged[total][0]:
                    merged[total] = candidate
        best = merged
    return max(best.values(), key=lambda item: item[0])[1]
