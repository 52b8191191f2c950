"""Latency on the real backends: what is recorded, precision, per-layer names, errors.

Timings are short and asserted only for consistency, never against targets (those are
in benchmarks/)."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

import trimkit
from trimkit import data, export, measure, models, train
from trimkit.errors import TrimkitError
from trimkit.measure._backend import NodeTime
from trimkit.measure._layers import REORDERS_ROW, LayerNames, aggregate_layers, module_path

QUICK = dict(warmup=2, min_time_s=0.05, min_iters=5, threads=1)
STATS_KEYS = {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "cv", "throughput", "iterations"}


@pytest.fixture(scope="module")
def resnet20_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "resnet20.onnx"
    model = models.create("resnet20")
    export.onnx(model, torch.randn(2, 3, 32, 32), path)
    return model, path


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
def test_every_backend_reports_consistent_statistics_and_its_setting(backend):
    result = measure.latency(models.create("lenet5"), backend=backend, batch_size=3, **QUICK)
    record = result.to_dict()
    assert STATS_KEYS | {"backend", "threads", "batch_size", "env", "per_layer", "precision"} <= set(record)
    assert (result.backend, result.batch_size, result.threads, result.model) == (backend, 3, 1, "lenet5")
    assert result.iterations >= 5
    assert result.min_ms <= result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.throughput == pytest.approx(3 / (result.mean_ms / 1e3))
    assert result.env["threads"] == 1 and set(result.env["isa"]) >= {"avx2", "avx512", "avx512_vnni", "amx"}
    assert result.env["versions"]["torch"] == torch.__version__
    assert 0 <= result.env["busy_cpus_at_start"] <= os.cpu_count()


def test_openvino_reports_the_precision_it_really_computes_in():
    """OpenVINO's CPU plugin computes an f32 model in bf16 wherever the CPU has native bf16
    (AVX512-BF16 or AMX) unless told otherwise; the record must say so, layer by layer."""
    model = models.create("resnet20")
    native = train.cpu_has_native_bf16()
    chosen = measure.latency(model, backend="openvino", **QUICK)
    assert chosen.precision_requested == "auto"
    assert chosen.precision == ("bf16" if native else "fp32")
    assert set(chosen.compute_precisions) == {chosen.precision}
    assert sum(chosen.compute_precisions.values()) == 20  # 19 convolutions and the classifier
    forced = measure.latency(model, backend="openvino", precision="f32", **QUICK)
    assert forced.precision == "fp32" and forced.compute_precisions == {"fp32": 20}


def test_onnxruntime_and_torch_state_their_precision():
    model = models.create("lenet5")
    assert measure.latency(model, **QUICK).precision == "fp32"
    assert measure.latency(model, backend="torch", precision="bf16", **QUICK).precision == "bf16"
    with pytest.raises(TrimkitError, match="computes in fp32 only"):
        measure.latency(model, precision="bf16", **QUICK)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_per_layer_times_map_to_the_model_layers_and_add_up(backend, resnet20_onnx):
    model, path = resnet20_onnx
    result = measure.latency(path, backend=backend, per_layer=True, **QUICK)
    names = {row.name for row in result.per_layer}
    convolutions = {name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)}
    assert convolutions <= names, f"unmapped: {sorted(convolutions - names)}"
    assert sum(row.percent for row in result.per_layer) == pytest.approx(100)
    assert result.per_layer_total_ms == pytest.approx(sum(row.ms for row in result.per_layer))
    assert [row.ms for row in result.per_layer] == sorted((row.ms for row in result.per_layer), reverse=True)
    # measured in a separate, profiled session: close to end to end, not equal
    assert 0.25 < result.per_layer_total_ms / result.p50_ms < 4


def test_module_paths_of_exported_node_names():
    assert module_path("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert module_path("/features/features.0/Conv") == "features.0"
    assert module_path("/layer2/layer2.0/shortcut/Pad") == "layer2.0.shortcut"
    assert module_path("/Flatten") == "Flatten"
    assert module_path("node_Conv_375") == "node_Conv_375"


def test_runtime_node_names_are_traced_back_through_fusions(resnet20_onnx):
    _, path = resnet20_onnx
    names = LayerNames.from_file(path)
    # ONNX Runtime NCHWc: a Conv+BN+ReLU named after the ReLU's output tensor
    assert names.layer_of("/layer1/layer1.0/Relu_output_0_nchwc", "Conv") == "layer1.0.conv1"
    # ... a Conv+Add+ReLU named after the block's last ReLU
    assert names.layer_of("/layer1/layer1.0/Relu_1_output_0_nchwc", "Conv") == "layer1.0.conv2"
    assert names.layer_of("/layer1/layer1.0/Relu_1", "Relu") == "layer1.0"
    assert names.layer_of("fused /linear/Gemm", "FusedGemm") == "linear"
    # OpenVINO: the node name with a suffix
    assert names.layer_of("/layer3/layer3.2/conv2/Conv/WithoutBiases", "Convolution") == "layer3.2.conv2"
    assert names.layer_of("ReorderOutput_token_7", "ReorderOutput") == REORDERS_ROW
    assert names.layer_of("something_else", "Conv") == "something_else"


def test_node_times_are_summed_per_layer_with_shares():
    rows = aggregate_layers([NodeTime("a", "Conv", 3.0), NodeTime("b", "ReorderInput", 0.5),
                             NodeTime("c", "ReorderOutput", 0.5), NodeTime("d", "Relu", 1.0)], names=None)
    assert [(row.name, row.ms, row.percent) for row in rows] == [("a", 3.0, 60.0), ("d", 1.0, 20.0),
                                                                 ("b", 0.5, 10.0), ("c", 0.5, 10.0)]


def test_accuracy_is_computed_by_the_runtime(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet5")
    val = data.load("mnist5k", "val", normalization=models.origin(model).normalization()).subset(300)
    reference = train.evaluate(model, val, precision="fp32")
    # 300 images in batches of 64: the last batch is padded and cut back
    on_ort = measure.runtime_accuracy(model, val, backend="onnxruntime", batch_size=64, threads=1)
    assert on_ort["n"] == 300 and on_ort["precision"] == "fp32"
    assert on_ort["top1"] == reference["top1"] and on_ort["loss"] == pytest.approx(reference["loss"], rel=1e-4)
    on_openvino = measure.runtime_accuracy(model, val, backend="openvino", batch_size=64, threads=1)
    assert on_openvino["precision"] == ("bf16" if train.cpu_has_native_bf16() else "fp32")
    assert on_openvino["top1"] == pytest.approx(reference["top1"], abs=2.0)


def test_compare_measures_each_model_and_gives_ratios_to_the_first(tmp_path):
    small, large = models.create("lenet5"), models.create("vgg_c")
    saved = trimkit.save(large, tmp_path / "vgg_c.pt")
    result = measure.compare([small, saved], backend="onnxruntime", threads=1, warmup=2, min_time_s=0.05)
    first, second = result.models
    assert (first.label, second.label) == ("lenet5", "vgg_c.pt")
    assert first.params == 61_706 and first.macs == 416_520
    ratios = result.ratios(second)
    assert ratios["params"] == pytest.approx(second.params / first.params)
    assert ratios["macs"] == pytest.approx(second.macs / first.macs)
    assert ratios["size_bytes"] == pytest.approx(second.size_bytes / first.size_bytes)
    assert ratios["p50_ms"] == pytest.approx(second.latency.p50_ms / first.latency.p50_ms)
    assert result.ratios(first) == dict.fromkeys(ratios, 1.0)
    assert result.to_dict()["baseline"] == "lenet5"


@pytest.mark.parametrize("call, message", [
    (lambda: measure.latency(models.create("lenet5"), backend="tensorrt"),
     "unknown backend 'tensorrt'; backends: onnxruntime, openvino, torch"),
    (lambda: measure.latency(models.create("lenet5"), precision="int8"),
     "unknown precision 'int8'; choose one of: auto, fp32, bf16"),
    (lambda: measure.latency("/nonexistent/model.onnx"), "model file /nonexistent/model.onnx does not exist"),
    (lambda: measure.latency(nn.Linear(3, 2)), "pass input_shapes="),
    (lambda: measure.latency(models.create("lenet5"), batch_size=0), "batch size must be at least 1"),
    (lambda: measure.latency(models.create("lenet5"), threads=0),
     "threads: 0: input should be greater than or equal to 1"),
    (lambda: measure.latency(models.create("lenet5"), backend="torch", per_layer=True), "no per-layer profiler"),
])
def test_bad_requests_get_one_clear_error(call, message):
    with pytest.raises(TrimkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_onnx_files_need_an_onnx_backend_and_their_own_batch(tmp_path):
    path = tmp_path / "fixed.onnx"
    export.onnx(models.create("lenet5"), torch.randn(2, 1, 28, 28), path, dynamic_batch=False)
    with pytest.raises(TrimkitError, match="exported for batch 2 only"):
        measure.latency(path, batch_size=1, **QUICK)
    assert measure.latency(path, batch_size=2, **QUICK).batch_size == 2
    with pytest.raises(TrimkitError, match="the torch backend runs PyTorch models"):
        measure.latency(path, backend="torch", batch_size=2, **QUICK)


def test_a_model_outside_the_zoo_is_timed_with_its_input_shapes():
    result = measure.latency(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), input_shapes=[(3, 4)], **QUICK)
    assert result.model == "Sequential" and result.iterations >= 5


def test_torch_backend_restores_threads_and_mode():
    model = models.create("lenet5").train()
    before = torch.get_num_threads()
    measure.latency(model, backend="torch", **QUICK)
    assert torch.get_num_threads() == before and model.training
