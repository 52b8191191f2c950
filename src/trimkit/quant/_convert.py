"""Convert a float model to a fake-quantised one by module replacement.

Each weight layer named in a :class:`QuantPlan` is replaced by its Brevitas
counterpart (``QuantConv1d``, ``QuantConv2d``, ``QuantLinear``) carrying a weight
quantiser and an input quantiser, with the float weights copied over. Nothing is
traced: the model's own ``forward`` keeps running, so functional activations, padding
shortcuts and several inputs all work. A module used at several places (shared
weights) is replaced at every place by one quantised module.

Activations are quantised where a weight layer reads them (Brevitas' ``input_quant``),
not by swapping activation modules: models often apply their activations functionally
(the zoo's ResNets call ``F.relu``), and swapping ``nn.ReLU`` modules would leave those
in float. Quantising every weight layer's input covers them all, which is also where
an integer accelerator needs its operands quantised.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import brevitas.nn as qnn
import torch
from brevitas.core.scaling import ParameterScaling
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.quant import _section
from trimkit.quant._plan import LayerPlan, QuantPlan
from trimkit.quant._quantizers import act_quantizer, weight_quantizer

QUANT_LAYERS = (qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantLinear)
QUANT_PLAN_ATTRIBUTE = _section.PLAN_ATTRIBUTE  # the plan a converted model carries; see plan_of


def quantize_model(model: nn.Module, quant_plan: QuantPlan, *, fixed_scales: bool = False) -> nn.Module:
    """A copy of ``model`` with the plan's layers replaced by quantised ones.

    ``fixed_scales=True`` gives every weight quantiser a stored scale instead of one
    computed from the weights (used to load packed models bit-exactly).
    """
    if plan_of(model) is not None:
        raise ValueError("model is already quantised; convert the float model")
    converted = copy.deepcopy(model)
    modules = dict(converted.named_modules())
    for layer in quant_plan.layers:
        if layer.quantized:
            original = modules[layer.name]
            _replace_everywhere(converted, original, _quantized_layer(original, layer, fixed_scales))
    _initialise_learned_scales(converted)
    setattr(converted, QUANT_PLAN_ATTRIBUTE, quant_plan)
    return converted


def apply_plan(model: nn.Module, quant_plan: QuantPlan | Mapping[str, Any]) -> nn.Module:
    """Rebuild a quantised model's architecture from its recorded plan (a
    :class:`QuantPlan` or its ``to_dict()``), as ``trimkit.load`` does; weights and
    scales come from the state dict loaded next."""
    if not isinstance(quant_plan, QuantPlan):
        quant_plan = QuantPlan.from_dict(quant_plan)
    existing = plan_of(model)
    if existing is not None:
        if existing != quant_plan:
            raise TrimkitError("the model passed is quantised with another plan than the file's; pass a float model")
        return model
    return quantize_model(model, quant_plan)


def plan_of(model: nn.Module) -> QuantPlan | None:
    """The plan a model was quantised with, or None for a float model."""
    return getattr(model, QUANT_PLAN_ATTRIBUTE, None)


def quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The quantised weight layers of ``model`` by name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, QUANT_LAYERS)}


def input_scale_parameter(layer: nn.Module) -> ParameterScaling | None:
    """The learned scale of a quantised layer's integer input, or None."""
    if not layer.input_quant.is_quant_enabled:
        return None
    return next((m for m in layer.input_quant.modules() if isinstance(m, ParameterScaling)), None)


def _quantized_layer(module: nn.Module, layer: LayerPlan, fixed_scales: bool) -> nn.Module:
    common: dict[str, Any] = {
        "weight_quant": weight_quantizer(layer.weight, fixed_scale=fixed_scales),
        "input_quant": act_quantizer(layer.act, layer.act_signed),
        "bias": module.bias is not None,
        "device": module.weight.device,
        "dtype": module.weight.dtype,
    }
    if isinstance(module, nn.Linear):
        quantized: nn.Module = qnn.QuantLinear(module.in_features, module.out_features, **common)
    else:
        layer_class = qnn.QuantConv2d if isinstance(module, nn.Conv2d) else qnn.QuantConv1d
        quantized = layer_class(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                                padding=module.padding, dilation=module.dilation, groups=module.groups,
                                padding_mode=module.padding_mode, **common)
    with torch.no_grad():
        quantized.weight.copy_(module.weight)
        if module.bias is not None:
            quantized.bias.copy_(module.bias)
    quantized.train(module.training)
    return quantized


def _replace_everywhere(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in root.modules():
        for attribute, child in list(parent._modules.items()):
            if child is old:
                setattr(parent, attribute, new)


def _initialise_learned_scales(model: nn.Module) -> None:
    """A learned weight scale starts from the weights' statistics on its first use;
    use it now, so the state dict holds the scale before any training step."""
    with torch.no_grad():
        for layer in quant_layers(model).values():
            if layer.weight_quant.is_quant_enabled:
                layer.quant_weight()
