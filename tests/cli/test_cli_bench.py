from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import trimkit
from trimkit import models
from trimkit.cli import app

runner = CliRunner()
QUICK = ["--threads", "1", "--warmup", "2", "--min-time", "0.05"]


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_export_json_has_the_documented_keys(tmp_path):
    out = tmp_path / "lenet.onnx"
    result = run("export", "lenet5", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert {"path", "size_bytes", "max_abs_err", "max_rel_err", "opset"} <= set(record)
    assert record["path"] == str(out) and record["size_bytes"] == out.stat().st_size
    assert record["max_rel_err"] <= 1e-4 and record["opset"] == 20


def test_bench_of_a_saved_model_json_has_the_documented_keys(tmp_path):
    path = trimkit.save(models.create("lenet5"), tmp_path / "lenet.pt")
    result = run("bench", str(path), "--backend", "onnxruntime", "--batch-size", "2", "--per-layer", "--json", *QUICK)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "throughput", "iterations", "backend", "threads",
            "batch_size", "env", "per_layer"} <= set(record)
    assert (record["backend"], record["threads"], record["batch_size"]) == ("onnxruntime", 1, 2)
    assert record["per_layer"] and all(set(row) >= {"name", "ms", "percent"} for row in record["per_layer"])
    assert {"features.0", "features.3", "classifier.5"} <= {row["name"] for row in record["per_layer"]}
    assert record["accuracy"] is None


def test_bench_of_an_exported_file_scores_top1_in_the_timed_precision(tmp_path):
    out = tmp_path / "lenet.onnx"
    run("export", "lenet5", "--out", str(out))
    result = run("bench", str(out), "--backend", "openvino", "--data", "mnist5k", "--json", *QUICK)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["accuracy"]["n"] == 1000 and record["accuracy"]["precision"] == record["precision"]


def test_bench_and_compare_print_tables(tmp_path):
    result = run("bench", "lenet5", "--backend", "torch", *QUICK)
    assert result.exit_code == 0 and "lenet5 on torch: batch 1, 1 thread," in result.stdout and "p50" in result.stdout
    path = trimkit.save(models.create("vgg_c"), tmp_path / "vgg_c.pt")
    result = run("compare", "lenet5", str(path), *QUICK)
    assert result.exit_code == 0, result.output
    assert "ratios against lenet5" in result.stdout
    assert any(line.split()[:1] == ["vgg_c"] for line in result.stdout.splitlines())


def test_compare_json_gives_ratios_to_the_first(tmp_path):
    path = trimkit.save(models.create("vgg_c"), tmp_path / "vgg_c.pt")
    record = json.loads(run("compare", "lenet5", str(path), "--json", *QUICK).stdout)
    first, second = record["models"]
    assert record["baseline"] == "lenet5" and first["ratios"]["p50_ms"] == 1.0
    assert second["ratios"]["params"] == pytest.approx(second["params"] / first["params"])
    assert second["latency"]["p50_ms"] > 0


@pytest.mark.parametrize("args, message", [
    (["bench", "lenet5", "--backend", "tensorrt"], "unknown backend 'tensorrt'; backends: onnxruntime, openvino"),
    (["bench", "/nonexistent.onnx"], "model file /nonexistent.onnx does not exist"),
    (["bench", "lenet5", "--precision", "int3"], "unknown precision 'int3'"),
    (["bench", "lenet5", "--precision", "bf16"], "computes in fp32 only"),
    (["bench", "lenet5", "--backend", "torch", "--per-layer"], "no per-layer profiler"),
    (["export", "lenet5", "--out", "x.onnx", "--opset", "5"], "opset 5 is not supported"),
    (["compare", "lenet5", "resnet99"], "unknown model 'resnet99'"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
