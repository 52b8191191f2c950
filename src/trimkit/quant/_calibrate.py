"""Set the activation scales of a converted model from data.

Each quantised layer input gets, as the top of its range, the mean over batches of a
high percentile of its values (of |x| where signed): 99.99 % for formats of 8 bits
or fewer, where clipping a few outliers buys resolution for the rest, and the maximum
for wider formats. Statistics are taken with activation quantisation off, in one pass.
QAT then trains these scales with the weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from trimkit._running import eval_mode
from trimkit.quant._convert import input_scale_parameter, plan_of, quant_layers

HIGH_PERCENTILE = 0.9999
_MAX_ELEMENTS = 1 << 22  # torch.quantile's input limit is 2^24; a strided sample is plenty


def calibrate(model: nn.Module, batches: Iterable[torch.Tensor | tuple[torch.Tensor, ...]]) -> int:
    """Set every calibratable activation scale of ``model`` from ``batches`` of inputs;
    return the number of batches used. The model's mode is restored."""
    quant_plan = plan_of(model)
    targets = {name: (layer, input_scale_parameter(layer)) for name, layer in quant_layers(model).items()}
    targets = {name: pair for name, pair in targets.items() if pair[1] is not None}
    if not targets:
        return 0
    sums = dict.fromkeys(targets, 0.0)
    handles = [layer.register_forward_pre_hook(_collector(name, quant_plan.layer(name), sums))
               for name, (layer, _) in targets.items()]
    count = 0
    try:
        for layer, _ in targets.values():
            layer.input_quant.disable_quant = True
        with eval_mode(model), torch.no_grad():
            for batch in batches:
                model(*batch) if isinstance(batch, tuple) else model(batch)
                count += 1
    finally:
        for handle in handles:
            handle.remove()
        for layer, _ in targets.values():
            layer.input_quant.disable_quant = False
    if count:
        with torch.no_grad():
            for name, (_, parameter) in targets.items():
                parameter.value.fill_(max(sums[name] / count, 1e-8))
    return count


def _collector(name: str, layer_plan, sums: dict[str, float]):
    percentile = HIGH_PERCENTILE if layer_plan.act.bits <= 8 else 1.0

    def hook(_module: nn.Module, args: tuple) -> None:
        values = args[0].detach().float().flatten()
        values = values.abs() if layer_plan.act_signed else values.clamp(min=0)
        if percentile >= 1.0:
            sums[name] += float(values.max())
            return
        if values.numel() > _MAX_ELEMENTS:
            values = values[:: -(-values.numel() // _MAX_ELEMENTS)]
        sums[name] += float(torch.quantile(values, percentile))

    return hook
