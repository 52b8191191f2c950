"""Example inputs: one tensor, or a tuple of tensors for a model with several inputs."""

from __future__ import annotations

import torch

ExampleInputs = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


def as_input_tuple(example_inputs: ExampleInputs) -> tuple[torch.Tensor, ...]:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
