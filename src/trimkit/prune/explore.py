"""The threshold function (Bonsai seed, Algorithm 2) and choosing a criterion by it.

Reading of Algorithm 2. The seed prunes at the lowest and the highest threshold,
then repeatedly prunes at a new threshold between the two neighbouring thresholds
whose losses differ most, until no difference exceeds the largest acceptable gap.
Its pseudo-code has slips: it sorts by loss where the neighbours must be neighbours
in threshold, it loops *while* the largest gap is below the acceptable one (the
opposite of what it means), and it sets the new threshold to half the difference of
the two thresholds where it means their midpoint. Here:

1. prune fresh copies at ``t_low`` (nothing goes) and ``t_high`` (every group keeps
   only its best channel) and evaluate both;
2. sort the points by threshold; among neighbours further apart than a minimum step,
   take the pair whose metrics differ most;
3. stop if that difference is at most ``max_gap`` or ``max_evals`` points are spent;
   else prune at the midpoint of the pair's thresholds, evaluate, and go to 2.

Points whose pruning removes exactly the channels of an earlier point reuse its
metric instead of evaluating the same model again. Nothing is fine-tuned.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure._profile import ExampleInputs
from trimkit.prune import criteria as criteria_registry
from trimkit.prune._options import parse_calibration, selects
from trimkit.prune._scoring import GroupScorer
from trimkit.prune._session import PruningSession
from trimkit.prune.structured import structured

MIN_STEP_FRACTION = 1e-4
Evaluate = Callable[[nn.Module], float]


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    filters_pruned: float
    params_pruned: float
    macs: int
    metric: float


@dataclass
class ThresholdCurve:
    """Points in the order they were evaluated: the two ends, then each bisection."""

    criterion: str
    baseline: float
    points: list[ThresholdPoint] = field(default_factory=list)
    evaluations: int = 0

    @property
    def auc(self) -> float:
        return area_under_curve(self.points, self.baseline)

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "baseline": self.baseline, "auc": self.auc,
                "evaluations": self.evaluations, "curve": [asdict(p) for p in self.points]}


def area_under_curve(points: Sequence[ThresholdPoint], baseline: float) -> float:
    """Trapezoidal area under metric / baseline against the fraction of filters pruned,
    over the points sorted by that fraction; at most 1 (the fraction spans [0, 1])."""
    ordered = sorted(points, key=lambda p: (p.filters_pruned, p.threshold))
    area = 0.0
    for left, right in itertools.pairwise(ordered):
        area += (right.filters_pruned - left.filters_pruned) * (left.metric + right.metric) / 2
    return area / baseline if baseline else 0.0


def threshold_function(
    model: nn.Module,
    example_inputs: ExampleInputs,
    evaluate: Evaluate,
    *,
    criterion: str | Callable[..., torch.Tensor] = "std",
    layers: str | Sequence[str] = "both",
    mode: str = "progressive",
    normalize: str = "rank",
    max_gap: float = 2.0,
    max_evals: int = 12,
    thresholds: tuple[float, float] | None = None,
    calibration: torch.Tensor | tuple | None = None,
    baseline: float | None = None,
    refine_drop: float | None = None,
    refine_evals: int = 4,
) -> ThresholdCurve:
    """Metric after pruning at thresholds chosen by Algorithm 2 (see the module doc).

    ``evaluate(model) -> metric`` (higher is better; :class:`CachedEvaluation` is a
    fast one). ``thresholds`` defaults to the range of the normalised scores, so the
    low end prunes nothing and the high end leaves one channel per group.

    Algorithm 2 spends its points where the metric falls fastest, so the end of a
    gentle plateau can stay between two distant points. With ``refine_drop``, up to
    ``refine_evals`` more points bisect the interval between the last point within
    ``refine_drop`` of the baseline and the first beyond it, which is where
    :func:`recommend_threshold` with the same drop looks.
    """
    if max_evals < 2:
        raise TrimkitError(f"max_evals must be at least 2 (the two ends), got {max_evals}")
    name = criterion if isinstance(criterion, str) else getattr(criterion, "__name__", "custom")
    low, high = thresholds or score_range(model, example_inputs, criterion, layers, normalize, calibration)
    curve = ThresholdCurve(name, evaluate(model) if baseline is None else baseline)
    seen: dict[tuple, float] = {}

    def point(threshold: float) -> ThresholdPoint:
        result = structured(model, example_inputs, criterion=criterion, threshold=threshold, layers=layers,
                            mode=mode, normalize=normalize, calibration=calibration)
        signature = tuple((layer, tuple(channels)) for layer, channels in result.removed_channels.items())
        if signature not in seen:
            seen[signature] = evaluate(result.model)
            curve.evaluations += 1
        return ThresholdPoint(threshold, result.filters_pruned, result.params_pruned, result.macs_after,
                              seen[signature])

    curve.points = [point(low), point(high)]
    min_step = (high - low) * MIN_STEP_FRACTION
    while len(curve.points) < max_evals:
        ordered = sorted(curve.points, key=lambda p: p.threshold)
        gaps = [(abs(b.metric - a.metric), a, b) for a, b in itertools.pairwise(ordered)
                if b.threshold - a.threshold > min_step]
        if not gaps:
            break
        gap, left, right = max(gaps, key=lambda item: item[0])
        if gap <= max_gap:
            break
        curve.points.append(point((left.threshold + right.threshold) / 2))
    for _ in range(refine_evals if refine_drop is not None else 0):
        interval = _plateau_end(curve, refine_drop)
        if interval is None or interval[1] - interval[0] <= min_step:
            break
        curve.points.append(point(sum(interval) / 2))
    return curve


def _plateau_end(curve: ThresholdCurve, max_drop: float) -> tuple[float, float] | None:
    """Thresholds of the last point within ``max_drop`` and the first beyond it."""
    ordered = sorted(curve.points, key=lambda p: p.threshold)
    for within, beyond in itertools.pairwise(ordered):
        if beyond.metric < curve.baseline - max_drop:
            return within.threshold, beyond.threshold
    return None


def score_range(model: nn.Module, example_inputs: ExampleInputs, criterion, layers, normalize: str,
                calibration) -> tuple[float, float]:
    """Lowest and (just above the) highest normalised group score of the model."""
    session = PruningSession(model, example_inputs, verify=False)
    groups = session.candidates(lambda group: selects(group, layers, ()))
    if not groups:
        raise TrimkitError(f"no prunable groups among layers={layers!r}")
    scorer = GroupScorer(session.graph, criteria_registry.get(criterion), normalize, parse_calibration(calibration))
    scores = torch.cat([scorer.scores(group) for group in groups])
    low, high = float(scores.min()), float(scores.max())
    return low, math.nextafter(high, math.inf) if high != 0 else 1e-12


@dataclass
class CriteriaComparison:
    curves: dict[str, ThresholdCurve]

    @property
    def auc(self) -> dict[str, float]:
        return {name: curve.auc for name, curve in self.curves.items()}

    @property
    def best(self) -> str:
        """The criterion with the largest area: the longest, highest plateau (Bonsai Tables 2-3)."""
        return max(self.curves, key=lambda name: self.curves[name].auc)

    def to_dict(self) -> dict[str, Any]:
        return {"criteria": {name: {"auc": c.auc, "curve": [asdict(p) for p in c.points],
                                    "evaluations": c.evaluations}
                             for name, c in self.curves.items()},
                "best": self.best}


def compare_criteria(
    model: nn.Module,
    example_inputs: ExampleInputs,
    evaluate: Evaluate,
    *,
    criteria: Sequence[str] = ("std", "range", "mean_abs", "max_abs"),
    **settings: Any,
) -> CriteriaComparison:
    """Run the threshold function for each criterion; the baseline is evaluated once."""
    baseline = evaluate(model)
    return CriteriaComparison({name: threshold_function(model, example_inputs, evaluate, criterion=name,
                                                        baseline=baseline, **settings)
                               for name in criteria})


def recommend_threshold(curve: ThresholdCurve, max_drop: float) -> float:
    """The highest threshold reached before the metric first falls more than
    ``max_drop`` below the baseline: the end of the plateau."""
    interval = _plateau_end(curve, max_drop)
    return interval[0] if interval is not None else max(p.threshold for p in curve.points)
