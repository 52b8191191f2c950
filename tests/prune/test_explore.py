from __future__ import annotations

import itertools
import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from trimkit import data, models, train
from trimkit.cli import app
from trimkit.prune import (CachedEvaluation, SensitivityResult, ThresholdCurve, ThresholdPoint, area_under_curve,
                           group_by_sensitivity, recommend_threshold, sensitivity, suggest_ratios, threshold_function)


@pytest.fixture(scope="module")
def lenet_and_data():
    train.seed_everything(0)
    model = models.create("lenet5")
    normalization = models.spec("lenet5").normalization()
    train_set = data.load("mnist5k", "train", normalization=normalization)
    val_set = data.load("mnist5k", "val", normalization=normalization)
    train.fit(model, train_set, epochs=3, batch_size=64, lr=0.1, progress=False)
    return model.eval(), val_set


def _point(threshold, fraction, metric):
    return ThresholdPoint(threshold, fraction, fraction, 0, metric)


def test_auc_is_the_trapezoid_over_fraction_pruned_divided_by_the_baseline():
    points = [_point(0.0, 0.0, 90.0), _point(1.0, 1.0, 10.0), _point(0.5, 0.5, 80.0)]
    expected = (0.5 * (90 + 80) / 2 + 0.5 * (80 + 10) / 2) / 90
    assert area_under_curve(points, 90.0) == pytest.approx(expected)


def test_recommended_threshold_ends_the_plateau():
    curve = ThresholdCurve("x", 90.0, [_point(0.0, 0, 90.0), _point(0.4, 0.4, 89.5), _point(0.6, 0.6, 88.0),
                                       _point(0.5, 0.5, 89.2), _point(1.0, 1, 10.0)])
    assert recommend_threshold(curve, max_drop=1.0) == 0.5
    assert recommend_threshold(curve, max_drop=0.1) == 0.0
    assert recommend_threshold(curve, max_drop=100) == 1.0


def test_threshold_function_follows_algorithm_2(lenet_and_data):
    model, val_set = lenet_and_data
    evaluation = CachedEvaluation(val_set, 500)
    curve = threshold_function(model, val_set.example_inputs(4), evaluation, criterion="std", layers="both",
                               max_gap=3.0, max_evals=9)
    first, last = curve.points[0], curve.points[1]
    assert first.filters_pruned == 0 and first.metric == pytest.approx(curve.baseline)
    assert last.filters_pruned == pytest.approx(1 - 4 / (6 + 16 + 120 + 84))  # one channel per group stays
    for index in range(2, len(curve.points)):  # each new point bisects the largest gap at its time
        earlier = sorted(curve.points[:index], key=lambda p: p.threshold)
        gaps = [(abs(b.metric - a.metric), a, b) for a, b in itertools.pairwise(earlier)]
        _, left, right = max(gaps, key=lambda item: item[0])
        assert curve.points[index].threshold == pytest.approx((left.threshold + right.threshold) / 2)
    ordered = sorted(curve.points, key=lambda p: p.threshold)
    largest = max(abs(b.metric - a.metric) for a, b in itertools.pairwise(ordered))
    assert len(curve.points) == 9 or largest <= 3.0  # the stopping rule
    assert curve.auc == pytest.approx(area_under_curve(curve.points, curve.baseline))
    assert all(p.macs <= first.macs for p in curve.points)


def test_refinement_bisects_the_end_of_the_plateau(lenet_and_data):
    model, val_set = lenet_and_data
    evaluation = CachedEvaluation(val_set, 500)
    settings = dict(criterion="std", layers="both", max_gap=3.0, max_evals=4)
    plain = threshold_function(model, val_set.example_inputs(4), evaluation, **settings)
    refined = threshold_function(model, val_set.example_inputs(4), evaluation, refine_drop=1.0, refine_evals=3,
                                 **settings)
    assert refined.points[:len(plain.points)] == plain.points  # Algorithm 2 first, unchanged
    for index in range(len(plain.points), len(refined.points)):  # then each point halves the plateau's end
        earlier = sorted(refined.points[:index], key=lambda p: p.threshold)
        beyond = next(i for i, p in enumerate(earlier) if p.metric < refined.baseline - 1.0)
        within = earlier[beyond - 1]
        assert refined.points[index].threshold == pytest.approx((within.threshold + earlier[beyond].threshold) / 2)
    assert len(refined.points) > len(plain.points)
    assert recommend_threshold(refined, 1.0) >= recommend_threshold(plain, 1.0)


