"""Running a model to look at it (count, trace, verify, export): in eval mode, with
its mode restored afterwards, and its outputs flattened to a list of tensors."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def output_tensors(outputs: Any) -> list[torch.Tensor]:
    """The tensors of a model's outputs, in order, through tuples, lists and dicts."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [tensor for item in outputs for tensor in output_tensors(item)]
    return []
