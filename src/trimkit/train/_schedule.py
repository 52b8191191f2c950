"""Optimisers and learning-rate schedules, as plain functions of training progress so a
resumed run needs no scheduler state."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from trimkit.errors import TrimkitError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "exponential")


def make_optimizer(
    parameters: Iterable[torch.nn.Parameter], name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    raise TrimkitError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise TrimkitError(f"unknown lr schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")


def learning_rate(
    name: str, base_lr: float, progress_epochs: float, total_epochs: int, step_size: int, gamma: float
) -> float:
    """The learning rate after ``progress_epochs`` (fractional) of ``total_epochs``.

    step: ``base_lr * gamma ** floor(epoch / step_size)``; exponential: ``base_lr *
    gamma ** epoch`` (whole epochs); cosine: annealed to 0 per iteration.
    """
    epoch = int(progress_epochs)
    if name == "constant":
        return base_lr
    if name == "step":
        return base_lr * gamma ** (epoch // max(step_size, 1))
    if name == "exponential":
        return base_lr * gamma**epoch
    if name == "cosine":
        return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(progress_epochs / max(total_epochs, 1), 1.0)))
    check_schedule(name)
    raise AssertionError("unreachable")
