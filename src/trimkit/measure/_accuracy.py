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

from trimkit.data import ImageDataset
from trimkit.record import precision_name
from trimkit.tasks import ClassificationTask, Evaluation, Task, evaluate
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

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        count = inputs[0].shape[0]
        padded = [torch.cat([x, x[-1:].expand(self.batch_size - count, *x.shape[1:])]).contiguous().numpy()
                  for x in inputs]
        outputs = [torch.from_numpy(output[:count]) for output in self.session.infer(padded)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def runtime_evaluation(
    model_or_path: ModelOrPath,
    task: Task,
    split: str | None = None,
    *,
    backend: str = "onnxruntime",
    precision: str = "auto",
    threads: int | None = None,
    batch_size: int = 100,
    input_shapes: Sequence[Sequence[int]] | None = None,
) -> Evaluation:
    """The task's metrics on ``split`` as the backend computes them, with the precision
    the runtime reports it computed in. The task's data must be normalised as the model
    expects."""
    settings = RunSettings.make(backend, batch_size, threads, precision, TimingPlan())
    with tempfile.TemporaryDirectory(prefix="trimkit-accuracy-") as workdir:
        target = resolve_targets([model_or_path], Path(workdir), settings.needs_onnx, None, input_shapes)[0]
        expected = len(task.example_inputs(1))
        if len(target.input_shapes) != expected:
            raise TrimkitError(f"{target.label} takes {len(target.input_shapes)} inputs but the task gives "
                               f"{expected}")
        target.check_batch(batch_size)
        session = settings.backend.open(target, batch_size=batch_size, threads=settings.threads,
                                        precision=settings.precision)
        try:
            scored = evaluate(_SessionModule(session, batch_size), task, split, batch_size=batch_size,
                              device="cpu", channels_last=False, backend=backend)
        finally:
            session.close()
    return Evaluation(scored.values, scored.primary, scored.split, precision_name(session.precision), backend,
                      scored.data)


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
    """Top-1, top-5, loss and n of the model on an image data set as the backend computes
    it, plus the ``precision`` it computed in (see :func:`runtime_evaluation`)."""
    task = ClassificationTask({data.split: data})
    scored = runtime_evaluation(model_or_path, task, data.split, backend=backend, precision=precision,
                                threads=threads, batch_size=batch_size, input_shapes=input_shapes)
    return {**scored.values, "precision": scored.precision, "backend": backend}
