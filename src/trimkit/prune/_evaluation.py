"""Fast, repeatable evaluation for exploration: the data is normalised once and held
as channels-last batches; models run under ``torch.inference_mode`` and, where the
CPU has native bf16, under bf16 autocast, in large batches."""

from __future__ import annotations

import torch
from torch import nn

from trimkit.data import ImageDataset
from trimkit.train import resolve_device, resolve_precision
from trimkit.train._device import autocast


class CachedEvaluation:
    """``evaluation(model) -> top-1 %`` on a fixed (sub)set of ``dataset``."""

    def __init__(self, dataset: ImageDataset, samples: int | None = None, *, batch_size: int = 500,
                 precision: str = "auto", seed: int = 0) -> None:
        subset = dataset.subset(samples, seed) if samples else dataset
        self.device = resolve_device(None)
        self.precision = resolve_precision(precision, self.device)
        self.name = f"{dataset.name} {dataset.split}"
        self.count = len(subset)
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        for images, labels in subset.batches(batch_size):
            self.batches.append((images.to(self.device).contiguous(memory_format=torch.channels_last),
                                 labels.to(self.device)))

    def __call__(self, model: nn.Module) -> float:
        with self.running(model):
            correct = sum(int((model(images).argmax(1) == labels).sum()) for images, labels in self.batches)
        return 100.0 * correct / self.count

    def running(self, model: nn.Module) -> "_Running":
        """Context in which ``model`` runs as this evaluation runs it."""
        return _Running(model, self)


class _Running:
    def __init__(self, model: nn.Module, evaluation: CachedEvaluation) -> None:
        self.model, self.evaluation = model, evaluation

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval().to(self.evaluation.device, memory_format=torch.channels_last)
        self.inference = torch.inference_mode()
        self.cast = autocast(self.evaluation.device, self.evaluation.precision)
        self.inference.__enter__()
        self.cast.__enter__()

    def __exit__(self, *exc) -> None:
        self.cast.__exit__(*exc)
        self.inference.__exit__(*exc)
        self.model.train(self.was_training)
        self.model.to(memory_format=torch.contiguous_format)
