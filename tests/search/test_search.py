"""trimkit search: the search block, parameters to recipe fields, hybrid expressions,
constraints in Optuna, workers sharing one file store, resume, results and plots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from trimkit import search
from trimkit.cli import app
from trimkit.errors import TrimkitError
from trimkit.pipeline import RecipeError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# LeNet-5 pruned at one searched ratio, no training, no export: about a second a trial
TINY = {
    "name": "tiny",
    "model": {"name": "lenet5"},
    "task": {"data": "mnist5k", "train_samples": 64, "val_samples": 100},
    "export": False,
    "stages": [{"stage": "prune", "ratio": 0.0, "layers": "both", "mode": "static", "calibration_samples": 8}],
    "search": {"method": "grid", "n_trials": 2, "size": "model_file",
               "parameters": {"stages.0.ratio": {"values": [0.0, 0.5]}},
               "objectives": ["macs", "top1"], "constraints": {"max_macs": 300000}},
}
LENET_MACS = 416_520


def _recipe(tmp_path: Path, **search_changes) -> Path:
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data["search"].update(search_changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _with_search(**block) -> dict:
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data["search"] = {"parameters": {"stages.0.ratio": {"min": 0.0, "max": 0.5}}, "objectives": ["top1"], **block}
    return data


@pytest.mark.parametrize("block, message", [
    ({"parameters": {"stages.9.ratio": {"min": 0.1, "max": 0.5}}},
     "search.parameters.stages.9.ratio: stages.9.ratio is no path in the recipe"),
    ({"parameters": {"stages.0.ratio": {"min": 0.8, "max": 0.2}}},
     "search.parameters.stages.0.ratio: min 0.8 is above max 0.2; swap them"),
    ({"parameters": {"stages.0.ratio": {"min": 0.0, "max": 1.0}}},
     "search.parameters.stages.0.ratio.max: 1.0 makes the recipe invalid (stages[0].ratio: 1.0 is not in [0, 1)"),
    ({"parameters": {"stages.0.ratio": {"min": 0.1}}}, "search.parameters.stages.0.ratio: give both min and max"),
    ({"parameters": {"stages.0.ratio": {"min": 0.1, "max": 0.5, "values": [0.2]}}},
     "search.parameters.stages.0.ratio: give min and max (optionally log or step), or values"),
    ({"parameters": {"stages.0": {"values": [1]}}}, "stages.0 holds a mapping or list, not one value"),
    ({"objectives": ["latency_ms"]},
     "search.objectives[0]: latency_ms has no measurement behind it; add search.latency"),
    ({"objectives": ["top3"]}, "search.objectives[0].name: no measurement named 'top3'; known: "),
    ({"objectives": [{"expr": "top1 - macs"}]}, "direction: an expression needs direction: minimize or maximize"),
    ({"objectives": [{"expr": "__import__('os').system('true')", "direction": "maximize"}]},
     "is not allowed; use numbers, measurement fields"),
    ({"methd": "tpe"}, "search: unknown key 'methd' (did you mean 'method'?)"),
    ({"method": "bayes"}, "search.method: 'bayes': input should be 'tpe', 'random', 'grid', 'nsga2' or 'gp'"),
    ({"method": "grid", "parameters": {"stages.0.ratio": {"min": 0.0, "max": 0.5}}},
     "search.parameters.stages.0.ratio: method grid needs values or a step"),
    ({"latency": {"backend": "tensorrt"}}, "search.latency.backend: unknown backend 'tensorrt'"),
    ({"latency": {"queue": "postgresql://x/y"}}, "a remote latency needs both queue"),
    ({"latency": {"estimate": "tabel"}}, "search.latency.estimate: 'tabel': input should be 'measure' or 'table'"),
    ({"latency": {"estimate": "table", "backend": "torch"}},
     "search.latency.estimate: table needs a runtime that runs ONNX (onnxruntime, openvino), not torch"),
])
def test_bad_search_blocks_are_one_line_naming_the_yaml_path(block, message):
    with pytest.raises(RecipeError) as raised:
        search.parse_search_recipe(_with_search(**block), source="r.yaml")
    text = str(raised.value)
    assert "\n" not in text and text.startswith("r.yaml: ")
    assert message in text, text


def test_trimkit_run_of_a_search_recipe_points_to_trimkit_search(tmp_path):
    result = runner.invoke(app, ["run", str(_recipe(tmp_path)), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("search: this recipe is a search; run it with trimkit search "
                                          f"{tmp_path / 'tiny.yaml'}")


def test_a_recipe_without_a_search_block_is_refused():
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.pop("search")
    with pytest.raises(RecipeError, match="no search block; add search: with parameters and objectives"):
        search.parse_search_recipe(data, source="r.yaml")


def test_sampled_values_land_on_the_recipe_fields_they_name():
    data = {
        "model": {"name": "resnet20"}, "task": {"data": "cifar10"},
        "stages": [
            {"stage": "train", "epochs": 3},
            {"stage": "prune", "ratio": {"layer1.*.conv1": 0.6, "layer3.*.conv1": 0.1}, "layers": "conv",
             "mode": "static"},
            {"stage": "finetune", "epochs": 5, "lr": 0.01},
        ],
        "search": {
            "method": "tpe", "epochs": 0,
            "parameters": {
                "stages.1.ratio.layer1.*.conv1": {"min": 0.0, "max": 0.9},   # a key with dots in it
                "lr": {"path": "stages.2.lr", "min": 1e-4, "max": 0.1, "log": True},
                "deep": {"path": "stages.1.ratio", "keys": ["layer2.*.conv1", "layer3.*.conv1"], "min": 0.0,
                         "max": 0.8, "step": 0.1},
                "stages.2.batch_size": {"values": [32, 64]},
            },
            "objectives": ["top1"],
        },
    }
    recipe = search.parse_search_recipe(data)
    assert recipe.split == 1  # the train stage is shared; prune and fine-tune run per trial
    assert recipe.parameters["stages.1.ratio.layer1.*.conv1"].parts == ("stages", 1, "ratio", "layer1.*.conv1")
    fixed = optuna.trial.FixedTrial({"stages.1.ratio.layer1.*.conv1": 0.25, "lr": 0.003, "deep": 0.4,
                                     "stages.2.batch_size": 64})
    values = {name: search.study.suggest(fixed, name, p.spec) for name, p in recipe.parameters.items()}
    assert values["deep"] == pytest.approx(0.4) and isinstance(values["stages.2.batch_size"], int)
    trial = recipe.trial_data(values)
    assert trial["stages"][1]["ratio"] == {"layer1.*.conv1": 0.25, "layer3.*.conv1": 0.4, "layer2.*.conv1": 0.4}
    assert trial["stages"][2]["lr"] == 0.003 and trial["stages"][2]["batch_size"] == 64
    assert trial["stages"][2]["epochs"] == 0  # the per-trial budget
    assert trial["stages"][0]["epochs"] == 3 and recipe.data["stages"][1]["ratio"]["layer3.*.conv1"] == 0.1
    built = recipe.trial_recipe(values, "/base/model.pt", export=True)
    assert built.model.file == "/base/model.pt" and [e.stage for e in built.stages] == ["prune"]  # 0 epochs: none
    recipe.spec.epochs = 2
    built = recipe.trial_recipe(values, "/base/model.pt", export=True)
    assert [(e.stage, getattr(e.options, "epochs", None)) for e in built.stages] == [("prune", None),
                                                                                      ("finetune", 2)]
    assert recipe.overrides(values)["stages.1.ratio[deep]"] == pytest.approx(0.4)


def test_a_group_parameter_over_a_single_ratio_keeps_it_for_the_other_layers():
    data = _with_search(parameters={"convs": {"path": "stages.0.ratio", "keys": ["features.*"], "min": 0.0,
                                              "max": 0.5}})
    data["stages"][0]["ratio"] = 0.2
    recipe = search.parse_search_recipe(data)
    assert recipe.trial_data({"convs": 0.3})["stages"][0]["ratio"] == {"features.*": 0.3, "*": 0.2}


def test_sensitivity_clusters_become_one_parameter_each(tmp_path):
    sensitivity = {"baseline": 90.0, "baseline_macs": 100, "layers": {"g1": ["features.0"], "g2": ["features.3"],
                                                                      "g3": ["classifier.1", "classifier.3"]},
                   "groups": {"g1": {"0.5": 89.0}, "g2": {"0.5": 60.0}, "g3": {"0.5": 88.5}},
                   "clusters": [{"groups": ["g1", "g3"], "mean_drop": 1.25}, {"groups": ["g2"], "mean_drop": 30.0}]}
    (tmp_path / "sensitivity.json").write_text(json.dumps(sensitivity))
    data = _with_search(groups={"from": str(tmp_path / "sensitivity.json"), "path": "stages.0.ratio", "max": 0.7,
                                "step": 0.1})
    data["search"].pop("parameters")
    recipe = search.parse_search_recipe(data)
    assert {n: p.spec.keys for n, p in recipe.parameters.items()} == {
        "cluster1": ["features.0", "classifier.1", "classifier.3"], "cluster2": ["features.3"]}
    assert recipe.trial_data({"cluster1": 0.3, "cluster2": 0.1})["stages"][0]["ratio"] == {
        "features.0": 0.3, "classifier.1": 0.3, "classifier.3": 0.3, "features.3": 0.1}
    # asking for another number of clusters re-clusters the file's sensitivities
    data["search"]["groups"]["clusters"] = 3
    assert len(search.parse_search_recipe(data).parameters) == 3
    data["search"]["groups"]["from"] = str(tmp_path / "missing.json")
    with pytest.raises(RecipeError, match=r"search.groups\[0\].from: .*missing.json does not exist"):
        search.parse_search_recipe(data)


def test_hybrid_expressions_compute_by_hand_and_refuse_code():
    fields = {"top1", "latency_ms", "baseline_latency_ms", "macs"}
    hybrid = search.Expression("top1 - 20 * latency_ms / baseline_latency_ms", fields)
    assert hybrid.names == ["baseline_latency_ms", "latency_ms", "top1"]
    assert hybrid({"top1": 91.5, "latency_ms": 1.5, "baseline_latency_ms": 2.0}) == pytest.approx(91.5 - 15.0)
    assert search.Expression("max(top1, 2) ** 2 + -abs(macs) / 1e3", fields)({"top1": 3, "macs": 2000}) == 7.0
    assert search.Expression("log(macs)", fields)({"macs": 1.0}) == 0.0
    assert str(search.Expression("top1 / latency_ms", fields)({"top1": 1.0, "latency_ms": 0.0})) == "nan"
    assert str(search.Expression("top1 * macs", fields)({"top1": 1.0})) == "nan"  # not measured
    for unsafe in ["__import__('os').system('true')", "top1.real", "macs[0]", "(lambda: 1)()", "'a' * 3",
                   "open('x')", "[top1 for top1 in (1,)]", "top1 if macs else 0", "True + 1", "top1 < 3"]:
        with pytest.raises(TrimkitError, match=r"is not allowed|is not a number"):
            search.Expression(unsafe, fields)
    with pytest.raises(TrimkitError, match="no measurement named 'os'"):
        search.Expression("os + 1", fields)
    with pytest.raises(TrimkitError, match="is not an arithmetic expression"):
        search.Expression("top1 +", fields)


def test_constraints_reach_optuna_and_only_the_feasible_trial_is_best(tmp_path):
    recipe = search.load_search_recipe(_recipe(tmp_path))
    result = search.run_search(recipe, tmp_path / "run")
    trials = {t.params["stages.0.ratio"]: t for t in result.study.get_trials(states=(TrialState.COMPLETE,))}
    assert sorted(trials) == [0.0, 0.5]
    unpruned, pruned = trials[0.0], trials[0.5]
    # Optuna holds each constraint (feasible at <= 0): MACs minus the limit
    assert unpruned.constraints == {"max_macs": LENET_MACS - 300000}
    assert pruned.constraints["max_macs"] == pruned.user_attrs["macs"] - 300000 < 0
    assert [t.number for t in result.study.best_trials] == [pruned.number]  # the infeasible one is off the front
    assert unpruned.user_attrs["drop"] == 0.0
    assert unpruned.user_attrs["overrides"] == {"stages.0.ratio": 0.0}
    assert unpruned.values == [LENET_MACS, unpruned.user_attrs["metric"]]

    record = search.write_results(result.study, tmp_path / "run", storage=result.storage)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["counts"] == {"ended": 2, "complete": 2, "failed": 0, "feasible": 1, "running": 0, "waiting": 0}
    assert [row["number"] for row in on_disk["best"]] == [pruned.number]
    best = on_disk["best"][0]
    assert (best["macs"], best["bytes"], best["overrides"]) == (
        pruned.user_attrs["macs"], pruned.user_attrs["bytes"], {"stages.0.ratio": 0.5})
    assert on_disk["baseline"]["macs"] == LENET_MACS
    for name in ("history", "pareto", "importances"):
        assert Path(record["plots"][name]).read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_a_study_of_other_directions_is_refused_and_bad_storages_are_one_line(tmp_path):
    journal = tmp_path / "other.journal"
    optuna.create_study(study_name="tiny", directions=["maximize"],
                        storage=search.open_storage(f"journal:{journal}"))
    recipe = _recipe(tmp_path)
    cases = [
        (["--storage", f"journal:{journal}"], "study 'tiny' in journal:" + str(journal) + " optimises maximize, but "
         "the recipe asks for minimize, maximize; choose another --study-name"),
        (["--storage", "redis://localhost"], "storage redis://localhost: unknown kind 'redis'"),
        (["--storage", "postgresql://nobody:secret@127.0.0.1:9/none"],
         "storage postgresql://nobody@127.0.0.1:9/none is unreachable ("),
        (["--resume"], "no study 'tiny' in journal:"),
        (["--n-trials", "0"], "--n-trials 0: give at least 1"),
        (["--set", "search.n_trials=0"], "search.n_trials: 0: input should be greater than or equal to 1"),
        (["--set", "search.constraints.max_drop=-1"], "search.constraints.max_drop: -1: input should be greater"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, ["search", str(recipe), "--out", str(tmp_path / "run"), *arguments])
        assert result.exit_code == 2, (arguments, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "secret" not in result.stderr


def _study(run: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=search.open_storage(f"journal:{run / 'study.journal'}"))


def _search_process(recipe: Path, run: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trimkit.cli", "search", str(recipe), "--out", str(run), "--json",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


@pytest.mark.heavy  # worker processes
def test_two_workers_on_one_file_store_end_with_exactly_n_trials(tmp_path):
    recipe = _recipe(tmp_path, method="random", n_trials=6, parameters={"stages.0.ratio": {"min": 0.0, "max": 0.8}})
    run = tmp_path / "run"
    other = _search_process(recipe, run)  # a second process; this one joins once it runs a trial
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and other.poll() is None:
        if (run / "study.journal").exists():
            try:
                if _study(run).get_trials():
                    break
            except KeyError:  # the study is not created yet
                pass
        time.sleep(0.05)
    here = runner.invoke(app, ["search", str(recipe), "--out", str(run), "--json"])
    stdout, stderr = other.communicate(timeout=300)
    assert other.returncode == 0 and here.exit_code == 0, (stderr, here.output)
    ran = [json.loads(stdout)["ran_here"], json.loads(here.stdout)["ran_here"]]
    trials = _study(run).get_trials()
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6 and all(ran), ran  # both worked, and together they stopped at n_trials
    # every trial either counts or was given up by the worker that asked later for the last slot
    assert all(t.state == TrialState.COMPLETE or t.user_attrs.get("surplus") for t in trials)
    assert sorted(ran[0] + ran[1]) == sorted(complete)
    assert len({t.params["stages.0.ratio"] for t in trials if t.state == TrialState.COMPLETE}) == 6
    assert {t.user_attrs["worker"]["pid"] for t in trials if t.state == TrialState.COMPLETE} == {other.pid,
                                                                                                 os.getpid()}


@pytest.mark.heavy  # a search killed and resumed
def test_a_killed_search_resumes_and_ends_with_n_trials(tmp_path):
    recipe = _recipe(tmp_path, method="random", n_trials=4, parameters={"stages.0.ratio": {"min": 0.0, "max": 0.8}})
    run = tmp_path / "run"
    process = _search_process(recipe, run)
    deadline = time.monotonic() + 240
    killed_running = None
    while process.poll() is None and time.monotonic() < deadline:
        if (run / "study.journal").exists():
            try:
                trials = _study(run).get_trials()
            except KeyError:  # the study is not created yet
                trials = []
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
            if done and running:
                killed_running = running[0].number
                os.kill(process.pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    process.communicate()
    assert killed_running is not None, "the search ended before a trial could be killed mid-run"
    before = {t.number: t.values for t in _study(run).get_trials() if t.state == TrialState.COMPLETE}

    resumed = runner.invoke(app, ["search", str(recipe), "--out", str(run), "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    trials = _study(run).get_trials()
    complete = {t.number: t for t in trials if t.state == TrialState.COMPLETE}
    assert len(complete) == 4 and len(search.counted_trials(_study(run))) == 4
    assert all(complete[n].values == values for n, values in before.items())  # nothing recorded is lost
    dead = next(t for t in trials if t.number == killed_running)
    assert dead.state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed_running)
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.user_attrs["run_dir"].endswith(f"trials/{killed_running:04d}")  # its run folder, continued
    assert json.loads(resumed.stdout)["counts"]["ended"] == 4


def test_a_remote_latency_objective_asks_the_benchmark_queue_for_the_trials_export(tmp_path, monkeypatch):
    from trimkit.measure import remote
    from trimkit.record import LatencyRecord

    asked = []

    def measure_remote(onnx_path, options, **settings):
        settings = {**options.runtime_settings(), **settings}
        asked.append((Path(onnx_path), settings))
        return LatencyRecord(latency_ms=2.5, p90_ms=3.0, p99_ms=3.5, mean_ms=2.6, cv=0.1, throughput=400.0,
                             iterations=50, backend=settings["backend"], precision="fp32", precision_requested="auto",
                             threads=settings["threads"], batch_size=settings["batch_size"])

    monkeypatch.setattr(remote, "measure_remote", measure_remote)
    recipe = search.load_search_recipe(_recipe(
        tmp_path, n_trials=1, parameters={"stages.0.ratio": {"values": [0.5]}}, objectives=["latency_ms"],
        constraints={}, size="onnx",
        latency={"backend": "openvino", "queue": "postgresql://q@db/queue", "queue_name": "ncs2", "batch_size": 4,
                 "threads": 2, "timeout_s": 90}))
    result = search.run_search(recipe, tmp_path / "run")
    trial = result.study.get_trials()[0]
    assert trial.values == [2.5] and trial.user_attrs["latency"]["backend"] == "openvino"
    (baseline, _), (onnx, settings) = asked  # the baseline's export (for hybrid formulas), then the trial's
    assert onnx == tmp_path / "run" / "trials" / "0000" / "model.onnx" and onnx.exists()
    assert baseline == tmp_path / "run" / "baseline.onnx" and baseline.read_bytes()[:2] == onnx.read_bytes()[:2]
    assert result.study.user_attrs["baseline"]["latency_ms"] == 2.5
    assert settings == {"queue_url": "postgresql://q@db/queue", "queue_name": "ncs2", "backend": "openvino",
                        "batch_size": 4, "threads": 2, "timeout_s": 90.0, "precision": "auto", "min_time_s": 0.5,
                        "warmup": 10, "min_iters": 10, "max_iters": 10_000}


@pytest.mark.slow
def test_a_search_finds_a_model_within_a_latency_limit_the_baseline_misses(tmp_path):
    from trimkit import measure, models

    timing = {"backend": "onnxruntime", "batch_size": 32, "threads": 1, "min_time_s": 1.0}
    baseline = measure.latency(models.create("lenet5"), backend="onnxruntime", batch_size=32, threads=1,
                               min_time_s=1.0).p50_ms
    limit = 0.8 * baseline
    recipe = search.load_search_recipe(_recipe(
        tmp_path, n_trials=2, parameters={"stages.0.ratio": {"values": [0.0, 0.7]}}, objectives=["top1"],
        constraints={"max_latency_ms": limit}, latency=timing, size="onnx"))
    result = search.run_search(recipe, tmp_path / "run")
    trials = {t.params["stages.0.ratio"]: t for t in result.study.get_trials(states=(TrialState.COMPLETE,))}
    assert trials[0.0].constraints["max_latency_ms"] > 0  # the unpruned model misses the limit
    assert trials[0.7].constraints["max_latency_ms"] <= 0
    assert [t.number for t in search.best_trials(result.study)] == [trials[0.7].number]
    assert result.study.user_attrs["baseline"]["latency_ms"] > limit


def test_the_example_search_recipe_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    tiny = ["task.train_samples=128", "task.val_samples=100", "stages.0.epochs=1", "search.n_trials=2",
            "search.epochs=0", "search.latency.min_time_s=0.05"]
    result = runner.invoke(app, ["search", "examples/recipes/lenet5-search.yaml", "--out", str(tmp_path / "run"),
                                 "--json", *[item for pair in (("--set", t) for t in tiny) for item in pair]])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["counts"]["complete"] == 2 and record["directions"] == ["minimize", "maximize"]
    assert (tmp_path / "run" / "base" / "model.pt").exists()  # the train stage ran once, shared by the trials
    for row in record["trials"]:
        assert set(row["overrides"]) == {"stages.1.ratio[conv]", "stages.1.ratio[dense]"}
        assert row["latency_ms"] > 0 and row["latency"]["batch_size"] == 1 and row["latency"]["threads"] == 1
        folder = Path(row["run_dir"])
        assert row["bytes"] == (folder / "model.onnx").stat().st_size
        stages = [json.loads(line)["stage"] for line in (folder / "log.jsonl").read_text().splitlines()]
        assert stages == ["input", "prune", "final"]  # the 0-epoch fine-tune is left out
    assert record["baseline"]["macs"] == LENET_MACS and record["baseline"]["latency_ms"] > 0


@pytest.mark.slow  # builds LeNet-5's latency table for real (10-15 s here)
def test_the_example_search_estimates_latency_from_the_table_and_times_what_it_reports(tmp_path, monkeypatch):
    from trimkit._model_file import load
    from trimkit.search._latency import TableEstimate

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TRIMKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    tiny = ["task.train_samples=128", "task.val_samples=100", "stages.0.epochs=1", "search.n_trials=3",
            "search.epochs=0", "search.latency.min_time_s=0.05", "search.latency.estimate=table",
            "search.constraints.max_drop=100"]
    result = runner.invoke(app, ["search", "examples/recipes/lenet5-search.yaml", "--out", str(run),
                                 *[item for pair in (("--set", t) for t in tiny) for item in pair]])
    assert result.exit_code == 0, result.output
    assert "latency ms (table)" in result.stdout and "measured ms" in result.stdout and " %" in result.stdout
    record = json.loads((run / "results.json").read_text())
    assert record["counts"]["complete"] == 3
    recipe = search.load_search_recipe(ROOT / "examples/recipes/lenet5-search.yaml", tiny)
    estimate = TableEstimate.build(run / "base" / "model.pt", recipe.spec.latency, run)  # the kept table
    for row in record["trials"]:
        assert row["latency_source"] == "table"
        assert row["latency_ms"] == row["latency_estimate_ms"] == estimate.predict_ms(
            load(Path(row["run_dir"]) / "model.pt"))
    assert record["best"] and all(row["latency_measured_ms"] > 0 and row["latency_estimate_error"] == pytest.approx(
        row["latency_estimate_ms"] / row["latency_measured_ms"] - 1) for row in record["best"])
    assert record["baseline"]["latency_ms"] == estimate.unpruned_ms() and record["baseline"]["latency_measured_ms"] > 0


def test_objectives_and_constraints_read_the_trials_figures_against_the_baseline():
    from trimkit.search._trial import Figures, constraint_values, objective_values

    data = _with_search(objectives=["drop", {"name": "hybrid", "expr": "top1 / baseline_top1 - latency_ms / "
                                             "baseline_latency_ms", "direction": "maximize"}, "bytes"],
                        constraints={"max_drop": 1.5, "max_bytes": 60, "max_macs": 100},
                        latency={"backend": "onnxruntime"})
    recipe = search.parse_search_recipe(data)
    assert recipe.spec.directions() == ["minimize", "maximize", "minimize"]
    trial = Figures(metric=90.0, macs=100, params=10, bytes=50, latency_ms=2.0)
    baseline = Figures(metric=92.0, macs=400, params=40, bytes=200, latency_ms=4.0)
    assert objective_values(recipe, trial, baseline) == pytest.approx([2.0, 90 / 92 - 0.5, 50])
    assert constraint_values(recipe, trial, baseline) == {"max_drop": 0.5, "max_bytes": -10.0, "max_macs": 0.0}


def test_grid_values_follow_min_max_and_step():
    from trimkit.search._spec import ParameterSpec

    assert search.study.grid_values(ParameterSpec(min=0.0, max=0.5, step=0.25)) == [0.0, 0.25, 0.5]
    assert search.study.grid_values(ParameterSpec(min=1, max=5, step=2)) == [1, 3, 5]
    assert search.study.grid_values(ParameterSpec(values=["a", "b"])) == ["a", "b"]


@pytest.mark.slow
def test_a_storage_that_goes_away_mid_search_is_one_line_and_keeps_what_it_recorded(tmp_path, postgres_url):
    import psycopg

    from postgres import require_server

    recipe = _recipe(tmp_path, method="random", n_trials=40, parameters={"stages.0.ratio": {"min": 0.0, "max": 0.8}})
    process = _search_process(recipe, tmp_path / "run", "--storage", postgres_url)
    deadline = time.monotonic() + 240
    done = []
    while process.poll() is None and time.monotonic() < deadline and len(done) < 2:
        try:
            study = optuna.load_study(study_name="tiny", storage=search.open_storage(postgres_url))
            done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
        except KeyError:  # not created yet
            pass
        time.sleep(0.2)
    assert len(done) >= 2, process.stderr.read() if process.poll() is not None else "no trial ended"
    database = postgres_url.rpartition("/")[2]
    with psycopg.connect(require_server(), autocommit=True) as connection:
        for _ in range(50):  # the server loses the database: cut the worker's connections, then rename it
            connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                               (database,))
            try:
                connection.execute(f'ALTER DATABASE "{database}" RENAME TO "{database}_away"')
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.05)
    try:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error: storage postgresql://") and "failed (" in last
        assert "the trials it recorded are kept" in last
        with psycopg.connect(require_server(), autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{database}_away" RENAME TO "{database}"')
        kept = optuna.load_study(study_name="tiny", storage=search.open_storage(postgres_url)).get_trials()
        assert {t.number: t.values for t in done}.items() <= {t.number: t.values for t in kept}.items()
    finally:
        with psycopg.connect(require_server(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}_away" WITH (FORCE)')
