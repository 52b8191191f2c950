"""Judging a model on a task: one pass over a split, in a stated precision.

``evaluate`` is the reference (fp32 by default, comparable across machines);
``CachedEvaluation`` is the fast, repeatable one exploration calls hundreds of times:
its batches are moved and laid out channels-last once, and it runs under bf16 autocast
where the CPU has native bf16.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from trimkit._device import autocast, resolve_device, resolve_precision
from trimkit._progress import progress_bar
from trimkit.record import Metric
from trimkit.tasks._task import Batch, Task


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one pass (by name, ``n`` among them) and how they were computed."""

    values: dict[str, float]
    primary: str
    split: str
    precision: str
    backend: str = "pytorch"
    data: str | None = None

    @property
    def value(self) -> float:
        return self.values[self.primary]

    @property
    def samples(self) -> int:
        return int(self.values.get("n", 0))

    def metrics(self) -> list[Metric]:
        """Every figure but ``n`` as a :class:`~trimkit.record.Metric`."""
        return [Metric(name, float(value), self.split, self.samples, self.precision, self.backend, self.data)
                for name, value in self.values.items() if name != "n"]


def evaluate(
    model: nn.Module,
    task: Task,
    split: str | None = None,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    backend: str = "pytorch",
    progress: bool = False,
) -> Evaluation:
    """The task's metrics for ``model`` on ``split`` (default: ``val``, else ``test``).

    fp32 by default so figures compare across machines; ``precision="bf16"`` evaluates
    as a bf16 runtime would. The model's train/eval mode and memory format are restored.
    Channels-last is used on the CPU unless ``channels_last=False`` (measured 1.3x
    faster for ResNet-56 at batch 100 here).
    """
    split = split or task.eval_split()
    target = resolve_device(device)
    resolved = resolve_precision(precision, target)
    use_channels_last = target.type == "cpu" if channels_last is None else channels_last
    state = task.metric_state()
    with running(model, target, resolved, use_channels_last), progress_bar(progress) as bar:
        job = bar.add_task(f"evaluating on {split}", total=task.num_batches(split, batch_size), stats="")
        for batch in task.batches(split, batch_size):
            batch = batch.to(target, channels_last=use_channels_last)
            state.update(_float(model(*batch.inputs)), batch.targets)
            bar.advance(job)
    return Evaluation(state.result(), task.primary_metric, split, resolved, backend, task.data_name(split))


@contextlib.contextmanager
def running(model: nn.Module, device: torch.device, precision: str, channels_last: bool) -> Iterator[nn.Module]:
    """``model`` in eval mode, under inference mode and the precision's autocast."""
    was_training = model.training
    model.eval().to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        with torch.inference_mode(), autocast(device, precision):
            yield model
    finally:
        model.train(was_training)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def _float(outputs: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_float(o) for o in outputs)
    return outputs


class CachedEvaluation:
    """``evaluation(model) -> primary metric`` on a fixed (sub)set of a split, fast.

    Built from a task (or, for convenience, a data set, judged as the task of its kind).
    ``samples`` cuts the split to a fixed random subset.
    """

    def __init__(self, task: Any, samples: int | None = None, *, split: str | None = None, batch_size: int = 500,
                 precision: str = "auto", seed: int = 0) -> None:
        from trimkit.tasks._kinds import as_split_task

        task, own_split = as_split_task(task)
        split = split or own_split
        if samples:
            task = task.subset(split, samples, seed)
        self.task = task
        self.split = split
        self.device = resolve_device(None)
        self.precision = resolve_precision(precision, self.device)
        self.name = f"{task.data_name(split) or task.name} {split}"
        self.count = task.size(split)
        self.batches: list[Batch] = [batch.to(self.device, channels_last=True)
                                     for batch in task.batches(split, batch_size)]

    def __call__(self, model: nn.Module) -> float:
        with self.running(model):
            return self.score(model(*batch.inputs) for batch in self.batches)

    def score(self, outputs: Iterable[Any]) -> float:
        """The primary metric of outputs given batch by batch, in the order of ``batches``."""
        state = self.task.metric_state()
        for output, batch in zip(outputs, self.batches, strict=True):
            state.update(_float(output), batch.targets)
        return float(state.result()[self.task.primary_metric])

    def running(self, model: nn.Module) -> contextlib.AbstractContextManager:
        """Context in which ``model`` runs as this evaluation runs it."""
        return running(model, self.device, self.precision, True)
