"""``evaluate`` on a data set or task: the task's metrics as a dict."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trimkit.tasks import Task, as_split_task
from trimkit.tasks import evaluate as evaluate_task


def evaluate(
    model: nn.Module,
    data: Any | Task,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
) -> dict[str, float]:
    """The metrics of ``model`` on ``data`` by name, with ``n``: a data set is judged as the
    task of its kind (an image data set: ``top1`` and ``top5`` in percent and the mean
    ``loss``); a task on its evaluation split. See :func:`trimkit.tasks.evaluate` for the
    record with precision."""
    task, split = as_split_task(data)
    return evaluate_task(model, task, split, batch_size=batch_size, device=device, precision=precision,
                         channels_last=channels_last).values
