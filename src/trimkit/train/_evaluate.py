"""Evaluation of a classifier: top-1, top-5, mean loss."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.data import ImageDataset
from trimkit.train._device import autocast, resolve_device, resolve_precision


def evaluate(
    model: nn.Module,
    data: ImageDataset,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Accuracy of ``model`` on ``data``: ``{"top1", "top5"}`` in percent, mean ``loss``, ``n``.

    fp32 by default so figures are comparable across machines; ``precision="bf16"``
    evaluates as a bf16 runtime would. The model's train/eval mode is restored.
    ``top5`` is top-min(5, classes). Channels-last is used on the CPU unless
    ``channels_last=False``: measured 1.3x faster for ResNet-56 at batch 100 here.
    """
    target = resolve_device(device)
    precision = resolve_precision(precision, target)
    loss_fn = loss_fn or F.cross_entropy
    use_channels_last = target.type == "cpu" if channels_last is None else channels_last
    was_training = model.training
    model.eval()
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    correct1 = correct5 = 0
    loss_sum = 0.0
    k = min(5, data.num_classes)
    try:
        with torch.inference_mode(), autocast(target, precision):
            for images, labels in data.batches(batch_size):
                images, labels = images.to(target), labels.to(target)
                if use_channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                logits = model(images).float()
                loss_sum += float(loss_fn(logits, labels)) * len(labels)
                top = logits.topk(k, dim=1).indices
                hits = top.eq(labels[:, None])
                correct1 += int(hits[:, 0].sum())
                correct5 += int(hits.any(dim=1).sum())
    finally:
        model.train(was_training)
        if use_channels_last:
            model.to(memory_format=torch.contiguous_format)
    count = len(data)
    return {
        "top1": 100.0 * correct1 / count,
        "top5": 100.0 * correct5 / count,
        "loss": loss_sum / count,
        "n": count,
    }