def test_cached_evaluation_agrees_with_evaluate(lenet_and_data):
    model, val_set = lenet_and_data
    fast = CachedEvaluation(val_set, precision="fp32")(model)
    assert fast == pytest.approx(train.evaluate(model, val_set)["top1"])


def test_sensitivity_cuts_coupled_groups_for_real():
    torch.manual_seed(0)
    model = models.create("resnet20").eval()
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    dataset = data.ImageDataset("noise", "val", images, labels, tuple("abcdefghij"), ((0.5,) * 3, (0.25,) * 3))
    result = sensitivity(model, dataset.example_inputs(2), CachedEvaluation(dataset, precision="fp32"),
                         sparsities=(0.25, 0.5))
    stream = "conv1"  # the stem and every block's second conv of stage 1 share channels
    assert result.layers[stream][:2] == ["conv1", "layer1.0.conv2"] and len(result.layers[stream]) == 4
    for group, macs in result.macs.items():
        assert macs[0.25] < result.baseline_macs and macs[0.5] < macs[0.25], group
    assert not result.frozen
    # the shortcut recomputation equals a full evaluation of the same pruned model
    slow = sensitivity(model, dataset.example_inputs(2), lambda m: CachedEvaluation(dataset, precision="fp32")(m),
                       sparsities=(0.25, 0.5))
    assert slow.metrics == result.metrics


def _synthetic():
    result = SensitivityResult(baseline=90.0, baseline_macs=1000)
    drops = {"a": (0.0, 0.2), "b": (0.5, 3.0), "c": (1.0, 8.0), "d": (0.1, 0.4)}
    saved = {"a": (100, 200), "b": (150, 300), "c": (50, 400), "d": (10, 20)}
    for group in drops:
        result.metrics[group] = {0.3: 90.0 - drops[group][0], 0.6: 90.0 - drops[group][1]}
        result.macs[group] = {0.3: 1000 - saved[group][0], 0.6: 1000 - saved[group][1]}
    return result


def test_groups_of_similar_sensitivity():
    clusters = group_by_sensitivity(_synthetic(), 2)
    assert [c["groups"] for c in clusters] == [["a", "d", "b"], ["c"]]
    assert clusters[1]["mean_drop"] == pytest.approx(4.5)


def test_suggested_ratios_maximise_macs_saved_within_the_drop():
    # budget 1.0: a at 0.6 (0.2 drop, 200 saved) + b at 0.3 (0.5, 150) + d at 0.3 (0.1, 10) = 0.8 drop, 360 saved;
    # c at 0.3 (1.0 drop, 50 saved) no longer fits.
    assert suggest_ratios(_synthetic(), max_drop=1.0) == {"a": 0.6, "b": 0.3, "d": 0.3}
    assert suggest_ratios(_synthetic(), max_drop=0.0) == {"a": 0.3}


def test_cli_explore_and_sensitivity_write_json_and_charts(tmp_path, lenet_and_data):
    model, _ = lenet_and_data
    import trimkit

    weights = trimkit.save(model, tmp_path / "lenet.pt")
    runner = CliRunner()
    result = runner.invoke(app, ["explore", str(weights), "--data", "mnist5k", "--criteria", "std,l1",
                                 "--eval-samples", "300", "--max-evals", "5", "--out", str(tmp_path / "e"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record["criteria"]) == {"std", "l1"} and record["best"] in ("std", "l1")
    assert {"auc", "curve"} <= set(record["criteria"]["std"]) and "recommended_threshold" in record
    assert json.loads((tmp_path / "e" / "explore.json").read_text())["best"] == record["best"]
    for name in ("threshold_functions.png", "macs_vs_metric.png"):
        assert Image.open(tmp_path / "e" / name).size[0] > 400
    result = runner.invoke(app, ["sensitivity", str(weights), "--data", "mnist5k", "--sparsities", "0.3,0.6",
                                 "--eval-samples", "300", "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record["groups"]) == {"features.0", "features.3", "classifier.1", "classifier.3"}
    assert set(record["groups"]["features.3"]) == {"0.3", "0.6"}
    assert {"clusters", "suggested_ratios"} <= set(record)
    assert Image.open(tmp_path / "s" / "sensitivity.png").size[0] > 400
    bad = runner.invoke(app, ["sensitivity", str(weights), "--sparsities", "0.5,1.5", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "sparsities must lie in (0, 1)" in bad.stderr
