"""`trimkit deploy` as a user runs it: a table of every candidate and a folder; and each
kind of bad input as one line, exit code 2, no folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import trimkit
from trimkit import deploy, export, models
from trimkit.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--samples", "100", "--calibration-samples", "32", "--min-time", "0.02", "--warmup", "2", "--threads", "1"]


def run(*args: str):
    return runner.invoke(app, ["deploy", *args])


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory) -> Path:
    return trimkit.save(models.create("lenet5"), tmp_path_factory.mktemp("deploy-cli") / "lenet5.pt")


def test_deploy_prints_every_candidate_and_writes_the_folder(lenet_file, tmp_path):
    out = tmp_path / "deployment"
    result = run(str(lenet_file), "--data", "mnist5k", "--out", str(out), "--batch-size", "4", "--precisions",
                 "fp32,int8", "--int8-recipes", "qdq-u8s8,nncf", *QUICK)
    assert result.exit_code == 0, result.output
    listed = ["onnxruntime fp32, 1 thread", "onnxruntime int8 qdq-u8s8, 1 thread", "openvino fp32, 1 thread",
              "openvino int8 qdq-u8s8, 1 thread", "openvino int8 nncf, 1 thread"]
    assert all(label in result.stdout for label in listed), result.stdout
    assert "5 candidates at batch 4, timed interleaved; top-1 % on 100 mnist5k val images" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    chosen = next(row for row in manifest["candidates"] if row["chosen"])
    computes = deploy.computes_in(chosen["precision"], chosen["precision_reported"])  # "int8 + fp32" for INT8
    assert f"chosen: {chosen['label']} (computes in {computes})" in result.stdout
    assert f"written: {out}/ (manifest.json, model." in result.stdout
    assert manifest["batch_size"] == 4 and len(manifest["candidates"]) == 5
    as_json = run(str(lenet_file), "--data", "mnist5k", "--out", str(out), "--backends", "onnxruntime",
                  "--precisions", "fp32", "--json", *QUICK)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["manifest"]["candidates"][0]["label"] == "onnxruntime fp32, 1 thread"


def _one_line_exit_2(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


@pytest.mark.parametrize("flags, message", [
    (["--backends", "tensorrt"], "--backends: unknown runtime 'tensorrt'; choose from onnxruntime, openvino"),
    (["--backends", "torch"], "torch is not a deployment runtime"),
    (["--precisions", "fp16"], "--precisions: 'fp16': input should be 'fp32', 'bf16' or 'int8'"),
    (["--int8-recipes", "magic"], "--int8-recipes: unknown INT8 recipe 'magic'"),
    (["--threads", "two"], "--threads 'two': give whole numbers separated by commas, e.g. 1,2"),
    (["--batch-size", "0"], "--batch-size: 0: input should be greater than or equal to 1"),
    (["--max-drop", "nan"], "--max-drop: nan is not a number of points"),
])
def test_bad_options_are_one_line_before_any_work(lenet_file, tmp_path, flags, message):
    out = tmp_path / "deployment"
    _one_line_exit_2(run(str(lenet_file), "--data", "mnist5k", "--out", str(out), *flags), message)
    assert not out.exists()


def test_a_runtime_that_is_not_installed_is_one_line(lenet_file, tmp_path, monkeypatch):
    monkeypatch.setattr("trimkit.deploy._candidates.installed_runtimes", lambda: ("onnxruntime",))
    out = tmp_path / "deployment"
    _one_line_exit_2(run(str(lenet_file), "--data", "mnist5k", "--out", str(out), "--backends", "openvino", *QUICK),
                     "runtime openvino is not installed here: pip install 'openvino', or leave it out of --backends")
    assert not out.exists()


def test_bf16_on_a_cpu_without_it_is_one_line(lenet_file, tmp_path, monkeypatch):
    monkeypatch.setattr("trimkit.deploy._choose.cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    out = tmp_path / "deployment"
    _one_line_exit_2(run(str(lenet_file), "--data", "mnist5k", "--out", str(out), "--precisions", "bf16", *QUICK),
                     "cannot compute in bf16 natively (it lacks avx512_bf16 and amx_bf16)")
    assert not out.exists()


def test_a_drop_no_candidate_meets_names_the_closest_and_writes_nothing(lenet_file, tmp_path):
    out = tmp_path / "deployment"
    result = run(str(lenet_file), "--data", "mnist5k", "--out", str(out), "--max-drop", "-50", "--backends",
                 "onnxruntime", "--precisions", "fp32", *QUICK)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()  # the progress notes on stderr, then the error in one line
    assert lines[-1].startswith("error: no candidate keeps top1 within -50 points of ONNX Runtime fp32 (")
    assert "closest: onnxruntime fp32, 1 thread at" in lines[-1]
    assert not any(line.startswith(("error", "Traceback")) for line in lines[:-1]), result.output
    assert list(tmp_path.iterdir()) == []


def test_a_model_without_validation_data_is_one_line(tmp_path):
    out = tmp_path / "deployment"
    factory = f"{ROOT / 'examples' / 'own-model' / 'mynet.py'}:MyNet"
    _one_line_exit_2(run(factory, "--out", str(out), *QUICK), "no data set given; pass --data NAME")
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(models.create("lenet5").eval(), torch.randn(1, 1, 28, 28), plain, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    _one_line_exit_2(run(str(plain), "--data", "mnist5k", "--out", str(out), *QUICK),
                     "does not record its input normalisation")
    assert not out.exists()


def test_an_out_folder_holding_other_files_is_refused(lenet_file, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    _one_line_exit_2(run(str(lenet_file), "--data", "mnist5k", "--out", str(tmp_path), *QUICK),
                     "holds files that are not a deployment; choose a new or empty folder")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_onnx_file_trimkit_exported_deploys(tmp_path):
    path = tmp_path / "lenet5.onnx"
    export.onnx(models.create("lenet5"), torch.randn(2, 1, 28, 28), path)
    out = tmp_path / "deployment"
    result = run(str(path), "--data", "mnist5k", "--out", str(out), "--backends", "onnxruntime", "--precisions",
                 "fp32", *QUICK)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["source"] == str(path)
