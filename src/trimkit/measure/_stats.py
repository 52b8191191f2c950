"""Summary statistics of per-call latencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from trimkit.errors import TrimkitError


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency in milliseconds over ``iterations`` timed calls of one batch.

    Percentiles interpolate linearly between order statistics (numpy's default: the
    q-th percentile of n sorted values sits at position q/100 * (n - 1)). ``std_ms`` is
    the sample standard deviation; ``cv`` is std / mean. ``throughput`` is images per
    second: batch size times calls over the summed call times.
    """

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    cv: float
    throughput: float
    iterations: int


def summarize(times_s: Sequence[float], batch_size: int) -> LatencyStats:
    """Statistics of per-call times given in seconds."""
    if len(times_s) == 0:
        raise TrimkitError("no timed calls to summarise; raise max_iters or min_time_s")
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return LatencyStats(
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=mean,
        std_ms=std,
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        cv=std / mean if mean > 0 else 0.0,
        throughput=batch_size * ms.size / (float(ms.sum()) / 1e3),
        iterations=int(ms.size),
    )
