"""Pruning to a budget (MACs, parameters, latency on a runtime) and round_to auto. The
latency ones run on a fake table and a fake clock: a test times nothing."""

from __future__ import annotations

import math

import pytest
import torch

from trimkit import models
from trimkit.errors import TrimkitError
from trimkit.measure import _latency_table as tables
from trimkit.measure import profile
from trimkit.measure._units import UnitShape
from trimkit.prune import _budget_cut, structured
from trimkit.prune._budget import PruneTarget

EXAMPLE = torch.randn(2, 3, 32, 32)


def resnet20():
    torch.manual_seed(0)
    return models.create("resnet20").eval()


@pytest.mark.parametrize("kind, budget", [("macs", 20_000_000), ("params", 120_000)])
def test_a_count_budget_is_met_and_nearly_used(kind, budget):
    result = structured(resnet20(), EXAMPLE, target={kind: budget})
    counted = profile(result.model, EXAMPLE[:1])
    got = counted.macs if kind == "macs" else counted.params
    assert result.budget.met and result.budget.measured == got
    assert 0.9 * budget <= got <= budget
    assert result.verified and not result.frozen


def test_no_group_loses_more_than_max_ratio():
    result = structured(resnet20(), EXAMPLE, target={"macs": 12_000_000, "max_ratio": 0.5})
    assert all(change.kept >= change.original / 2 for change in result.layers.values())
    with pytest.raises(TrimkitError, match=r"cannot be reached: with every group cut as far as allowed \(max_ratio\)"):
        structured(resnet20(), EXAMPLE, target={"macs": 5_000_000, "max_ratio": 0.5})


def test_a_budget_above_the_unpruned_model_is_refused():
    with pytest.raises(TrimkitError, match=r"^the budget 9e\+08 MACs is not below the unpruned model's 4.055e\+07 "
                                           "MACs; it needs no pruning"):
        structured(resnet20(), EXAMPLE, target={"macs": 900_000_000})


@pytest.mark.parametrize("target, message", [
    ({"speedup": 0.8}, "speedup 0.8 is not above 1"),
    ({"speedup": 2, "macs": 5}, "give one budget, not speedup and macs"),
    ({"speedup": 2, "backend": "tensorrt"}, "unknown backend 'tensorrt'"),
])
def test_bad_targets_are_one_line(target, message):
    with pytest.raises(TrimkitError, match=message):
        structured(resnet20(), EXAMPLE, target=target)


def test_a_budget_and_a_ratio_together_are_refused():
    with pytest.raises(TrimkitError, match="says how much to prune; give it or a ratio, not both"):
        structured(resnet20(), EXAMPLE, ratio=0.5, target={"speedup": 2})


def blocked_ms(unit: UnitShape, in_count: int, out_count: int) -> float:
    """A runtime whose kernels work on blocks of 16 channels: 20 channels cost 32."""
    def blocks(count):
        return math.ceil(count / 16) * 16
    return 1e-6 * unit.macs(blocks(in_count), blocks(out_count)) + 0.001


@pytest.fixture
def fake_runtime(monkeypatch):
    """Tables from blocked_ms, and a measured latency 1.25x what the table predicts, as
    when the runtime's fusion makes layers cost differently together than alone."""
    def measure(table, todo, options, batch_size, progress, timer):
        for unit, (i, o) in todo:
            table.points.setdefault(unit.key, {})[(i, o)] = blocked_ms(unit, i, o)

    monkeypatch.setattr(tables, "_measure", measure)
    monkeypatch.setattr(tables, "cache_folder", lambda: None)

    def whole_model_ms(model, options, batch_size, example_inputs, timer):
        return 1.25 * _predicted(model)

    monkeypatch.setattr(tables, "_whole_model_ms", whole_model_ms)
    monkeypatch.setattr(_budget_cut, "_two_point_calibration", lambda session, target: None)  # one point

    clock = {"slowdown": 1.0}  # the machine when the cut is timed, against when the table was built

    def latency_of(session, target):
        def measure():
            slow = 1.25 * clock["slowdown"]
            return slow * _predicted(session.model), 0.0, slow * _predicted(session.original)
        return measure

    monkeypatch.setattr(_budget_cut, "_latency_of", latency_of)
    return clock


def _predicted(model) -> float:
    from trimkit.measure._units import layer_units

    return sum(blocked_ms(u, u.in_channels, u.out_channels) for u in layer_units(model, EXAMPLE).values())


@pytest.mark.parametrize("slowdown", [1.0, 2.0])
def test_a_speedup_is_met_after_the_prediction_is_corrected(fake_runtime, tmp_path, slowdown):
    """A speed-up is over the unpruned model timed beside the cut one, so a machine slower
    than when the table was built changes the milliseconds and not the cut."""
    fake_runtime["slowdown"] = slowdown
    target = {"speedup": 1.5, "batch_size": 8, "table": str(tmp_path / "t.json")}
    result = structured(resnet20(), EXAMPLE, target=target)
    outcome = result.budget
    assert outcome.unit == "ms" and outcome.met and outcome.verdict == "met"
    assert outcome.budget == pytest.approx(outcome.unpruned_measured / 1.5)
    assert outcome.unpruned_measured == pytest.approx(slowdown * outcome.unpruned)
    assert 1.5 <= outcome.unpruned_measured / outcome.measured <= 1.5 / 0.9
    # the table's constant is taken for the whole model, so the first cut runs faster than predicted:
    # too far below the budget, it is corrected
    assert len(outcome.rounds) >= 2 and outcome.rounds[0].measured < 0.9 * outcome.budget
    assert (tmp_path / "t.json").is_file() and "onnxruntime" in outcome.table
    assert f"budget 1.5x faster on onnxruntime, batch 8 = {outcome.budget:.4g} ms: met: measured" in outcome.summary()


