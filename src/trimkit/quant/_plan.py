"""Resolve a policy on a model: which format every weight layer and its input get.

The weight layers (``Conv1d``, ``Conv2d``, ``Linear``) are found by running the model
once on example inputs with hooks, so the order is the execution order whatever the
model's code looks like, and no tracing is needed.

- **first** layers are those that receive a model input unchanged (the same tensor
  object). With several inputs, a Siamese tracker say, each branch's first layer is
  "first"; a backbone shared by the branches counts once. When no layer takes an input
  unchanged (the model normalises or reshapes it first), the first layer to run is
  "first".
- **last** layers are those whose output the model returns unchanged (also inside a
  returned tuple, list or dict). When none does (a softmax or a cross-correlation
  follows), the last layer to run is "last".
- A layer that runs several times (shared weights) is placed at its first call.

Each layer's input is also checked for sign over the example inputs: an activation
format is unsigned where every input value seen was >= 0 (after a ReLU), so it keeps
all its bits for the magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trimkit import models
from trimkit._running import eval_mode, output_tensors
from trimkit.errors import TrimkitError
from trimkit.quant._formats import Format, WeightSpec, parse_format, parse_weight_spec
from trimkit.quant._policy import Policy, PolicyLike, check_patterns

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)
ExampleInputs = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


@dataclass(frozen=True)
class LayerPlan:
    """One weight layer: its role, weight format and input (activation) format."""

    name: str
    type: str
    role: str
    weight: WeightSpec
    act: Format
    act_signed: bool

    @property
    def quantized(self) -> bool:
        return self.weight.format.quantized or self.act.quantized

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "role": self.role, "weight": str(self.weight),
                "act": str(self.act), "act_signed": self.act_signed}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> LayerPlan:
        return cls(record["name"], record["type"], record["role"], parse_weight_spec(record["weight"]),
                   parse_format(record["act"]), bool(record["act_signed"]))


@dataclass(frozen=True)
class QuantPlan:
    """A policy resolved on one model: one :class:`LayerPlan` per weight layer, in execution order."""

    policy: str
    layers: tuple[LayerPlan, ...]

    def layer(self, name: str) -> LayerPlan:
        return next(layer for layer in self.layers if layer.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> QuantPlan:
        return cls(str(record["policy"]), tuple(LayerPlan.from_dict(layer) for layer in record["layers"]))


@dataclass
class _Seen:
    order: int
    module: nn.Module
    takes_model_input: bool = False
    returns_model_output: bool = False
    input_min: float = float("inf")
    outputs: list[torch.Tensor] = field(default_factory=list)


def plan(model: nn.Module, policy: PolicyLike, example_inputs: ExampleInputs, *, label: str | None = None) -> QuantPlan:
    """Resolve ``policy`` on ``model``: run it once on ``example_inputs`` (a batch of
    real data is best: it decides which activations are signed) and assign formats."""
    policy = Policy.parse(policy)
    seen = weight_layers_in_order(model, example_inputs)
    names = list(seen)
    origin = models.origin(model)
    check_patterns(policy, names, label or (origin.label if origin else type(model).__name__))
    first = {n for n, s in seen.items() if s.takes_model_input} or set(names[:1])
    last = {n for n, s in seen.items() if s.returns_model_output} or set(names[-1:])
    layers = []
    for name, info in seen.items():
        role = "first" if name in first else "last" if name in last else "hidden"
        act = policy.input_format if name in first else policy.act
        signed = info.input_min < 0 or act.kind in ("binary", "ternary")
        layers.append(LayerPlan(name, type(info.module).__name__, role, policy.weight_spec(name, role), act, signed))
    return QuantPlan(str(policy), tuple(layers))


def default_example_inputs(model: nn.Module, batch: int = 2) -> torch.Tensor:
    """Random inputs of a zoo model's shape (signed, like normalised images)."""
    origin = models.origin(model)
    shape = origin.input_shape() if origin is not None else None
    if shape is None:
        raise TrimkitError(f"the input shape of {type(model).__name__} is not recorded: pass example_inputs (a batch "
                           "of real inputs)")
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))


def weight_layers_in_order(model: nn.Module, example_inputs: ExampleInputs) -> dict[str, _Seen]:
    """Weight layers by name, in the order of their first call on ``example_inputs``."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    seen: dict[str, _Seen] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            handles.append(module.register_forward_pre_hook(_on_input(name, module, seen, inputs)))
            handles.append(module.register_forward_hook(_on_output(name, seen)))
    try:
        with eval_mode(model), torch.no_grad():
            outputs = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    returned = output_tensors(outputs)
    for info in seen.values():
        info.returns_model_output = any(output is tensor for output in returned for tensor in info.outputs)
    return seen


def _on_input(name: str, module: nn.Module, seen: dict[str, _Seen], inputs: tuple[torch.Tensor, ...]):
    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        info = seen.setdefault(name, _Seen(len(seen), module))
        tensor = args[0]
        info.takes_model_input |= any(tensor is given for given in inputs)
        info.input_min = min(info.input_min, float(tensor.detach().min()))

    return hook


def _on_output(name: str, seen: dict[str, _Seen]):
    def hook(_module: nn.Module, _args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen[name].outputs.append(output)

    return hook



