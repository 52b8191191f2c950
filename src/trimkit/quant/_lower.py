"""Rewrite a QONNX graph with standard ONNX operators, so ONNX Runtime runs it.

QONNX's ``Quant(x, scale, zero_point, bits)`` means
``y = (clip(round(x / scale + zero_point), lo, hi) - zero_point) * scale`` and
``BipolarQuant(x, scale)`` means ``y = (x >= 0 ? +1 : -1) * scale``. Two rewrites:

- ``qcdq`` (formats of at most 8 bits): weights become int8/uint8 initialisers read by
  ``DequantizeLinear`` (the codes are computed here, so the file holds 8-bit weights);
  activations become ``QuantizeLinear -> Clip -> DequantizeLinear``, the Clip narrowing
  the 8-bit range to the format's. Binary activations have no such form and are refused.
- ``emulate`` (any format): weights are folded to their dequantised float values and
  activations computed with ``Div, Round, Clip, Mul`` (``Where`` for binary). This is
  the reference used to check a QONNX file against PyTorch as it is written, in one
  vectorised ONNX Runtime session and with trimkit's own dependencies; the ``qonnx``
  package's node-by-node executor checks the same file on the FPGA path
  (:func:`trimkit.quant.qonnx_parity`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trimkit.errors import TrimkitError

QONNX_DOMAIN = "qonnx.custom_op.general"
MAX_QCDQ_BITS = 8
ONNX_IR_VERSION = 9
_INT8_RANGES = {True: (-128, 127), False: (0, 255)}


def lower_qonnx(model: onnx.ModelProto, mode: str) -> onnx.ModelProto:
    """A copy of QONNX ``model`` in standard ONNX (``mode`` is ``qcdq`` or ``emulate``)."""
    if mode not in ("qcdq", "emulate"):
        raise ValueError(f"mode must be qcdq or emulate, got {mode!r}")
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    graph = lowered.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    constants.update({node.output[0]: numpy_helper.to_array(node.attribute[0].t) for node in graph.node
                      if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"})
    new_nodes, new_initializers = [], []
    for node in graph.node:
        if node.domain != QONNX_DOMAIN:
            new_nodes.append(node)
            continue
        nodes, initializers = _rewrite(node, constants, mode)
        new_nodes += nodes
        new_initializers += initializers
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_initializers)
    _drop_unused(graph)
    del lowered.opset_import[:]
    lowered.opset_import.extend([op for op in model.opset_import if op.domain != QONNX_DOMAIN])
    lowered.ir_version = min(model.ir_version, ONNX_IR_VERSION)
    return lowered


def _rewrite(node: onnx.NodeProto, constants: dict[str, np.ndarray], mode: str):
    if node.op_type == "BipolarQuant":
        source, scale = node.input[0], constants[node.input[1]].astype(np.float32)
        if source in constants:
            codes = np.where(constants[source] >= 0, 1, -1)
            return _weights(node, codes, scale, np.zeros_like(scale), mode, signed=True)
        if mode == "qcdq":
            raise TrimkitError("binary activations have no QCDQ form; export QONNX instead")
        return _binary_activation(node, scale)
    if node.op_type != "Quant":
        raise TrimkitError(f"unsupported QONNX operator {node.op_type} in {node.name}")
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("rounding_mode", b"ROUND") not in (b"ROUND", "ROUND"):
        raise TrimkitError(f"unsupported rounding mode {attributes['rounding_mode']!r} in {node.name}")
    source = node.input[0]
    scale = constants[node.input[1]].astype(np.float32)
    zero_point = constants[node.input[2]].astype(np.float32)
    bits = int(constants[node.input[3]])
    signed, narrow = bool(attributes.get("signed", 1)), bool(attributes.get("narrow", 0))
    low, high = _range(bits, signed, narrow)
    if mode == "qcdq" and bits > MAX_QCDQ_BITS:
        raise TrimkitError(f"QCDQ ONNX holds formats of at most {MAX_QCDQ_BITS} bits, {node.name} has {bits}; "
                           "export QONNX for wider formats")
    if source in constants:
        codes = np.clip(np.round(constants[source].astype(np.float32) / scale + zero_point), low, high)
        return _weights(node, codes - zero_point, scale, zero_point, mode, signed)
    if mode == "qcdq":
        return _qcdq_activation(node, scale, zero_point, low, high, signed)
    return _emulated_activation(node, scale, zero_point, low, high)


def _range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def _weights(node, centred_codes: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, mode: str, signed: bool):
    """Constant weights: int8 codes + DequantizeLinear (qcdq), or folded floats (emulate)."""
    name = node.output[0]
    if mode == "emulate" or np.any(zero_point != 0):
        values = (centred_codes * scale).astype(np.float32)
        return [], [numpy_helper.from_array(values, name)]
    per_axis = scale.size > 1
    flat_scale = scale.reshape(-1) if per_axis else scale.reshape(())
    dtype = np.int8 if signed else np.uint8
    initializers = [numpy_helper.from_array(centred_codes.astype(dtype), f"{name}_codes"),
                    numpy_helper.from_array(flat_scale.astype(np.float32), f"{name}_scale"),
                    numpy_helper.from_array(np.zeros(flat_scale.shape, dtype), f"{name}_zero_point")]
    options = {"axis": 0} if per_axis else {}
    dequantize = helper.make_node("DequantizeLinear", [f"{name}_codes", f"{name}_scale", f"{name}_zero_point"],
                                  [name], name=f"{node.name}_dq", **options)
    return [dequantize], initializers


def _qcdq_activation(node, scale, zero_point, low: int, high: int, signed: bool):
    name, dtype = node.output[0], np.int8 if signed else np.uint8
    initializers = [numpy_helper.from_array(scale.reshape(()), f"{name}_scale"),
                    numpy_helper.from_array(zero_point.reshape(()).astype(dtype), f"{name}_zero_point")]
    nodes = [helper.make_node("QuantizeLinear", [node.input[0], f"{name}_scale", f"{name}_zero_point"],
                              [f"{name}_q"], name=f"{node.name}_q")]
    quantized = f"{name}_q"
    if (low, high) != _INT8_RANGES[signed]:
        initializers += [numpy_helper.from_array(np.array(low, dtype), f"{name}_low"),
                         numpy_helper.from_array(np.array(high, dtype), f"{name}_high")]
        nodes.append(helper.make_node("Clip", [quantized, f"{name}_low", f"{name}_high"], [f"{name}_c"],
                                      name=f"{node.name}_clip"))
        quantized = f"{name}_c"
    nodes.append(helper.make_node("DequantizeLinear", [quantized, f"{name}_scale", f"{name}_zero_point"], [name],
                                  name=f"{node.name}_dq"))
    return nodes, initializers


def _emulated_activation(node, scale, zero_point, low: int, high: int):
    name = node.output[0]
    constants = {"scale": scale.reshape(()), "zero_point": zero_point.reshape(()),
                 "low": np.array(low, np.float32), "high": np.array(high, np.float32)}
    initializers = [numpy_helper.from_array(value.astype(np.float32), f"{name}_{key}")
                    for key, value in constants.items()]
    steps = [("Div", [node.input[0], f"{name}_scale"]), ("Add", [None, f"{name}_zero_point"]), ("Round", [None]),
             ("Clip", [None, f"{name}_low", f"{name}_high"]), ("Sub", [None, f"{name}_zero_point"]),
             ("Mul", [None, f"{name}_scale"])]
    nodes, previous = [], None
    for index, (op, inputs) in enumerate(steps):
        output = name if index == len(steps) - 1 else f"{name}_{op.lower()}"
        nodes.append(helper.make_node(op, [previous if i is None else i for i in inputs], [output],
                                      name=f"{node.name}_{op.lower()}"))
        previous = output
    return nodes, initializers


def _binary_activation(node, scale):
    name = node.output[0]
    initializers = [numpy_helper.from_array(np.array(0, np.float32), f"{name}_zero"),
                    numpy_helper.from_array(scale.reshape(()), f"{name}_plus"),
                    numpy_helper.from_array(-scale.reshape(()), f"{name}_minus")]
    nodes = [helper.make_node("GreaterOrEqual", [node.input[0], f"{name}_zero"], [f"{name}_sign"]),
             helper.make_node("Where", [f"{name}_sign", f"{name}_plus", f"{name}_minus"], [name])]
    return nodes, initializers


def _drop_unused(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    initializer_names = {init.name for init in kept}
    inputs = [value for value in graph.input if value.name not in initializer_names and value.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
