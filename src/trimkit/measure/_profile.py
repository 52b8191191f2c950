"""Parameters, MACs and FLOPs per layer, by the Bonsai seed's formulas.

Convolution: MACs = k1 * k2 * (I / groups) * H * rh * rw; dense: MACs = I * H (per
output position when a dense layer sees extra dimensions); a transposed convolution
counts its input positions for rh * rw. FLOPs = 2 * MACs. Biases,
normalisation and activations are not counted, as in the seed. Convolutions and matrix
products called functionally (``F.conv2d`` in a Siamese head, say) are counted by
PyTorch's FlopCounterMode and reported as one row, ``(functional)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trimkit._inputs import ExampleInputs, as_input_tuple
from trimkit._running import eval_mode
from trimkit._threads import single_thread

WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
FUNCTIONAL_ROW = "(functional)"


@dataclass(frozen=True)
class LayerProfile:
    name: str
    type: str
    params: int
    macs: int
    flops: int
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    """Totals and per-layer figures for one image (MACs of a batch are divided by its size)."""

    params: int
    macs: int
    flops: int
    param_bytes: dict[str, int]
    buffer_bytes: int
    layers: list[LayerProfile] = field(default_factory=list)

    @property
    def total_param_bytes(self) -> int:
        return sum(self.param_bytes.values())

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["layers"] = [asdict(layer) for layer in self.layers]
        return record


def _macs_per_position(module: nn.Module) -> int:
    """MACs of a convolution or dense layer for one position (0 for other layers)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = int(torch.tensor(module.kernel_size).prod())
        return kernel * (module.in_channels // module.groups) * module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor, batch: int) -> int:
    """MACs of one call of a convolution or dense layer, per sample. A transposed
    convolution spreads each *input* position over a kernel-sized patch, so its
    positions are counted on the input side."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        positions = inputs[0].numel() // (batch * module.in_channels)
    elif isinstance(module, nn.modules.conv._ConvNd):
        positions = output.numel() // (batch * module.out_channels)
    elif isinstance(module, nn.Linear):
        positions = output.numel() // (batch * module.out_features)
    else:
        return 0
    return _macs_per_position(module) * positions


def macs_after_channel_edits(model: nn.Module, before: Profile, original: nn.Module) -> int | None:
    """MACs of ``model``, a copy of ``original`` (profiled as ``before``) whose layers
    changed only their channel counts, without running it: channel pruning keeps every
    layer's output positions, so each layer's MACs scale with its new channel product.
    None when ``before`` has functional MACs, which only a run can count again."""
    total = 0
    for row in before.layers:
        if row.name == FUNCTIONAL_ROW:
            return None
        if not row.macs:
            continue
        was = _macs_per_position(original.get_submodule(row.name))
        total += row.macs // was * _macs_per_position(model.get_submodule(row.name))
    return total


def profile(model: nn.Module, example_inputs: ExampleInputs) -> Profile:
    """Profile ``model`` on ``example_inputs`` (a tensor or a tuple for multi-input models).

    The model runs once in eval mode under ``torch.inference_mode``, on one thread
    (counting needs no speed); its mode is restored.
    """
    inputs = as_input_tuple(example_inputs)
    batch = int(inputs[0].shape[0])
    macs: dict[str, int] = defaultdict(int)
    shapes: dict[str, tuple[int, ...]] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        name = names[module]
        if isinstance(output, torch.Tensor):
            macs[name] += layer_macs(module, inputs, output, batch)
            shapes[name] = tuple(output.shape[1:])

    # weight layers count even where they have children (a quantised layer holds its quantisers)
    leaves = [m for m in model.modules() if not list(m.children()) or isinstance(m, WEIGHT_LAYERS)]
    handles = [m.register_forward_hook(record) for m in leaves]
    counter: FlopCounterMode | None = FlopCounterMode(display=False)
    try:
        try:
            with eval_mode(model), torch.inference_mode(), counter, single_thread():
                model(*inputs)
        except (AttributeError, RuntimeError):
            # FlopCounterMode's module tracker fails inside some libraries' modules (Brevitas'
            # quantisers): count the module layers alone then, without functional ones
            macs.clear()
            counter = None
            with eval_mode(model), torch.inference_mode(), single_thread():
                model(*inputs)
    finally:
        for handle in handles:
            handle.remove()

    rows = []
    leaf_set = set(leaves)
    for name, module in model.named_modules():
        if module not in leaf_set:
            continue
        params = sum(p.numel() for p in module.parameters(recurse=False))
        layer_mac = macs.get(name, 0)
        if params or layer_mac:
            rows.append(LayerProfile(name, type(module).__name__, params, layer_mac, 2 * layer_mac,
                                     shapes.get(name, ())))
    module_macs = sum(row.macs for row in rows)
    functional_macs = 0 if counter is None else counter.get_total_flops() // (2 * batch) - module_macs
    if functional_macs > 0:
        rows.append(LayerProfile(FUNCTIONAL_ROW, "functional", 0, functional_macs, 2 * functional_macs, ()))

    param_bytes: dict[str, int] = defaultdict(int)
    for parameter in model.parameters():
        param_bytes[str(parameter.dtype).removeprefix("torch.")] += parameter.numel() * parameter.element_size()
    total_macs = sum(row.macs for row in rows)
    return Profile(
        params=sum(p.numel() for p in model.parameters()),
        macs=total_macs,
        flops=2 * total_macs,
        param_bytes=dict(param_bytes),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        layers=rows,
    )
