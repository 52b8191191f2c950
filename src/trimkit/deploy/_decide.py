"""The choice, from measurements alone: the candidate with the lowest p50 latency among
those whose metric stays within ``max_drop`` of ONNX Runtime fp32's; every other row
says why it was not chosen. Pure: it reads figures, it measures nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trimkit.deploy._candidates import Candidate
from trimkit.errors import TrimkitError
from trimkit.record import LatencyRecord


@dataclass(frozen=True)
class Outcome:
    """What was measured of one candidate: its latency (None where it could not be
    timed), its metric as its runtime computed it in its precision (None where it could
    not be scored) and, if it failed, why."""

    candidate: Candidate
    latency: LatencyRecord | None
    metric: float | None
    error: str | None = None


@dataclass(frozen=True)
class Row:
    """One candidate in the final table: its outcome, ``drop`` (points lost against the
    reference, positive = worse), ``speedup`` (the reference latency over its p50),
    whether it was ``chosen``, and ``reason``: why it was chosen, or why not."""

    outcome: Outcome
    drop: float | None
    speedup: float | None
    chosen: bool
    reason: str

    @property
    def candidate(self) -> Candidate:
        return self.outcome.candidate


@dataclass(frozen=True)
class Decision:
    """Every row (fastest first; failed ones last), the chosen one, the metric, its
    reference value (ONNX Runtime fp32 on the same images), the allowed drop, and the
    reference latency (ONNX Runtime fp32 at the most threads timed) speed-ups are against."""

    rows: tuple[Row, ...]
    chosen: Row
    metric: str
    reference: float
    max_drop: float
    reference_latency: LatencyRecord | None


def drop_of(value: float, reference: float, higher_is_better: bool) -> float:
    """Points lost against the reference: positive when ``value`` is worse."""
    return reference - value if higher_is_better else value - reference


def decide(outcomes: Sequence[Outcome], *, metric: str, reference: float, max_drop: float,
           higher_is_better: bool = True, reference_latency: LatencyRecord | None = None) -> Decision:
    """The fastest (lowest p50) candidate whose drop is at most ``max_drop``. When none
    is, a :class:`TrimkitError` names the one that came closest."""
    if not outcomes:
        raise TrimkitError("no candidates were measured")
    drops = [None if o.metric is None else drop_of(o.metric, reference, higher_is_better) for o in outcomes]
    eligible = [(o, d) for o, d in zip(outcomes, drops) if o.error is None and o.latency is not None
                and d is not None and d <= max_drop + 1e-9]
    if not eligible:
        raise TrimkitError(_nothing_fits(outcomes, drops, metric, reference, max_drop))
    best, _ = min(eligible, key=lambda pair: pair[0].latency.latency_ms)
    best_ms = best.latency.latency_ms
    rows = []
    for outcome, drop in zip(outcomes, drops):
        speedup = None
        if reference_latency is not None and outcome.latency is not None:
            speedup = reference_latency.latency_ms / outcome.latency.latency_ms
        chosen = outcome is best
        rows.append(Row(outcome, drop, speedup, chosen, _reason(outcome, drop, max_drop, best_ms, chosen, metric)))
    rows.sort(key=lambda row: (row.outcome.latency is None, row.outcome.latency.latency_ms if row.outcome.latency
                               else 0.0))
    chosen_row = next(row for row in rows if row.chosen)
    return Decision(tuple(rows), chosen_row, metric, reference, max_drop, reference_latency)


def _reason(outcome: Outcome, drop: float | None, max_drop: float, best_ms: float, chosen: bool, metric: str) -> str:
    if outcome.error is not None:
        return f"failed: {outcome.error}"
    if outcome.latency is None:
        return "not timed"
    if drop is None:
        return f"no {metric} measured"
    if drop > max_drop + 1e-9:
        return f"loses {drop:.2f} points of {metric}, more than the {max_drop:g} allowed"
    if chosen:
        return f"fastest within {max_drop:g} points"
    return f"slower: {outcome.latency.latency_ms / best_ms:.2f}x the chosen one's p50"


def _nothing_fits(outcomes: Sequence[Outcome], drops: Sequence[float | None], metric: str, reference: float,
                  max_drop: float) -> str:
    scored = [(o, d) for o, d in zip(outcomes, drops) if d is not None and o.error is None]
    if not scored:
        first = next((o for o in outcomes if o.error is not None), None)
        why = f" (first failure: {first.candidate.label}: {first.error})" if first is not None else ""
        return f"no candidate could be measured{why}"
    closest, drop = min(scored, key=lambda pair: pair[1])
    return (f"no candidate keeps {metric} within {max_drop:g} points of ONNX Runtime fp32 ({reference:.2f}); "
            f"closest: {closest.candidate.label} at {closest.metric:.2f} (drop {drop:.2f}); allow a larger "
            "--max-drop, or deploy the model as it is")