def test_a_latency_budget_in_ms_is_met(fake_runtime, tmp_path):
    unpruned = 1.25 * _predicted(resnet20())
    result = structured(resnet20(), EXAMPLE, target={"latency_ms": unpruned / 1.4, "batch_size": 8})
    outcome = result.budget
    assert outcome.met and outcome.budget == unpruned / 1.4
    assert 0.9 * outcome.budget <= outcome.measured <= outcome.budget


def test_round_to_auto_keeps_the_counts_the_kernels_like(fake_runtime):
    result = structured(resnet20(), EXAMPLE, ratio=0.4, target={"backend": "onnxruntime", "batch_size": 8})
    kept = {name: change.kept for name, change in result.layers.items() if name != "linear"}
    # 40 % of 16, 32, 64 leaves 10, 20, 39 (38.4 up); blocks of 16 make 16, 16, 32 and 48 the fast counts
    assert set(kept.values()) <= {16, 32, 48}
    plain = structured(resnet20(), EXAMPLE, ratio=0.4)
    assert {change.kept for change in plain.layers.values()} >= {10, 20}


def test_latency_table_takes_its_target_as_options_a_mapping_or_keywords(fake_runtime):
    from trimkit.prune import latency_table

    given = [latency_table(resnet20(), EXAMPLE, PruneTarget(batch_size=8, threads=2)),
             latency_table(resnet20(), EXAMPLE, {"batch_size": 8, "threads": 2}),
             latency_table(resnet20(), EXAMPLE, batch_size=8, threads=2)]
    assert {(t.settings.backend, t.settings.batch_size, t.settings.threads) for t in given} == {("onnxruntime", 8, 2)}


def test_round_to_auto_needs_a_runtime():
    with pytest.raises(TrimkitError, match="round_to auto takes its counts from the latency table of a runtime"):
        structured(resnet20(), EXAMPLE, ratio=0.5, round_to="auto")


def test_prune_target_describes_itself():
    assert PruneTarget(speedup=2, backend="openvino", batch_size=32).describe() == "2x faster on openvino, batch 32"
    assert PruneTarget(latency_ms=4).describe() == "4 ms on onnxruntime, batch 1"


def test_the_table_is_calibrated_on_the_model_and_its_half(monkeypatch):
    """Layers alone cost 1/1.25 of what they cost in the model, and 2 ms is not a layer:
    the model and its half timed together fix both."""
    from trimkit.measure._timer import FileTime, LocalTimer
    from trimkit.prune._session import PruningSession

    def time_models(self, models_, options, batch_size, input_shapes):
        return [FileTime(2.0 + 1.25 * _predicted(model), 0.0, 1) for model in models_]

    monkeypatch.setattr(LocalTimer, "time_models", time_models)
    model = resnet20()
    session = PruningSession(model, EXAMPLE)
    calibrate = _budget_cut._two_point_calibration(session, PruneTarget(speedup=2))
    table = tables.LatencyTable(tables.TableSettings.of(PruneTarget().runtime(), 1))
    units = tables.layer_units(model, EXAMPLE)
    for unit in units.values():
        for i in tables.table_counts(unit.in_channels):
            for o in tables.table_counts(unit.out_channels):
                table.points.setdefault(unit.key, {})[(i, o)] = blocked_ms(unit, i, o)
    assert calibrate(table, units) == pytest.approx((2.0, 1.25))


def test_the_next_aim_interpolates_between_a_slow_and_a_fast_round():
    from trimkit.prune._budget import BudgetRound

    rounds = [BudgetRound(9.4, 9.0, 12.0), BudgetRound(7.5, 7.0, 6.0)]
    tried = [({}, 12.0, 0.1), ({}, 6.0, 0.1)]
    # measured 6 at a prediction of 7 and 12 at 9: measured 9 (the desired) lies at 8
    assert _budget_cut._next_aim(rounds, tried, budget=10.0, desired=9.0) == pytest.approx(8.0)
    # one slow round only: its prediction scaled by how far it was off
    assert _budget_cut._next_aim(rounds[:1], tried[:1], budget=10.0, desired=9.0) == pytest.approx(9.0 * 9.0 / 12.0)


@pytest.mark.parametrize("p50, p90, calls, expected", [
    (10.0, 14.0, 16, 1.0),   # the median's error: the spread over the root of the calls
    (10.0, 10.5, 16, 0.2),   # at least 2 % of the median
])
def test_noise_is_the_error_of_the_median(p50, p90, calls, expected):
    from trimkit.prune._budget import noise_of

    assert noise_of(p50, p90, calls) == pytest.approx(expected)


def test_a_budget_the_table_calls_unreachable_is_measured_at_the_floor(fake_runtime):
    """The fake table over-predicts small models (its constant is a quarter of the whole
    model's), so it calls budgets unreachable that the floor meets when measured."""
    import re

    with pytest.raises(TrimkitError, match=r"^the budget 50x faster on onnxruntime, batch 8 cannot be reached: with "
                                           r"every group cut as far as allowed \(max_ratio 0.5\) the model measured "
                                           r"[\d.]+ ms against [\d.]+ ms unpruned \([\d.]+x\)") as refused:
        structured(resnet20(), EXAMPLE, target={"speedup": 50, "max_ratio": 0.5, "batch_size": 8})
    floor_speedup = float(re.search(r"\(([\d.]+)x\)", str(refused.value)).group(1))
    result = structured(resnet20(), EXAMPLE, target={"speedup": 0.97 * floor_speedup, "max_ratio": 0.5,
                                                      "batch_size": 8})
    outcome = result.budget
    assert outcome.met and outcome.rounds[0].predicted > outcome.budget  # the table alone would have refused it
