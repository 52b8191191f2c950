from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import trimkit
from conftest import PRETRAINED, SHARED_DATA, requires_shared_data
from trimkit import models
from trimkit.cli import app
from trimkit.errors import TrimkitError

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_profile_json_reports_resnet56_exactly():
    result = run("profile", "resnet56", "--json")
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["macs"] == 125_485_696 and record["params"] == 853_018
    assert record["flops"] == 2 * 125_485_696
    assert record["param_bytes"] == {"float32": 853_018 * 4}
    assert {"name", "type", "params", "macs", "flops"} <= set(record["layers"][0])


def test_models_lists_the_zoo_as_json():
    record = json.loads(run("models", "--json").stdout)
    by_name = {row["name"]: row for row in record["models"]}
    assert by_name["resnet20"]["macs"] == 40_551_040
    assert by_name["lenet5"]["input_shape"] == [1, 28, 28]


@pytest.mark.parametrize("args, message", [
    (["profile", "resnet57"], "unknown model 'resnet57' (did you mean 'resnet56'?)"),
    (["eval", "lenet5", "--data", "imagenet"], "unknown data set 'imagenet'"),
    (["eval", "lenet5", "--data", "cifar10", "--data-dir", "/nonexistent"], "--data-dir DIR or set TRIMKIT_DATA"),
    (["eval", "lenet5", "--weights", "/nonexistent.pt"], "does not exist"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_checkpoint_that_does_not_fit_names_keys_and_shapes(tmp_path):
    torch.save(models.create("lenet5", num_classes=3).state_dict(), tmp_path / "w.pt")
    result = run("eval", "lenet5", "--weights", str(tmp_path / "w.pt"))
    assert result.exit_code == 2
    assert "classifier.5.weight: checkpoint (3, 84) vs model (10, 84)" in result.stderr


def test_train_then_eval_then_profile_the_file(tmp_path):
    out = tmp_path / "lenet.pt"
    result = run("train", "lenet5", "--data", "mnist5k", "--epochs", "2", "--batch-size", "32", "--out",
                 str(out), "--json")
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert out.exists() and (tmp_path / "lenet.pt.ckpt").exists()
    evaluated = json.loads(run("eval", str(out), "--data", "mnist5k", "--split", "val", "--json").stdout)
    assert set(evaluated) == {"top1", "top5", "loss", "n", "measurement"}
    assert evaluated["n"] == 1000
    assert evaluated["top1"] == pytest.approx(trained["val_top1"], abs=1e-9)
    figures = evaluated["measurement"]
    assert figures["params"] == trained["measurement"]["params"] == 61_706 and figures["macs"] == 416_520
    top1 = next(m for m in figures["metrics"] if m["name"] == "top1")
    assert top1 == {"name": "top1", "value": evaluated["top1"], "split": "val", "samples": 1000, "precision": "fp32",
                    "backend": "pytorch", "data": "mnist5k"}
    assert trained["measurement"]["size_bytes"]["model_file"] == out.stat().st_size
    assert evaluated["top1"] > 80
    assert json.loads(run("profile", str(out), "--json").stdout)["params"] == 61_706
    again = json.loads(run("eval", "lenet5", "--weights", str(out), "--data", "mnist5k", "--json").stdout)
    assert {k: v for k, v in again.items() if k != "measurement"} == {k: v for k, v in evaluated.items()
                                                                        if k != "measurement"}


def test_weights_of_another_zoo_model_are_refused(tmp_path):
    path = trimkit.save(models.create("lenet5"), tmp_path / "l.pt")
    result = run("eval", "vgg_c", "--weights", str(path))
    assert result.exit_code == 2 and "holds a lenet5 model, not vgg_c" in result.stderr


def test_demo_prunes_then_deploys_what_measures_fastest(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--epochs", "2", "--finetune-epochs", "1", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    stages = [r["stage"] for r in record["records"]]
    assert stages == ["input", "train", "prune", "finetune", "export", "deploy", "final"]
    trained, pruned, deployed = (record["records"][i]["measurement"] for i in (1, 3, 5))
    assert trained["params"] == 238_042 and trained["macs"] == 8_444_480
    assert pruned["macs"] < trained["macs"] / 3 and pruned["params"] < trained["params"]
    found = record["records"][5]["details"]["deployment"]
    assert found["batch_size"] == 32 and found["metric"]["name"] == "top1"
    labels = {row["label"] for row in found["candidates"]}
    assert {"onnxruntime fp32, 2 threads", "onnxruntime int8 qdq-u8s8, 2 threads", "openvino fp32, 2 threads",
            "openvino int8 nncf, 2 threads"} <= labels
    chosen, base, reference = found["chosen"], found["baseline"], found["onnxruntime_fp32"]
    assert chosen["drop"] <= 0.5 and chosen["p50_ms"] <= reference["p50_ms"]  # ONNX Runtime fp32 is a candidate
    assert base["label"] == "trained" and base["metric"] > 80
    assert base["speedup"] == pytest.approx(base["p50_ms"] / chosen["p50_ms"])
    assert deployed["latency"][0]["latency_ms"] == chosen["p50_ms"]
    layers = record["records"][2]["details"]["layers"]
    assert all(change["kept"] % 8 == 0 for name, change in layers.items() if name.startswith("features"))
    for name in ("recipe.yaml", "log.jsonl", "model.pt", "model.onnx", "original.pt", "report.html",
                 "stages/00-train/model.pt", "stages/04-deploy/deployment/manifest.json"):
        assert (out / name).exists(), name
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    refused = run("demo", "--out", str(tmp_path / "mine"))
    assert refused.exit_code == 2 and "not an earlier demo run" in refused.stderr


def test_the_demo_replaces_an_earlier_demo_run_and_nothing_else(tmp_path):
    from trimkit.cli._demo import _clear_previous_demo

    earlier = tmp_path / "demo"
    (earlier / "stages").mkdir(parents=True)
    for name in ("recipe.yaml", "log.jsonl"):
        (earlier / name).write_text("")
    _clear_previous_demo(earlier)
    assert not earlier.exists()
    (tmp_path / "empty").mkdir()
    _clear_previous_demo(tmp_path / "empty")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(TrimkitError, match="exists and is not an earlier demo run"):
        _clear_previous_demo(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_demo_says_where_the_speed_came_from_as_measured():
    from trimkit.cli._demo import where_the_speed_came_from
    from trimkit.record import Measurement
    from trimkit.runs import RunLog, StageRecord

    def deployment(base_ms, reference_ms, chosen_ms):
        chosen = {"label": "openvino int8 nncf, 2 threads", "precision": "int8", "precision_reported": "fp32",
                  "p50_ms": chosen_ms, "metric": 95.0}
        return {"deployment": {"batch_size": 32, "metric": {"name": "top1"}, "chosen": chosen,
                               "onnxruntime_fp32": {"p50_ms": reference_ms, "threads": 2},
                               "baseline": {"p50_ms": base_ms, "speedup": base_ms / chosen_ms, "metric": 95.7,
                                            "change": -0.7}}}

    log = RunLog()
    log.append(StageRecord("train", 0, 1.0, Measurement("trained", macs=400), {}))
    log.append(StageRecord("deploy", 4, 1.0, Measurement("x", macs=100), deployment(8.0, 2.0, 0.5)))
    pruning, chosen, in_all = where_the_speed_came_from(log)
    assert pruning == ("[bold]pruning[/] (4.0x fewer MACs): ONNX Runtime fp32, batch 32, 2 threads: 8.000 -> 2.000 "
                       "ms, 4.00x faster")
    assert chosen == ("[bold]deployment[/] chosen by measurement: openvino int8 nncf, 2 threads (computes in int8 + "
                      "fp32): 2.000 -> 0.500 ms, 4.00x faster than the pruned model on ONNX Runtime fp32")
    assert in_all.startswith("[bold]in all[/]: 16.00x faster than the starting point (the unpruned fp32 model on "
                             "ONNX Runtime; 4.00 x 4.00, all timed in one interleaved run); top-1 95.70 % -> 95.00 % "
                             "(-0.70 points)")
    slower = RunLog()
    slower.append(StageRecord("deploy", 4, 1.0, Measurement("x"), deployment(2.0, 2.5, 2.5)))
    pruning, chosen, in_all = where_the_speed_came_from(slower)
    assert pruning.endswith("2.000 -> 2.500 ms, 1.25x slower") and "1.25x slower than the starting point" in in_all
    assert "faster" not in pruning and "faster" not in in_all


@requires_shared_data("cifar10.npz", "pretrained/resnet20-12fca82f.th")
@pytest.mark.slow  # all 10,000 test images (12 s); the README test runs trimkit eval in the fast suite
def test_eval_of_pretrained_resnet20_on_the_cifar10_test_set(tmp_path):
    record = json.loads(run("eval", "resnet20", "--weights", str(PRETRAINED / "resnet20-12fca82f.th"), "--data",
                            "cifar10", "--data-dir", str(SHARED_DATA), "--json").stdout)
    assert record["n"] == 10_000
    assert 80.5 < record["top1"] < 81.5  # 81.0 on the JPEG copy, as SOURCES.md states


def test_prune_to_a_macs_budget_reports_it_and_meets_it(tmp_path):
    result = run("prune", "resnet20", "--macs", "20000000", "--out", str(tmp_path / "b.pt"), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    budget = record["budget"]
    assert budget["met"] and budget["unit"] == "MACs" and budget["budget"] == 20_000_000
    assert 18_000_000 <= record["macs_after"] == budget["measured"] <= 20_000_000
    assert "budget 20,000,000 MACs: met:" in result.stderr


def test_prune_json_has_the_documented_keys_and_saves_a_loadable_model(tmp_path):
    out = tmp_path / "p.pt"
    result = run("prune", "resnet20", "--ratio", "0.5", "--scope", "global", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert {"params_before", "params_after", "macs_before", "macs_after", "frozen", "layers"} <= set(record)
    assert record["macs_before"] == 40_551_040 and record["macs_after"] < record["macs_before"]
    assert record["frozen"] == []
    assert record["layers"]["linear"] == {"kept": 10, "removed": 0}
    loaded = trimkit.load(out)
    assert sum(p.numel() for p in loaded.parameters()) == record["params_after"]
    profiled = json.loads(run("profile", str(out), "--json").stdout)
    assert profiled["macs"] == record["macs_after"]


def test_prune_with_data_reports_accuracy_before_and_after(tmp_path):
    trained = tmp_path / "l.pt"
    run("train", "lenet5", "--data", "mnist5k", "--epochs", "2", "--batch-size", "32", "--out", str(trained))
    result = run("prune", str(trained), "--threshold", "0.5", "--criterion", "std", "--layers", "both",
                 "--mode", "static", "--data", "mnist5k", "--finetune-epochs", "1", "--out", str(tmp_path / "p.pt"),
                 "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["top1_before"] > 80 and 0 <= record["top1_after"] <= 100
    assert record["layers"]["features.0"] == {"kept": 3, "removed": 3}


@pytest.mark.parametrize("args, message", [
    (["prune", "lenet5", "--out", "x.pt"], "--ratio R, --threshold T, or a budget"),
    (["prune", "lenet5", "--ratio", "1.5", "--out", "x.pt"], "--ratio: 1.5 is not in [0, 1)"),
    (["prune", "lenet5", "--ratio", "nan", "--out", "x.pt"], "--ratio: nan is not in [0, 1)"),
    (["prune", "lenet5", "--threshold", "inf", "--out", "x.pt"], "--threshold: inf is not a threshold"),
    (["prune", "lenet5", "--threshold", "-1", "--out", "x.pt"], "--threshold: -1.0 is not a threshold"),
    (["prune", "lenet5", "--ratio", "0.5", "--mode", "fast", "--out", "x.pt"], "--mode: 'fast'"),
    (["prune", "lenet5", "--ratio", "0.5", "--round-to", "0", "--out", "x.pt"], "--round-to: 0"),
    (["prune", "lenet5", "--ratio", "0.5", "--data", "mnist5k", "--finetune-epochs", "1", "--lr", "nan",
      "--out", "x.pt"], "--lr: nan is not a learning rate"),
    (["prune", "lenet5", "--ratio", "half", "--out", "x.pt"], "cannot read --ratio 'half'"),
    (["prune", "lenet5", "--ratio", "0.5", "--criterion", "l7", "--out", "x.pt"], "unknown criterion 'l7'"),
    (["prune", "lenet5", "--ratio", "0.5", "--finetune-epochs", "2", "--out", "x.pt"], "needs --data"),
])
def test_prune_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_top_level_help_lists_every_command_without_importing_torch():
    import importlib
    import subprocess
    import sys

    from trimkit import cli

    for name, entry in cli.COMMANDS.items():
        callback = getattr(importlib.import_module(f"trimkit.cli.{entry.module}"), entry.function)
        first_paragraph = " ".join(callback.__doc__.split("\n\n")[0].split())
        assert entry.summary == first_paragraph, name
    probe = ("import sys, io, contextlib; sys.argv = ['trimkit', '--help']; import trimkit.cli as c; "
             "out = io.StringIO(); contextlib.redirect_stdout(out).__enter__(); c.main(); "
             "sys.stderr.write(str('torch' in sys.modules) + '|' + out.getvalue())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    loaded, _, text = done.stderr.partition("|")
    assert loaded == "False" and all(name in text for name in cli.COMMANDS)
    version = subprocess.run([sys.executable, "-m", "trimkit.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("trimkit ")
