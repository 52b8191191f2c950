"""Verification of surgery against the original model with the same channels zeroed.

Removing a channel must change the model exactly as zeroing it does: the reference is
a copy of the original whose removed channels are set to zero at every producer's
output and every consumer's input that the group lists. The pruned model must give
the reference's outputs on the example inputs, with the original output shapes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from trimkit._running import eval_mode, output_tensors
from trimkit.measure._profile import as_input_tuple

RELATIVE_TOLERANCE = 1e-5


class VerificationError(Exception):
    """The pruned model does not compute the masked original."""


class MaskedReference:
    def __init__(self, original: nn.Module, example_inputs) -> None:
        self.model = copy.deepcopy(original).eval()
        self.inputs = as_input_tuple(example_inputs)
        self.masks: dict[tuple[str, str], set[int]] = {}
        self._hooked: set[str] = set()
        with torch.no_grad():
            self.output_shapes = [tuple(t.shape) for t in output_tensors(self.model(*self.inputs))]

    def check(self, pruned: nn.Module, masks: dict[tuple[str, str], set[int]]) -> None:
        """Raise VerificationError unless ``pruned`` equals the reference under ``masks``."""
        self._hook(masks)
        previous, self.masks = self.masks, masks
        try:
            with eval_mode(pruned), torch.no_grad():
                expected = output_tensors(self.model(*self.inputs))
                got = output_tensors(pruned(*self.inputs))
        except RuntimeError as error:
            raise VerificationError(f"the pruned model fails to run: {_first_line(error)}") from None
        finally:
            self.masks = previous
        shapes = [tuple(t.shape) for t in got]
        if shapes != self.output_shapes:
            raise VerificationError(f"output shapes changed from {self.output_shapes} to {shapes}")
        for reference, actual in zip(expected, got):
            scale = float(reference.abs().max()) or 1.0
            error = float((reference - actual).abs().max()) / scale
            if error > RELATIVE_TOLERANCE:
                raise VerificationError(f"outputs differ from the masked original by {error:.2e} (relative)")

    def commit(self, masks: dict[tuple[str, str], set[int]]) -> None:
        self._hook(masks)
        self.masks = masks

    def _hook(self, masks: dict[tuple[str, str], set[int]]) -> None:
        for name, _direction in masks:
            if name in self._hooked:
                continue
            module = self.model.get_submodule(name)
            module.register_forward_pre_hook(self._zero_inputs(name))
            module.register_forward_hook(self._zero_outputs(name))
            self._hooked.add(name)

    def _zero_inputs(self, name: str):
        def hook(module, inputs):
            channels = self.masks.get((name, "in"))
            if not channels or not inputs:
                return None
            return (_zeroed(inputs[0], channels, _channel_dim(module)), *inputs[1:])

        return hook

    def _zero_outputs(self, name: str):
        def hook(module, inputs, output):
            channels = self.masks.get((name, "out"))
            if not channels or not isinstance(output, torch.Tensor):
                return None
            return _zeroed(output, channels, _channel_dim(module))

        return hook


def _channel_dim(module: nn.Module) -> int:
    return -1 if isinstance(module, (nn.Linear, nn.LayerNorm)) else 1


def _zeroed(tensor: torch.Tensor, channels: set[int], dim: int) -> torch.Tensor:
    result = tensor.clone()
    result.index_fill_(dim % tensor.dim(), torch.tensor(sorted(channels), device=tensor.device), 0.0)
    return result


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
