"""The timing loop, shared by every backend so that all are timed the same way.

Several models are timed interleaved: in each round every model runs a block of calls
lasting about ``round_s``, so a change in machine load during the run (another
process, frequency scaling) falls on all of them alike instead of on whichever model
happened to run at that moment. One model is the case of a single runner.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

Clock = Callable[[], float]


@dataclass(frozen=True)
class TimingPlan:
    """How long to time: ``warmup`` untimed calls, then at least ``min_iters`` calls and
    ``min_time_s`` seconds of calls per model, and never more than ``max_iters`` calls.
    Built from :class:`~trimkit.measure.RuntimeOptions`, which checks the values."""

    warmup: int = 10
    min_time_s: float = 1.0
    min_iters: int = 10
    max_iters: int = 10_000
    round_s: float = 0.1

    def done(self, times_s: Sequence[float]) -> bool:
        count = len(times_s)
        return count >= self.max_iters or (count >= self.min_iters and sum(times_s) >= self.min_time_s)


def time_calls(runs: Sequence[Callable[[], None]], plan: TimingPlan,
               clock: Clock = time.perf_counter) -> list[list[float]]:
    """Per-call times in seconds of each callable in ``runs``, timed interleaved."""
    estimates_s = [_warm_up(run, plan.warmup, clock) for run in runs]
    block_sizes = [max(1, int(plan.round_s / estimate)) if estimate > 0 else plan.max_iters
                   for estimate in estimates_s]
    samples: list[list[float]] = [[] for _ in runs]
    while not all(plan.done(times) for times in samples):
        for run, block, times in zip(runs, block_sizes, samples):
            if plan.done(times):
                continue
            for _ in range(min(block, plan.max_iters - len(times))):
                start = clock()
                run()
                times.append(clock() - start)
    return samples


def _warm_up(run: Callable[[], None], calls: int, clock: Clock) -> float:
    """Run ``calls`` untimed calls; return the median duration of the last half."""
    durations = []
    for _ in range(calls):
        start = clock()
        run()
        durations.append(clock() - start)
    return statistics.median(durations[len(durations) // 2:])
