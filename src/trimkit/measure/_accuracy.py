"""Accuracy computed by the runtime itself, in the precision it was timed in.

A runtime that computes in bf16 (OpenVINO on a CPU with native bf16) gives other
outputs than PyTorch in f32; the accuracy that goes with a latency is the runtime's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from trimkit import train
from trimkit.data import ImageDataset
from trimkit.errors import TrimkitError
from trimkit.measure._backend import Session
from trimkit.measure._latency import RunSettings, resolve_targets
from trimkit.measure._target import ModelOrPath
from trimkit.measure._timing import TimingPlan


class _SessionModule(nn.Module):
    """A compiled runtime session posing as a module, so ``train.evaluate`` scores its
    outputs. A short last batch is padded to the compiled batch size and cut back."""

    def __init__(self, session: Session, batch_size: int) -> None:
        super().__init__()
        self.session = session
        self.batch_size = batch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        count = images.shape[0]
        padding = images[-1:].expand(self.batch_size - count, *images.shape[1:])
        batch = torch.cat([images, padding]).contiguous().numpy()
        return torch.from_numpy(self.session.infer([batch])[0][:count])


def runtime_accuracy(
    model_or_path: ModelOrPath,
    data: ImageDataset,
    *,
    backend: str = "onnxruntime",
    precision: str = "auto",
    threads: int | None = None,
    batch_size: int = 100,
    input_shapes: Sequence[Sequence[int]] | None = None,
) -> dict:
    """Top-1, top-5, loss and n of the model on ``data`` as the backend computes it, plus
    the ``precision`` it computed in. ``data`` must be normalised as the model expects."""
    settings = RunSettings.make(backend, batch_size, threads, precision, TimingPlan())
    with tempfile.TemporaryDirectory(prefix="trimkit-accuracy-") as workdir:
        target = resolve_targets([model_or_path], Path(workdir), settings.needs_onnx, None, input_shapes)[0]
        if len(target.input_shapes) != 1:
            raise TrimkitError(f"{target.label} takes {len(target.input_shapes)} inputs; accuracy on an image data "
                               "set needs a single-input model")
        target.check_batch(batch_size)
        session = settings.backend.open(target, batch_size=batch_size, threads=settings.threads,
                                        precision=settings.precision)
        try:
            metrics = train.evaluate(_SessionModule(session, batch_size), data, batch_size=batch_size,
                                     device="cpu", channels_last=False)
        finally:
            session.close()
    return {**metrics, "precision": session.precision, "backend": backend}
