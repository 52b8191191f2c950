"""Accuracy computed by the runtime itself, in the precision it was timed in.

A runtime that computes in bf16 (OpenVINO on a CPU with native bf16) gives other
outputs than PyTorch in f32; the accuracy that goes with a latency is the runtime's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure._backend import Session
from trimkit.measure._latency import RunSettings, resolve_targets
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._target import ModelOrPath
from trimkit.record import precision_name
from trimkit.tasks import Evaluation, Task, as_split_task, evaluate


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
    options: RuntimeOptions | None = None,
    *,
    batch_size: int = 100,
    input_shapes: Sequence[Sequence[int]] | None = None,
    **settings: Any,
) -> Evaluation:
    """The task's metrics on ``split`` as the backend computes them, with the precision
    the runtime reports it computed in (``options``: a :class:`RuntimeOptions`, or its
    fields as keywords). The task's data must be normalised as the model expects."""
    options = RuntimeOptions.of(options, **settings)
    run = RunSettings.of(options, batch_size)
    with tempfile.TemporaryDirectory(prefix="trimkit-accuracy-") as workdir:
        target = resolve_targets([model_or_path], Path(workdir), run.needs_onnx, None, input_shapes)[0]
        expected = len(task.example_inputs(1))
        if len(target.input_shapes) != expected:
            raise TrimkitError(f"{target.label} takes {len(target.input_shapes)} inputs but the task gives "
                               f"{expected}")
        target.check_batch(batch_size)
        session = run.backend.open(target, batch_size=batch_size, threads=run.threads, precision=run.precision)
        try:
            scored = evaluate(_SessionModule(session, batch_size), task, split, batch_size=batch_size,
                              device="cpu", channels_last=False, backend=options.backend)
        finally:
            session.close()
    return Evaluation(scored.values, scored.primary, scored.split, precision_name(session.precision),
                      options.backend, scored.data)


def runtime_accuracy(model_or_path: ModelOrPath, data: Any, options: RuntimeOptions | None = None, *,
                     batch_size: int = 100, input_shapes: Sequence[Sequence[int]] | None = None,
                     **settings: Any) -> dict:
    """The metrics of the model on a data set (judged as the task of its kind: top-1,
    top-5, loss and n for images) as the backend computes them, plus the ``precision`` it
    computed in and the ``backend`` (see :func:`runtime_evaluation`)."""
    task, split = as_split_task(data)
    scored = runtime_evaluation(model_or_path, task, split, options, batch_size=batch_size,
                                input_shapes=input_shapes, **settings)
    return {**scored.values, "precision": scored.precision, "backend": scored.backend}
