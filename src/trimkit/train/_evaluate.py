"""``evaluate`` on an image data set: the classification task's metrics as a dict."""

from __future__ import annotations

import torch
from torch import nn

from trimkit.data import ImageDataset
from trimkit.tasks import ClassificationTask, Task
from trimkit.tasks import evaluate as evaluate_task


def evaluate(
    model: nn.Module,
    data: ImageDataset | Task,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
) -> dict[str, float]:
    """The metrics of ``model`` on ``data`` by name, with ``n``: for an image data set,
    ``top1`` and ``top5`` in percent and the mean ``loss``. A task is judged on its
    evaluation split. See :func:`trimkit.tasks.evaluate` for the record with precision."""
    task = data if isinstance(data, Task) else ClassificationTask({data.split: data})
    split = task.eval_split() if isinstance(data, Task) else data.split
    return evaluate_task(model, task, split, batch_size=batch_size, device=device, precision=precision,
                         channels_last=channels_last).values
