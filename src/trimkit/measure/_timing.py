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

    def progress(self, times_s: Sequence[float]) -> float:
        """How near ``done`` the calls so far are, from 0 to 1."""
        if self.done(times_s):
            return 1.0
        return min(len(times_s) / self.min_iters, sum(times_s) / self.min_time_s, 1.0)

    def done(self, times_s: Sequence[float]) -> bool:
        count = len(times_s)
        return count >= self.max_iters or (count >= self.min_iters and sum(times_s) >= self.min_time_s)


def time_calls(runs: Sequence[Callable[[], None]], plan: TimingPlan, clock: Clock = time.perf_counter,
               on_round: Callable[[float], None] | None = None) -> list[list[float]]:
    """Per-call times in seconds of each callable in ``runs``, timed interleaved;
    ``on_round`` hears after each round how far the timing has got (0 to 1)."""
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
        if on_round is not None:
            on_round(sum(plan.progress(times) for times in samples) / max(1, len(samples)))
    return samples


def _warm_up(run: Callable[[], None], calls: int, clock: Clock) -> float:
    """Run ``calls`` untimed calls; return the median duration of the last half."""
    durations = []
    for _ in range(calls):
        start = clock()
        run()
        durations.append(clock() - start)
    return statistics.median(durations[len(durations) // 2:])
