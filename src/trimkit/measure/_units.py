"""The layers whose cost pruning changes, each as a shape that can be timed alone.

A unit is a convolution or dense layer as the runtime runs it: with its bias, batch norm
folded in and the activation after it fused (ONNX Runtime and OpenVINO both fuse them),
at the input size it sees in the model. Two layers of the same shape are one unit
shape, timed once (ResNet-56 has 57 layers and 8 shapes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from trimkit._running import eval_mode
from trimkit.measure._profile import ExampleInputs, as_input_tuple


@dataclass(frozen=True)
class UnitShape:
    """What a layer's time depends on, besides its channel counts."""

    kind: str  # "conv" or "dense"
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    depthwise: bool = False
    spatial: tuple[int, ...] = ()  # the input's height and width (conv)
    in_channels: int = 0  # as in the unpruned model: the table's largest counts
    out_channels: int = 0

    @property
    def key(self) -> str:
        fields = asdict(self)
        return ";".join(f"{name}={_text(value)}" for name, value in fields.items())

    def macs(self, in_count: int, out_count: int) -> int:
        """Multiply-accumulates per image at these channel counts."""
        if self.kind == "dense":
            return in_count * out_count
        outputs = 1
        for size, kernel, stride, padding, dilation in zip(self.spatial, self.kernel, self.stride, self.padding,
                                                           self.dilation):
            outputs *= (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        per_output = 1
        for kernel in self.kernel:
            per_output *= kernel
        reads = 1 if self.depthwise else in_count
        return outputs * out_count * reads * per_output


    def params(self, in_count: int, out_count: int) -> int:
        """Weights and biases at these channel counts."""
        per_output = 1
        for kernel in self.kernel:
            per_output *= kernel
        reads = 1 if self.depthwise else in_count
        return out_count * reads * per_output + out_count


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return str(value)


def layer_units(model: nn.Module, example_inputs: ExampleInputs) -> dict[str, UnitShape]:
    """Each plain (ungrouped, or depthwise) conv and dense layer of ``model`` by name,
    with the input size it sees on ``example_inputs``. Grouped convolutions, transposed
    ones and layers that run more than once are left out: their cost stays in what the
    table does not predict."""
    inputs = as_input_tuple(example_inputs)
    names = {module: name for name, module in model.named_modules()}
    seen: dict[str, list[tuple[int, ...]]] = {}

    def record(module, args, _output):
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(names[module], []).append(tuple(args[0].shape))

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    handles = [m.register_forward_hook(record) for m in layers]
    try:
        with eval_mode(model), torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    units = {}
    for module in layers:
        name = names[module]
        shapes = seen.get(name, [])
        if len(shapes) != 1:
            continue
        unit = _unit(module, shapes[0])
        if unit is not None:
            units[name] = unit
    return units


def _unit(module: nn.Module, input_shape: tuple[int, ...]) -> UnitShape | None:
    if isinstance(module, nn.Linear):
        if len(input_shape) != 2:
            return None
        return UnitShape("dense", in_channels=module.in_features, out_channels=module.out_features)
    depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
    if (module.groups > 1 and not depthwise) or not isinstance(module.padding, tuple):
        return None
    return UnitShape("conv", tuple(module.kernel_size), tuple(module.stride), tuple(module.padding),
                     tuple(module.dilation), depthwise, tuple(input_shape[2:]), module.in_channels,
                     module.out_channels)
