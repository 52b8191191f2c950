"""Honest sizes: analytic bits per layer, and the memory of convolution parameters.

For each weight layer (exact, recomputable by hand):

- weights: count x bits of the weight format (32 for float32, n for intN, 2 for
  ternary, 1 for binary);
- weight scales: one 32-bit float per output channel (``channel``) or one per tensor
  (``tensor``, and the constant-scale kinds), none for float32 weights;
- zero points: ``zero_point_bits`` per scale (0 for trimkit's symmetric formats, which
  store none; 8 for ONNX Runtime's QDQ files, which store an int8 zero point per scale);
- bias: count x 32 bits (kept in float32);
- input scale: one 32-bit float when the layer's input has an integer format (binary
  and ternary activations have a constant scale and store none).

Every other parameter and buffer (batch norm, ...) counts at its own dtype, except
``num_batches_tracked``, which inference does not use. Bytes round each tensor up to
whole bytes, as a packed file stores it; bits are not rounded.

``conv_param_bytes`` is the seed's "memory of convolutional parameters": weights,
weight scales, zero points and biases of the convolutions only (no dense layers, no
batch norm, no activation scales).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from trimkit.quant._convert import plan_of
from trimkit.quant._formats import FLOAT32, WeightSpec
from trimkit.quant._plan import ExampleInputs, QuantPlan, default_example_inputs, plan
from trimkit.quant._policy import PolicyLike

SCALE_BITS = 32
FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerSize:
    name: str
    type: str
    role: str
    weight_format: str
    act_format: str
    weights: int
    weight_bits: int
    scales: int
    zero_points: int
    biases: int
    act_scales: int
    analytic_bits: int
    analytic_bytes: int


@dataclass
class SizeReport:
    """Analytic sizes per weight layer and in total; file sizes once files are written."""

    policy: str
    layers: list[LayerSize]
    other_bits: int
    other_bytes: int
    analytic_bits: int
    analytic_bytes: int
    conv_param_bytes: int
    float32_bytes: int
    float32_conv_param_bytes: int
    packed_bytes: int | None = None
    onnx_bytes: int | None = None
    files: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["layers"] = [asdict(layer) for layer in self.layers]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SizeReport:
        """The report :meth:`to_dict` wrote (a stage's log, a command's JSON)."""
        return cls(**{**data, "layers": [LayerSize(**row) for row in data["layers"]]})


def size_report(model: nn.Module, policy: PolicyLike | None = None, *, example_inputs: ExampleInputs | None = None,
                zero_point_bits: int = 0) -> SizeReport:
    """Sizes of ``model`` under ``policy`` (default: the plan a quantised model carries).

    A float model needs no training for this: the policy is resolved on
    ``example_inputs`` (default: random inputs of a zoo model's shape).
    """
    quant_plan = plan_of(model)
    if policy is not None or quant_plan is None:
        inputs = example_inputs if example_inputs is not None else default_example_inputs(model)
        quant_plan = plan(model, policy if policy is not None else "float32", inputs)
    report = _analytic(model, quant_plan, zero_point_bits)
    reference = _analytic(model, _float32_plan(quant_plan), 0)
    report.float32_bytes = reference.analytic_bytes
    report.float32_conv_param_bytes = reference.conv_param_bytes
    return report


def _float32_plan(quant_plan: QuantPlan) -> QuantPlan:
    layers = tuple(replace(layer, weight=WeightSpec(), act=FLOAT32) for layer in quant_plan.layers)
    return QuantPlan("float32", layers)


def _analytic(model: nn.Module, quant_plan: QuantPlan, zero_point_bits: int) -> SizeReport:
    modules = dict(model.named_modules())
    layers = [_layer_size(modules[layer.name], layer, zero_point_bits) for layer in quant_plan.layers]
    conv_bytes = sum(_layer_param_bytes(row, zero_point_bits) for row in layers if row.type.startswith("Conv"))
    other_bits, other_bytes = _other_sizes(model, [layer.name for layer in quant_plan.layers])
    return SizeReport(
        policy=quant_plan.policy, layers=layers, other_bits=other_bits, other_bytes=other_bytes,
        analytic_bits=sum(row.analytic_bits for row in layers) + other_bits,
        analytic_bytes=sum(row.analytic_bytes for row in layers) + other_bytes,
        conv_param_bytes=conv_bytes, float32_bytes=0, float32_conv_param_bytes=0,
    )


def _layer_size(module: nn.Module, layer, zero_point_bits: int) -> LayerSize:
    weight_format = layer.weight.format
    weights = module.weight.numel()
    scales = 0
    if weight_format.quantized:
        scales = module.weight.shape[0] if layer.weight.granularity == "channel" else 1
    zero_points = scales if zero_point_bits else 0
    biases = module.bias.numel() if module.bias is not None else 0
    act_scales = 1 if layer.act.kind == "int" else 0
    tensor_bits = [weights * weight_format.bits, scales * SCALE_BITS, zero_points * zero_point_bits,
                   biases * FLOAT_BITS, act_scales * SCALE_BITS]
    return LayerSize(
        name=layer.name, type=layer.type, role=layer.role, weight_format=str(layer.weight),
        act_format=str(layer.act), weights=weights, weight_bits=weight_format.bits, scales=scales,
        zero_points=zero_points, biases=biases, act_scales=act_scales, analytic_bits=sum(tensor_bits),
        analytic_bytes=sum(_bytes(bits) for bits in tensor_bits),
    )


def _layer_param_bytes(row: LayerSize, zero_point_bits: int) -> int:
    """The layer's parameters without its input scale."""
    return (_bytes(row.weights * row.weight_bits) + _bytes(row.scales * SCALE_BITS)
            + _bytes(row.zero_points * zero_point_bits) + _bytes(row.biases * FLOAT_BITS))


def _other_sizes(model: nn.Module, layer_names: list[str]) -> tuple[int, int]:
    bits = size = 0
    for tensor in other_tensors(model, layer_names).values():
        tensor_bits = tensor.numel() * tensor.element_size() * 8
        bits += tensor_bits
        size += _bytes(tensor_bits)
    return bits, size


def other_tensors(model: nn.Module, layer_names: list[str]) -> dict[str, torch.Tensor]:
    """Parameters and buffers outside the weight layers, each once, in state-dict order."""
    prefixes = tuple(f"{name}." for name in layer_names)
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    return {name: tensor for name, tensor in named.items()
            if not name.startswith(prefixes) and not name.endswith("num_batches_tracked")}


def _bytes(bits: int) -> int:
    return -(-bits // 8)
