"""Runs of whole recipes: the log, run folders, resume after SIGKILL, the example recipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import trimkit
from conftest import SHARED_DATA, requires_shared_data
from trimkit import pipeline
from trimkit.cli import app

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "examples" / "recipes"
runner = CliRunner()


def _small_recipe(path: Path, finetune_epochs: int = 3, train_samples: int = 512) -> Path:
    recipe = {
        "name": "small",
        "model": {"name": "lenet5"},
        "task": {"data": "mnist5k", "train_samples": train_samples},
        "seed": 3,
        "stages": [
            {"stage": "train", "epochs": 2, "batch_size": 64, "lr": 0.05, "precision": "fp32"},
            {"stage": "prune", "ratio": 0.5, "layers": "both"},
            {"stage": "finetune", "epochs": finetune_epochs, "batch_size": 64, "lr": 0.02, "precision": "fp32"},
        ],
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_log_has_a_record_per_stage_and_agrees_with_profile_and_eval(tmp_path):
    recipe = _small_recipe(tmp_path / "r.yaml", finetune_epochs=1)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = (out / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["stage"] for r in records] == ["input", "train", "prune", "finetune", "final"]
    assert [r["index"] for r in records] == [-1, 0, 1, 2, 3]
    final = records[-1]["measurement"]
    profiled = json.loads(runner.invoke(app, ["profile", str(out / "model.pt"), "--json"]).stdout)
    assert (final["params"], final["macs"], final["flops"]) == (profiled["params"], profiled["macs"],
                                                                 profiled["flops"])
    evaluated = json.loads(runner.invoke(app, ["eval", str(out / "model.pt"), "--data", "mnist5k", "--split", "val",
                                               "--json"]).stdout)
    top1 = next(m for m in final["metrics"] if m["name"] == "top1")
    assert top1["value"] == pytest.approx(evaluated["top1"]) and top1["samples"] == evaluated["n"] == 1000
    assert top1["precision"] == "fp32" and top1["backend"] == "pytorch" and top1["split"] == "val"
    assert records[2]["measurement"]["macs"] < records[1]["measurement"]["macs"]
    assert final["size_bytes"]["onnx"] == (out / "model.onnx").stat().st_size
    assert final["size_bytes"]["model_file"] == (out / "model.pt").stat().st_size
    assert yaml.safe_load((out / "recipe.yaml").read_text())["stages"][1]["ratio"] == 0.5
    again = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
    assert again.exit_code == 2 and "already holds a run" in again.stderr
    finished = runner.invoke(app, ["run", str(recipe), "--out", str(out), "--resume", "--json"])
    assert finished.exit_code == 0 and len((out / "log.jsonl").read_text().splitlines()) == len(lines)
    changed = runner.invoke(app, ["run", str(recipe), "--out", str(out), "--resume", "--set", "stages.1.ratio=0.3"])
    assert changed.exit_code == 2 and "another recipe" in changed.stderr


@pytest.mark.heavy  # a command killed and resumed
def test_a_run_killed_while_fine_tuning_resumes_to_the_uninterrupted_result(tmp_path):
    recipe = _small_recipe(tmp_path / "r.yaml", finetune_epochs=4, train_samples=2000)
    command = [sys.executable, "-m", "trimkit.cli", "run", str(recipe)]
    straight = tmp_path / "straight"
    subprocess.run([*command, "--out", str(straight), "--json"], check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(killed), "--json"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoint = killed / "stages" / "02-finetune" / "checkpoint.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run ended before its fine-tuning stage wrote a checkpoint"
    stages_done = [json.loads(line)["stage"] for line in (killed / "log.jsonl").read_text().splitlines()]
    assert stages_done == ["input", "train", "prune"]

    resumed = subprocess.run([*command, "--out", str(killed), "--resume", "--json"], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = json.loads(resumed.stdout)["records"]
    assert [r["stage"] for r in records] == ["input", "train", "prune", "finetune", "final"]
    assert records[3]["details"]["resumed_from_epoch"] >= 1
    assert [h["epoch"] for h in records[3]["details"]["history"]] == [1, 2, 3, 4]
    a, b = trimkit.load(straight / "model.pt").state_dict(), trimkit.load(killed / "model.pt").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gradual_pruning_follows_the_cubic_ramp_with_verified_cuts(tmp_path):
    recipe = pipeline.parse_recipe({
        "model": {"name": "lenet5"}, "task": {"data": "mnist5k", "train_samples": 256, "val_samples": 200},
        "stages": [{"stage": "finetune", "epochs": 5, "batch_size": 64, "lr": 0.02,
                    "pruners": {"agp": {"kind": "agp", "final_sparsity": 0.5, "layers": "both", "mode": "static"}},
                    "policies": [{"pruner": "agp", "starting_epoch": 0, "ending_epoch": 4, "frequency": 1}]}],
    })
    result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    steps = result.log.records[1].details["pruning_steps"]
    targets = [0.5 + (0.0 - 0.5) * (1 - k / 3) ** 3 for k in range(4)]
    fired = list(steps)
    assert [s["epoch"] for s in fired] == [e for e, t in zip(range(4), targets) if t > 0]
    assert [s["target_sparsity"] for s in fired] == pytest.approx([t for t in targets if t > 0])
    assert all(s["frozen"] == 0 for s in fired)
    widths = {name: module.weight.shape[0] for name, module in result.context.original.named_modules()
              if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))}
    kept = {name: module.weight.shape[0] for name, module in result.model.named_modules()
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))}
    hidden = list(widths)[:-1]  # the output layer is never pruned
    assert kept[list(widths)[-1]] == widths[list(widths)[-1]]
    assert sum(kept[n] for n in hidden) / sum(widths[n] for n in hidden) == pytest.approx(0.5, abs=0.05)
    final = result.log.records[-1].measurement
    assert final.macs < result.log.records[0].measurement.macs
    assert sum(p.numel() for p in result.model.parameters()) == final.params


@requires_shared_data("cifar10.npz", "pretrained/resnet56-4bfd9763.th", "pretrained/resnet20-12fca82f.th")
@pytest.mark.parametrize("name, overrides", [
    ("resnet56-li-pruned-b.yaml", ["stages.1.epochs=1"]),
    pytest.param("resnet56-filter-rank.yaml", ["stages.0.epochs=2", "stages.0.policies.1.ending_epoch=2"],
                 marks=pytest.mark.slow),  # 11-15 s: run by make test-slow; the other three stay fast
    ("resnet20-agp.yaml", ["stages.0.epochs=3", "stages.0.policies.0.ending_epoch=3"]),
    ("resnet56-prune-distil.yaml", ["stages.1.epochs=1"]),
])
@pytest.mark.heavy  # whole example recipes
def test_example_recipes_run_at_a_tiny_budget(tmp_path, monkeypatch, name, overrides):
    monkeypatch.chdir(ROOT)  # the recipes name ../shared/data relative to the repository
    tiny = ["task.train_samples=128", "task.val_samples=128", "task.data_dir=" + str(SHARED_DATA),
            "stages.-1.min_time_s=0.05"]
    recipe_data = yaml.safe_load((RECIPES / name).read_text())
    last = len(recipe_data["stages"]) - 1
    tiny[-1] = f"stages.{last}.min_time_s=0.05"
    recipe = pipeline.load_recipe(RECIPES / name, [*tiny, *overrides])
    result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    records = result.log.records
    assert [r.stage for r in records][1:-1] == [entry.stage for entry in recipe.stages]
    assert records[-1].measurement.macs < records[0].measurement.macs
    measured = records[-2].measurement
    assert {r.batch_size for r in measured.latency} == {1, 32}
    assert measured.metric("top1", backend="onnxruntime").samples == 128


def test_stages_and_recipes_run_from_python_without_a_run_folder():
    from trimkit import data, models, tasks
    from trimkit.pipeline.stages.export import ExportOptions
    from trimkit.pipeline.stages.prune import PruneOptions

    task = tasks.classification(data.load("mnist5k", "train").subset(256), data.load("mnist5k", "val").subset(100))
    model = models.create("lenet5")
    ctx = pipeline.Context.for_api(task, model)
    ctx.begin(0, None)
    pruned = pipeline.get_stage("prune").run(model, ctx, PruneOptions(ratio=0.5, layers="both"))
    assert ctx.report.macs < 416_520 and ctx.details["groups_pruned"] > 0
    assert sum(p.numel() for p in model.parameters()) == 61_706  # the input model is untouched
    ctx.begin(1, None)
    pipeline.get_stage("export").run(pruned, ctx, ExportOptions())
    assert ctx.unchanged and Path(ctx.artifacts["onnx"]).stat().st_size == ctx.report.size_bytes["onnx"]

    recipe = pipeline.parse_recipe({"model": {"name": "lenet5"}, "task": {"data": "mnist5k", "train_samples": 128},
                                    "stages": [{"stage": "prune", "ratio": 0.5}, {"stage": "export"}]})
    result = pipeline.run_recipe(recipe, progress=False)
    prune_record, export_record, final = result.log.records[1:]
    assert export_record.measurement.metrics == prune_record.measurement.metrics  # measured once, carried
    assert export_record.measurement.size_bytes["onnx"] > 0 and final.measurement.macs == prune_record.measurement.macs
