"""``search.latency.estimate: table``: each trial's latency is the latency table's
prediction for its model, the table built once for the baseline's model; the trials the
search reports are timed for real once, also across a resume; a model the table cannot
stand for is timed instead and says why.

The table's points and calibration are faked (tests time no table); the reported trials
and the baseline are timed for real on ONNX Runtime, briefly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

from trimkit import measure, models, search
from trimkit._model_file import load
from trimkit.measure import _latency_table as tables
from trimkit.prune import _budget_cut
from trimkit.search import _latency
from trimkit.search._latency import TableEstimate, Unpredictable

# LeNet-5 pruned at one searched ratio, no training: about a second a trial
RECIPE = {
    "name": "tiny",
    "model": {"name": "lenet5"},
    "task": {"data": "mnist5k", "train_samples": 64, "val_samples": 100},
    "stages": [{"stage": "prune", "ratio": 0.0, "layers": "both", "mode": "static", "calibration_samples": 8}],
    "search": {"method": "grid", "n_trials": 2, "parameters": {"stages.0.ratio": {"values": [0.5, 0.25]}},
               "latency": {"backend": "onnxruntime", "estimate": "table", "min_time_s": 0.02, "warmup": 2},
               "objectives": ["latency_ms", "top1"]},
}
CONSTANT_MS, SCALE = 0.5, 1.25


def fake_ms(unit, in_count: int, out_count: int) -> float:
    return 1e-6 * unit.macs(in_count, out_count) + 0.001


@pytest.fixture
def fake_table(monkeypatch, tmp_path):
    """Tables from fake_ms, calibrated at (CONSTANT_MS, SCALE), in a cache of this test's;
    returns the points timed, as a list of calls."""
    monkeypatch.setenv("TRIMKIT_CACHE", str(tmp_path / "cache"))
    timed = []

    def fill(table, todo, options, batch_size, progress, timer):
        for unit, (i, o) in todo:
            table.points.setdefault(unit.key, {})[(i, o)] = fake_ms(unit, i, o)
        timed.append(len(todo))

    monkeypatch.setattr(tables, "_measure", fill)
    monkeypatch.setattr(_budget_cut, "_two_point_calibration",
                        lambda session, target: lambda table, units: (CONSTANT_MS, SCALE))
    return timed


@pytest.fixture
def timings(monkeypatch):
    """Every export timed for real, by path."""
    timed = []
    real = _latency.measure_latency

    def measure_latency(onnx_path, latency):
        timed.append(Path(onnx_path))
        return real(onnx_path, latency)

    monkeypatch.setattr(_latency, "measure_latency", measure_latency)
    return timed


def _recipe(tmp_path: Path, **changes) -> search.SearchRecipe:
    data = yaml.safe_load(yaml.safe_dump(RECIPE))
    data["search"].update(changes)
    return search.parse_search_recipe(data, source=str(tmp_path / "tiny.yaml"))


def _by_hand(table: measure.LatencyTable, baseline: nn.Module, model: nn.Module) -> float:
    """constant + scale * the sum of the table's entries at the model's channel counts."""
    units = measure.layer_units(baseline, torch.randn(1, 1, 28, 28))
    layers = dict(model.named_modules())
    total = 0.0
    for name, unit in units.items():
        layer = layers[name]
        counts = ((layer.in_channels, layer.out_channels) if isinstance(layer, nn.Conv2d)
                  else (layer.in_features, layer.out_features))
        total += table.layer_ms(unit, *counts)
    constant, scale = table.calibration(measure.model_key(baseline, units))
    return constant + scale * total


def test_the_estimate_spec_defaults_to_measure_and_takes_table(tmp_path):
    assert _recipe(tmp_path, latency={"backend": "onnxruntime"}).spec.latency.estimate == "measure"
    assert _recipe(tmp_path).spec.latency.estimate == "table"


def test_trials_get_the_tables_estimate_and_the_reported_ones_are_timed_once(tmp_path, fake_table, timings):
    run = tmp_path / "run"
    result = search.run_search(_recipe(tmp_path), run)
    table = measure.LatencyTable.from_json((run / "latency_table.json").read_text())
    assert (table.constant_ms and list(table.constant_ms.values()), list(table.scale.values())) == (
        [CONSTANT_MS], [SCALE])
    assert len(fake_table) == 1  # built once, for the baseline's model
    trials = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    baseline_model = load(run / "trials" / "0000" / "original.pt")  # no shared stages: the recipe's model
    for trial in trials:
        model = load(Path(trial.user_attrs["run_dir"]) / "model.pt")
        expected = _by_hand(table, baseline_model, model)
        assert trial.user_attrs["latency_ms"] == expected == trial.values[0]
        assert trial.user_attrs["latency_source"] == "table"
        assert trial.user_attrs["latency_estimate_ms"] == expected
        assert trial.user_attrs["latency"] is None  # not timed while searching
    unpruned = _by_hand(table, baseline_model, baseline_model)
    assert max(t.values[0] for t in trials) < unpruned

    # the baseline: the table's estimate (the trials' scale, for baseline_latency_ms) and its real latency
    baseline = result.study.user_attrs["baseline"]
    assert baseline["latency_ms"] == baseline["latency_estimate_ms"] == unpruned
    assert baseline["latency_source"] == "table" and baseline["latency_measured_ms"] > 0
    assert baseline["latency"]["latency_ms"] == baseline["latency_measured_ms"]

    # every reported trial (both are on the Pareto front) timed for real once, after the baseline
    reported = search.best_trials(result.study)
    assert sorted(t.number for t in reported) == [0, 1]
    assert timings == [run / "baseline.onnx", *(Path(t.user_attrs["run_dir"]) / "model.onnx" for t in reported)]
    record = search.results_record(result.study, storage=result.storage, run_dir=run)  # results.json's
    for row in record["best"]:
        measured = result.study.user_attrs[f"latency_measured.{row['number']}"]
        assert row["latency_measured_ms"] == measured["latency_ms"] > 0
        assert row["latency"]["batch_size"] == 1 and row["latency"]["threads"] == 1
        assert row["latency_ms"] == row["latency_estimate_ms"]
        assert row["latency_estimate_error"] == row["latency_estimate_ms"] / row["latency_measured_ms"] - 1
    assert record["baseline"]["latency_estimate_error"] == unpruned / baseline["latency_measured_ms"] - 1
    assert "onnxruntime" in record["latency_table"]["settings"]

    # resumed: nothing is timed again, neither the table nor the baseline nor the reported trials
    timings.clear()
    again = search.run_search(_recipe(tmp_path), run)
    assert again.ran == [] and timings == [] and len(fake_table) == 1
    assert search.results_record(again.study, storage=again.storage, run_dir=run)["best"] == record["best"]


def test_a_model_the_table_cannot_predict_is_timed_and_says_why(tmp_path, fake_table, timings, monkeypatch):
    def cannot(self, model):
        raise Unpredictable("layer features.0 changed more than its channels")

    monkeypatch.setattr(TableEstimate, "predict_ms", cannot)
    run = tmp_path / "run"
    result = search.run_search(_recipe(tmp_path, n_trials=1, parameters={"stages.0.ratio": {"values": [0.5]}}), run)
    (trial,) = result.study.get_trials()
    assert trial.user_attrs["latency_source"] == "measured"
    assert trial.user_attrs["latency_note"] == ("timed: the table cannot predict it (layer features.0 changed more "
                                                "than its channels)")
    assert trial.user_attrs["latency_ms"] == trial.user_attrs["latency"]["latency_ms"] == trial.values[0]
    assert trial.user_attrs["latency_estimate_ms"] is None
    # timed with the trial, so not again when the search ends
    assert timings == [run / "baseline.onnx", run / "trials" / "0000" / "model.onnx"]
    row = search.trial_row(trial, result.study.user_attrs)
    assert (row["latency_measured_ms"], row["latency_estimate_error"]) == (trial.values[0], None)


def _estimate(fake_table) -> tuple[TableEstimate, nn.Module]:
    model = models.create("lenet5").eval()
    inputs = torch.randn(1, 1, 28, 28)
    table, units = tables.build_table(model, inputs, calibrate=lambda t, u: (CONSTANT_MS, SCALE))
    return TableEstimate(table, units, measure.model_key(model, units), {}, inputs), model


def test_the_table_predicts_a_pruned_or_sparse_model_and_refuses_what_it_cannot_stand_for(fake_table):
    from trimkit import prune

    estimate, model = _estimate(fake_table)
    inputs = estimate.inputs
    pruned = prune.structured(model, inputs, ratio=0.5, layers="both").model
    assert estimate.predict_ms(pruned) == _by_hand(estimate.table, model, pruned) < estimate.unpruned_ms()
    # unstructured sparsity changes no shape, and the runtimes run dense kernels
    sparse = prune.unstructured(model, method="global", sparsity=0.8, remove_dead_neurons=False).model
    assert estimate.predict_ms(sparse) == estimate.unpruned_ms() == _by_hand(estimate.table, model, model)

    quantised = models.create("lenet5")
    quantised.trimkit_quant_plan = object()
    smaller_kernel = models.create("lenet5")
    smaller_kernel.features[0] = nn.Conv2d(1, 6, 3, padding=1)  # the same output, another layer shape
    less_padding = models.create("lenet5")
    less_padding.features[0] = nn.Conv2d(1, 6, 5, padding=1)  # the flatten no longer fits
    grouped = models.create("lenet5")
    grouped.features[3] = nn.Conv2d(6, 16, 5, groups=2)  # no longer a unit of the table
    wider = models.create("lenet5")
    wider.features[0], wider.features[3] = nn.Conv2d(1, 8, 5, padding=2), nn.Conv2d(8, 16, 5)
    cases = [(quantised, "a quantised model runs other kernels than the table timed"),
             (wider, "layer features.0 has more channels than the baseline's"),
             (smaller_kernel, "layer features.0 changed more than its channels"),
             (less_padding, "it does not run on the baseline's inputs"),
             (grouped, "layer features.3 is no longer a plain conv or dense layer")]
    for candidate, reason in cases:
        with pytest.raises(Unpredictable, match=reason):
            estimate.predict_ms(candidate.eval())


class GroupedNet(nn.Module):
    """A grouped convolution between two plain ones: the table leaves it in its constant."""

    def __init__(self, middle: int = 8):
        super().__init__()
        self.first = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, middle, 3, padding=1, groups=2)
        self.last = nn.Conv2d(middle, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.last(torch.relu(self.grouped(torch.relu(self.first(x)))))
        return self.head(x.mean((2, 3)))


def test_a_grouped_layer_the_table_leaves_out_may_not_change(fake_table):
    from trimkit.search._latency import _uncovered

    model, inputs = GroupedNet().eval(), torch.randn(1, 3, 8, 8)
    table, units = tables.build_table(model, inputs, calibrate=lambda t, u: (CONSTANT_MS, SCALE))
    assert sorted(units) == ["first", "head", "last"]
    estimate = TableEstimate(table, units, measure.model_key(model, units), _uncovered(model, units), inputs)
    assert estimate.predict_ms(GroupedNet().eval()) == estimate.unpruned_ms()
    with pytest.raises(Unpredictable, match=re.escape("layer grouped is left out of the table (grouped or run "
                                                      "twice) and pruning changed it")):
        estimate.predict_ms(GroupedNet(middle=4).eval())


@pytest.mark.slow  # a server, a worker and a search; tests/measure/test_remote_table.py is the fast check
def test_with_a_queue_the_table_and_the_reported_trials_are_timed_by_the_device(tmp_path, fake_table, postgres_url):
    from bench_workers import ThreadWorker

    from trimkit.measure._timer import machine_fingerprint

    worker = ThreadWorker(postgres_url, "estimate-dev")
    try:
        recipe = _recipe(tmp_path, latency={**RECIPE["search"]["latency"], "queue": postgres_url,
                                            "queue_name": "estimate-dev", "threads": 1, "timeout_s": 60})
        result = search.run_search(recipe, tmp_path / "run")
    finally:
        worker.close()
    kept = tables.LatencyTable.from_json((tmp_path / "run" / _latency.TABLE_FILE).read_text())
    assert kept.settings.machine == machine_fingerprint()  # the worker runs on this machine
    jobs = [event.label for event in worker.events if event.kind == "done"]
    assert jobs[0] == "probe (0 files)"  # where the device times: the table's key
    assert sum(label.endswith(".onnx") for label in jobs) >= 2  # the baseline and the reported trials
    assert all(row.get("latency_measured_ms") for row in search.results_record(
        result.study, storage=result.storage, run_dir=result.run_dir)["best"])
