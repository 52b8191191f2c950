"""Statistics and the timing loop, on known times and a fake clock: no real timing."""

from __future__ import annotations

import math

import pytest

from trimkit.errors import TrimkitError
from trimkit.measure import RuntimeOptions, summarize
from trimkit.measure._timing import TimingPlan, time_calls


def test_percentiles_and_moments_match_a_hand_computation():
    times_s = [ms / 1e3 for ms in (7, 1, 10, 4, 2, 9, 3, 8, 6, 5)]  # 1..10 ms, shuffled
    stats = summarize(times_s, batch_size=4)
    # sorted 1..10; the q-th percentile sits at position q/100 * 9 between order statistics
    assert stats.p50_ms == pytest.approx(5.5)  # halfway between 5 and 6
    assert stats.p90_ms == pytest.approx(9.1)  # 9 + 0.1 * (10 - 9)
    assert stats.p99_ms == pytest.approx(9.91)  # 9 + 0.91 * (10 - 9)
    assert stats.mean_ms == pytest.approx(5.5)
    assert stats.std_ms == pytest.approx(math.sqrt(82.5 / 9))  # sum of squared deviations 82.5, n - 1 = 9
    assert (stats.min_ms, stats.max_ms, stats.iterations) == (pytest.approx(1.0), pytest.approx(10.0), 10)
    assert stats.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    assert stats.throughput == pytest.approx(4 * 10 / 0.055)  # 40 images in 55 ms


def test_a_single_call_has_no_spread():
    stats = summarize([0.002], batch_size=1)
    assert (stats.p50_ms, stats.p99_ms, stats.std_ms, stats.cv) == (pytest.approx(2.0), pytest.approx(2.0), 0.0, 0.0)


def test_no_calls_is_an_error():
    with pytest.raises(TrimkitError, match="no timed calls"):
        summarize([], batch_size=1)


class FakeClock:
    """Time advances only when a fake model runs."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.now

    def model(self, name: str, seconds: float):
        def run() -> None:
            self.log.append(name)
            self.now += seconds
        return run


def test_models_are_timed_interleaved_in_blocks_of_about_one_round():
    clock = FakeClock()
    plan = TimingPlan(warmup=2, min_time_s=0.3, min_iters=1, max_iters=1000, round_s=0.1)
    fast, slow = clock.model("fast", 0.01), clock.model("slow", 0.05)
    samples = time_calls([fast, slow], plan, clock)
    assert clock.log[:4] == ["fast", "fast", "slow", "slow"]  # warm-up of each first
    timed = clock.log[4:]
    # blocks of 0.1 s: 10 calls of the fast model, then 2 of the slow one, round after round
    assert timed[:12] == ["fast"] * 10 + ["slow"] * 2
    assert timed[12:24] == ["fast"] * 10 + ["slow"] * 2
    assert samples[0] == pytest.approx([0.01] * 30) and samples[1] == pytest.approx([0.05] * 6)


def test_timing_stops_at_max_iters_and_goes_on_to_min_iters():
    clock = FakeClock()
    capped = time_calls([clock.model("m", 0.5)], TimingPlan(warmup=1, min_time_s=100, min_iters=1, max_iters=7), clock)
    assert len(capped[0]) == 7
    at_least = time_calls([clock.model("m", 0.5)], TimingPlan(warmup=1, min_time_s=0, min_iters=25), clock)
    assert len(at_least[0]) == 25


@pytest.mark.parametrize("kwargs, message", [
    ({"warmup": 0}, "warmup: 0: input should be greater than or equal to 1"),
    ({"min_iters": 0}, "min_iters: 0: input should be greater than or equal to 1"),
    ({"min_time_s": -1}, "min_time_s: -1: input should be greater than 0"),
])
def test_bad_timing_settings_are_refused(kwargs, message):
    with pytest.raises(TrimkitError, match=message):
        RuntimeOptions.of(**kwargs)


def test_at_most_max_iters_calls_even_below_min_iters():
    plan = RuntimeOptions.of(min_iters=10, max_iters=3).plan()
    assert (plan.min_iters, plan.max_iters) == (3, 3)
