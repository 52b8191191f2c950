"""QONNX files load and run in the ``qonnx`` package as written, and match the
fake-quantised PyTorch (Brevitas) model under qonnx's own executor."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from trimkit import TrimkitError, data, models, quant

NORMALIZATION = ((0.1307,), (0.3081,))
INT4 = "first=int16,hidden=int4,last=int8,act=int8"
POLICIES = {
    "int8": ("int8", [8, 8, 8, 8, 8]),
    "int4_hidden": (INT4, [16, 4, 4, 4, 8]),
    "ternary_hidden": ("first=int16,hidden=ternary,last=int8,act=int8", [16, 2, 2, 2, 8]),
    "binary_hidden": ("first=int16,hidden=binary,last=int8,act=int32", [16, 1, 1, 1, 8]),
}


@pytest.fixture(scope="module")
def digits() -> data.ImageDataset:
    return data.load("mnist5k", "val", normalization=NORMALIZATION).subset(64)


def _weight_bits(graph: onnx.ModelProto) -> list[int]:
    """Bit width of each weight quantiser in graph order (BipolarQuant: 1 bit)."""
    constants = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    bits = []
    for node in graph.graph.node:
        if node.input[0] in constants and node.op_type == "Quant":
            bits.append(int(constants[node.input[3]]))
        elif node.input[0] in constants and node.op_type == "BipolarQuant":
            bits.append(1)
    return bits


@pytest.mark.parametrize("name", POLICIES)
def test_lenet5_qonnx_runs_in_qonnx_unmodified_and_matches_brevitas(name, digits, tmp_path):
    policy, expected_bits = POLICIES[name]
    model = quant.quantize(models.create("lenet5"), policy, digits)
    images = digits.example_inputs(6)
    path = tmp_path / "lenet5.qonnx.onnx"
    written = quant.export_qonnx(model, path, images)
    assert written.parity.passed, written.parity

    graph = onnx.load(str(path))
    assert [value.name for value in graph.graph.input] == ["input"]  # no initializer listed as an input
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 28, 28]
    assert _weight_bits(graph) == expected_bits

    wrapper = ModelWrapper(str(path))  # as written: no cleanup, no shape inference by hand
    assert wrapper.check_all_tensor_shapes_specified()
    with torch.no_grad():
        reference = model.eval()(images[:1]).numpy()
    outputs = execute_onnx(wrapper, {"input": images[:1].numpy()})
    np.testing.assert_allclose(outputs["output"], reference, rtol=1e-5, atol=1e-6)

    parity = quant.qonnx_parity(model, path, images)  # through qonnx's cleanup, every sample
    assert parity.passed and parity.samples == 6 and parity.agreement == 100.0
    assert parity.max_abs_diff < 1e-5


def test_qonnx_parity_catches_a_wrong_scale(digits, tmp_path):
    model = quant.quantize(models.create("lenet5"), INT4, digits)
    images = digits.example_inputs(4)
    path = tmp_path / "lenet5.qonnx.onnx"
    quant.export_qonnx(model, path, images)
    graph = onnx.load(str(path))
    weights = {init.name for init in graph.graph.initializer}
    hidden = [node for node in graph.graph.node if node.op_type == "Quant" and node.input[0] in weights][1]
    scale = next(init for init in graph.graph.initializer if init.name == hidden.input[1])
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * 4, scale.name))
    onnx.save(graph, str(path))
    parity = quant.qonnx_parity(model, path, images, cleanup=False)
    assert not parity.passed and parity.mean_relative_diff > 0.05


def test_static_batch_of_several_samples(digits, tmp_path):
    model = quant.quantize(models.create("lenet5"), "int8", digits)
    path = tmp_path / "lenet5.qonnx.onnx"
    written = quant.export_qonnx(model, path, digits.example_inputs(4), batch=2)
    assert written.parity.passed and written.parity.samples == 4
    assert ModelWrapper(str(path)).get_tensor_shape("input") == [2, 1, 28, 28]
    assert quant.qonnx_parity(model, path, digits.example_inputs(4), cleanup=False).passed
    with pytest.raises(TrimkitError, match="batch of 2; give a multiple of 2"):
        quant.qonnx_parity(model, path, digits.example_inputs(3))
    with pytest.raises(TrimkitError, match="QONNX batch must be at least 1"):
        quant.export_qonnx(model, tmp_path / "zero.qonnx.onnx", digits.example_inputs(4), batch=0)


def test_qcdq_export_keeps_a_dynamic_batch(digits, tmp_path):
    model = quant.quantize(models.create("lenet5"), "int8", digits)
    written = quant.export_qcdq(model, tmp_path / "lenet5.qcdq.onnx", digits.example_inputs(5))
    assert written.parity.passed and written.parity.samples == 5
    batch = onnx.load(str(written.path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch" and batch.dim_value == 0


def test_missing_qonnx_is_one_line_naming_the_extra(digits, tmp_path, monkeypatch):
    model = quant.quantize(models.create("lenet5"), "int8", digits)
    path = tmp_path / "lenet5.qonnx.onnx"
    quant.export_qonnx(model, path, digits.example_inputs(2), check=False)
    monkeypatch.setitem(sys.modules, "qonnx.core.modelwrapper", None)
    with pytest.raises(TrimkitError, match=r"needs the qonnx package .*pip install 'trimkit\[finn\]'"):
        quant.qonnx_parity(model, path, digits.example_inputs(2))


SIAMESE_POLICIES = {  # the seed's Table 2, rows 2-5
    "int16": ("first=int16,hidden=int16,last=int16,act=int32", [16, 16, 16, 16, 16]),
    "int4_hidden": ("first=int16,hidden=int4,last=int8,act=int32", [16, 4, 4, 4, 8]),
    "ternary_hidden": ("first=int16,hidden=ternary,last=int8,act=int32", [16, 2, 2, 2, 8]),
    "binary_hidden": ("first=int16,hidden=binary,last=int8,act=int32", [16, 1, 1, 1, 8]),
}


@pytest.fixture(scope="module")
def tracker_crops() -> tuple[torch.Tensor, torch.Tensor]:
    """Small exemplar and search crops (63 -> 1x1 features, 127 -> 17x17: the export does
    not depend on the crop size, and small crops keep the test fast)."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 63, 63, generator=generator), torch.randn(2, 3, 127, 127, generator=generator)


