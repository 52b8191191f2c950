"""``distill``: train a student with a teacher through ``trimkit.train.fit``."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from trimkit._device import resolve_device
from trimkit.data import ImageDataset
from trimkit.distill._distiller import Distiller, parse_links
from trimkit.tasks import ClassificationTask, Task
from trimkit.train._fit import FitResult, fit


def distill(student: nn.Module, teacher: nn.Module, train: Task | ImageDataset, val: ImageDataset | None = None, *,
            temperature: float = 4.0, alpha: float = 0.9, hints: Mapping[str, str] | None = None,
            attention: Mapping[str, str] | None = None, hint_weight: float = 1.0, attention_weight: float = 1000.0,
            teacher_precision: str = "auto", memo: bool = False, device: str | None = None,
            **fit_options: Any) -> tuple[FitResult, Distiller]:
    """Train ``student`` in place with ``teacher``'s soft targets (and feature links);
    ``fit_options`` go to :func:`trimkit.train.fit`. ``hints`` and ``attention`` map
    student layer names to teacher layer names. Returns the fit result and the
    distiller (its ``precision`` says which precision the teacher ran in and why)."""
    task = train if isinstance(train, Task) else ClassificationTask.of(train, val)
    links = parse_links(hints, attention, hint_weight=hint_weight, attention_weight=attention_weight)
    distiller = Distiller(teacher, temperature=temperature, alpha=alpha, links=links,
                          teacher_precision=teacher_precision, memo=memo)
    student.to(resolve_device(device))
    with distiller.prepare(student, example_batch(task), task.loss):
        result = fit(student, task, device=device, loss_fn=distiller, extra_modules=[distiller.adapters],
                     **fit_options)
    return result, distiller


def example_batch(task: Task, count: int = 32) -> tuple:
    """The first ``count`` training inputs, unshuffled and unaugmented: the batch the
    teacher and student are checked on."""
    return next(iter(task.batches("train", min(count, task.size("train"))))).inputs
