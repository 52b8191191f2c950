from __future__ import annotations

import json

import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import trimkit
from trimkit import TrimkitError, data, measure, models, quant, train
from trimkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    train.seed_everything(0)
    model = models.create("lenet5")
    normalization = models.origin(model).normalization()
    train_set = data.load("mnist5k", "train", normalization=normalization)
    val_set = data.load("mnist5k", "val", normalization=normalization)
    train.fit(model, train_set, epochs=4, batch_size=64, lr=0.05, precision="fp32", progress=False)
    path = trimkit.save(model, tmp_path_factory.mktemp("lenet") / "lenet5.pt")
    return model, train_set, val_set, path


def test_ptq_writes_a_runnable_int8_model_close_in_accuracy(lenet, tmp_path):
    model, train_set, val_set, _ = lenet
    result = quant.ptq_int8(model, train_set, out=tmp_path / "lenet5.int8.onnx")
    assert result.int8_format == "u8s8" and result.per_channel and result.calibration_images == 512
    graph = onnx.load(str(result.path))
    quantize_nodes = [node for node in graph.graph.node if node.op_type == "QuantizeLinear"]
    assert quantize_nodes
    zero_points = {init.name: init for init in graph.graph.initializer}
    assert zero_points[quantize_nodes[0].input[2]].data_type == onnx.TensorProto.UINT8  # u8 activations
    assert result.size_bytes < 0.4 * result.fp32_size_bytes
    assert "trimkit" in {entry.key for entry in graph.metadata_props}
    ort.InferenceSession(str(result.path))
    int8 = measure.runtime_accuracy(result.path, val_set)["top1"]
    fp32 = train.evaluate(model, val_set)["top1"]
    assert fp32 > 90.0
    assert abs(int8 - fp32) <= 1.0


def test_ptq_options_are_checked(lenet, tmp_path):
    model, train_set, _, _ = lenet
    with pytest.raises(TrimkitError, match="unknown calibration method 'mean'; choose one of: minmax, entropy"):
        quant.ptq_int8(model, train_set, out=tmp_path / "x.onnx", method="mean")
    with pytest.raises(TrimkitError, match="unknown INT8 format 'u8u8'"):
        quant.ptq_int8(model, train_set, out=tmp_path / "x.onnx", int8_format="u8u8")
    assert not (tmp_path / "x.onnx").exists()


def test_a_cpu_without_vnni_or_amx_gets_a_warning(monkeypatch):
    monkeypatch.setattr("trimkit.quant._ptq.cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert "no VNNI or AMX" in quant.cpu_int8_warning()
    monkeypatch.setattr("trimkit.quant._ptq.cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert quant.cpu_int8_warning() is None


def test_cli_ptq_json_then_eval_and_bench_accept_the_int8_file(lenet, tmp_path):
    _, _, _val_set, path = lenet
    out = tmp_path / "lenet5.int8.onnx"
    result = runner.invoke(app, ["quantize", str(path), "--mode", "ptq", "--data", "mnist5k", "--out", str(out),
                                 "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["policy"] == "int8" and record["mode"] == "ptq"
    assert abs(record["top1_after"] - record["top1_before"]) <= 1.0
    assert {"analytic_bytes", "packed_bytes", "onnx_bytes", "conv_param_bytes", "layers"} <= set(record["size"])
    assert record["size"]["onnx_bytes"] == out.stat().st_size
    evaluated = runner.invoke(app, ["eval", str(out), "--split", "val", "--json"], catch_exceptions=False)
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(record["top1_after"])
    bench = runner.invoke(app, ["bench", str(out), "--min-time", "0.05", "--warmup", "1", "--json"],
                          catch_exceptions=False)
    assert bench.exit_code == 0 and json.loads(bench.stdout)["p50_ms"] > 0


def test_cli_qat_writes_every_file_and_reports_sizes(lenet, tmp_path):
    _, _, _, path = lenet
    out = tmp_path / "lenet5.q.pt"
    result = runner.invoke(app, ["quantize", str(path), "--policy", "first=int8,hidden=ternary,last=int8,act=int8",
                                 "--data", "mnist5k", "--epochs", "1", "--precision", "fp32", "--out", str(out),
                                 "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    size = record["size"]
    assert size["packed_bytes"] == (tmp_path / "lenet5.q.tpk").stat().st_size
    assert size["onnx_bytes"] == (tmp_path / "lenet5.q.qcdq.onnx").stat().st_size
    assert size["analytic_bytes"] <= size["packed_bytes"] <= size["analytic_bytes"] + 1024
    assert record["exports"]["qonnx"]["parity"]["passed"] and record["exports"]["qcdq"]["parity"]["passed"]
    assert record["top1_after"] > 80.0
    reloaded = trimkit.load(out)
    assert quant.plan_of(reloaded).policy == "first=int8,hidden=ternary,last=int8,act=int8"


def test_cli_size_prints_exact_json(lenet):
    _, _, _, path = lenet
    policy = "first=int16,hidden=binary,last=int8,act=int32"
    record = json.loads(runner.invoke(app, ["size", str(path), "--policy", policy, "--json"]).stdout)
    expected = quant.size_report(trimkit.load(path), policy)
    assert record["analytic_bytes"] == expected.analytic_bytes and record["analytic_bits"] == expected.analytic_bits
    assert record["conv_param_bytes"] == expected.conv_param_bytes
    # features.0: 150 int16 weights + 6 scales + 6 biases + 1 input scale; features.3: 2400 binary + 16 + 16 + 1
    assert record["layers"][0]["analytic_bytes"] == 300 + 24 + 24 + 4
    assert record["layers"][1]["analytic_bytes"] == 300 + 64 + 64 + 4
    assert record["conv_param_bytes"] == (300 + 24 + 24) + (300 + 64 + 64)
    assert record["analytic_bytes"] <= record["packed_bytes"] <= record["analytic_bytes"] + 1024


@pytest.mark.parametrize("args, message", [
    (["quantize", "lenet5", "--mode", "ptq", "--policy", "int4", "--out", "x.onnx"], "PTQ makes INT8 models"),
    (["quantize", "lenet5", "--mode", "fast", "--out", "x.pt"], "--mode: 'fast': input should be 'qat' or 'ptq'"),
    (["quantize", "lenet5", "--out", "x.pt"], "QAT needs --policy"),
    (["quantize", "lenet5", "--policy", "hidden=int99", "--out", "x.pt"], "unknown format 'int99'"),
    (["size", "lenet5"], "give --policy"),
    (["size", "lenet5", "--policy", "frist=int8"], "bad policy key 'frist'"),
])
def test_cli_user_errors_are_one_line_with_exit_code_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