@pytest.mark.parametrize("name", SIAMESE_POLICIES)
def test_tracker_backbone_qonnx_runs_in_qonnx_and_matches(name, tracker_crops, tmp_path):
    """The seed's policies on its SiamFC variant: the shared backbone (what FINN would
    build) exports alone from the quantised tracker and matches it in qonnx."""
    policy, expected_bits = SIAMESE_POLICIES[name]
    tracker = quant.quantize(models.create("siamfc_seed", width=0.25), policy, example_inputs=tracker_crops)
    exemplar = tracker_crops[0]
    path = tmp_path / "backbone.qonnx.onnx"
    written = quant.export_qonnx(tracker.backbone, path, exemplar)
    assert written.parity.passed, written.parity
    graph = onnx.load(str(path))
    assert _weight_bits(graph) == expected_bits
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 63, 63]
    parity = quant.qonnx_parity(tracker.backbone, path, exemplar, cleanup=False)
    assert parity.passed and parity.max_abs_diff < 1e-5, parity


@pytest.mark.slow  # about 16 s: two branches through qonnx's node-by-node executor and its cleanup
def test_whole_tracker_qonnx_correlates_in_qonnx(tracker_crops, tmp_path):
    """Both branches and the correlation (a Conv whose weight is the exemplar's features)."""
    tracker = quant.quantize(models.create("siamfc_seed", width=0.25), SIAMESE_POLICIES["binary_hidden"][0],
                             example_inputs=tracker_crops)
    path = tmp_path / "siamfc.qonnx.onnx"
    written = quant.export_qonnx(tracker, path, tracker_crops)
    graph = onnx.load(str(path))
    assert [value.name for value in graph.graph.input] == ["input0", "input1"]
    weights = {init.name for init in graph.graph.initializer}
    quantised = {node.output[0] for node in graph.graph.node if node.input[0] in weights}
    convolutions = [node for node in graph.graph.node if node.op_type == "Conv"]
    assert len(convolutions) == 2 * 5 + 1  # the backbone's 5 on each branch, and the correlation
    assert sum(node.input[1] not in weights | quantised for node in convolutions) == 1  # the correlation
    parity = quant.qonnx_parity(tracker, path, tracker_crops, cleanup=True)
    assert written.parity.passed and parity.passed and parity.agreement == 100.0, parity
