"""One layer as a small ONNX model, built directly (no export): a convolution or dense
layer with its bias and a ReLU, which runtimes fuse into it, at given channel counts."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trimkit.measure._units import UnitShape

OPSET = 17


def unit_onnx(unit: UnitShape, in_count: int, out_count: int, seed: int = 0) -> onnx.ModelProto:
    """``unit`` with ``in_count`` input and ``out_count`` output channels (a depthwise
    convolution takes ``out_count`` for both), on a dynamic batch."""
    generator = np.random.default_rng(seed)
    if unit.kind == "dense":
        weight = generator.standard_normal((out_count, in_count)).astype(np.float32)
        input_shape = ["batch", in_count]
        layer = helper.make_node("Gemm", ["input", "weight", "bias"], ["pre"], transB=1)
    else:
        if unit.depthwise:
            in_count = out_count
        per_group = 1 if unit.depthwise else in_count
        weight = generator.standard_normal((out_count, per_group, *unit.kernel)).astype(np.float32)
        input_shape = ["batch", in_count, *unit.spatial]
        layer = helper.make_node("Conv", ["input", "weight", "bias"], ["pre"], kernel_shape=list(unit.kernel),
                                 strides=list(unit.stride), pads=[*unit.padding, *unit.padding],
                                 dilations=list(unit.dilation), group=out_count if unit.depthwise else 1)
    bias = generator.standard_normal(out_count).astype(np.float32)
    graph = helper.make_graph(
        [layer, helper.make_node("Relu", ["pre"], ["output"])], "unit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model
