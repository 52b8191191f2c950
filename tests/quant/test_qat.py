from __future__ import annotations

import onnx
import pytest
import torch

import trimkit
from quant_models import TinyNet
from trimkit import TrimkitError, data, quant, train

NORMALIZATION = ((0.1307,), (0.3081,))


@pytest.fixture(scope="module")
def digits():
    train_set = data.load("mnist5k", "train", normalization=NORMALIZATION)
    val_set = data.load("mnist5k", "val", normalization=NORMALIZATION).subset(500)
    return train_set, val_set


@pytest.fixture(scope="module")
def binary_qat(digits):
    train_set, val_set = digits
    train.seed_everything(0)
    model = TinyNet()
    train.fit(model, train_set, epochs=3, batch_size=64, lr=0.1, precision="fp32", progress=False)
    result = quant.qat(model, "first=int8,hidden=binary,last=int8,act=int8", train_set.subset(1000), val_set,
                       epochs=1, batch_size=64, lr=0.05, precision="fp32", progress=False)
    return model, result


def test_qat_with_binary_hidden_layers_runs_on_a_custom_model(binary_qat, digits):
    _, result = binary_qat
    roles = {layer.name: (layer.role, str(layer.weight)) for layer in result.plan.layers}
    assert roles == {"conv1": ("first", "int8"), "conv2": ("hidden", "binary"), "head": ("last", "int8")}
    conv2 = result.model.conv2
    codes = conv2.quant_weight().value / conv2.quant_weight().scale
    assert set(torch.unique(codes).tolist()) == {-1.0, 1.0}
    assert len(result.fit.history) == 1 and result.calibration_batches == 8
    assert train.evaluate(result.model, digits[1])["top1"] > 50.0  # 10 classes: chance is 10 %


def test_qonnx_export_matches_pytorch(binary_qat, digits, tmp_path):
    _, result = binary_qat
    exported = quant.export_qonnx(result.model, tmp_path / "tiny.qonnx.onnx", digits[1].example_inputs(64))
    assert exported.parity.passed, exported.parity
    assert exported.parity.agreement == 100.0
    graph = onnx.load(str(exported.path))
    operators = [node.op_type for node in graph.graph.node]
    assert operators.count("BipolarQuant") == 1 and "Quant" in operators


def test_qcdq_export_runs_in_onnx_runtime_and_matches(binary_qat, digits, tmp_path):
    _, result = binary_qat
    exported = quant.export_qcdq(result.model, tmp_path / "tiny.qcdq.onnx", digits[1].example_inputs(64))
    assert exported.parity.passed, exported.parity
    graph = onnx.load(str(exported.path))
    operators = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= operators
    assert not any(node.domain for node in graph.graph.node)  # standard ONNX only
    codes = [init for init in graph.graph.initializer if init.name.endswith("_codes")]
    assert len(codes) == 3 and all(init.data_type == onnx.TensorProto.INT8 for init in codes)


def test_qcdq_refuses_formats_wider_than_8_bits(digits, tmp_path):
    quantized = quant.quantize(TinyNet(), "first=int16,hidden=int4,last=int8,act=int8", digits[0].subset(512))
    with pytest.raises(TrimkitError, match="at most 8 bits"):
        quant.export_qcdq(quantized, tmp_path / "wide.onnx", digits[1].example_inputs(8))
    assert quant.export_qonnx(quantized, tmp_path / "wide.qonnx.onnx", digits[1].example_inputs(64)).parity.passed


def test_a_qat_model_file_reloads_without_pickles(binary_qat, digits, tmp_path):
    _, result = binary_qat
    trimkit.save(result.model, tmp_path / "tiny.pt")
    assert trimkit.read_header(tmp_path / "tiny.pt")["quantization"]["policy"] == result.plan.policy
    reloaded = trimkit.load(tmp_path / "tiny.pt", model=TinyNet()).eval()
    images = digits[1].example_inputs(16)
    with torch.no_grad():
        assert torch.equal(reloaded(images), result.model.eval()(images))
    assert quant.plan_of(reloaded) == result.plan


def test_calibration_sets_activation_scales_from_data(digits):
    quantized = quant.quantize(TinyNet(), "int8", digits[0].subset(512))
    scale = quantized.conv1.input_quant.scale()
    images = digits[0].example_inputs(64)
    assert 0.5 * images.abs().max() / 127 < scale <= images.abs().max() / 127
