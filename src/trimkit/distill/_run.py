"""``distill``: train a student with a teacher through ``trimkit.train.fit``; and
``distilling``, the one place a distiller is built, for ``distill`` and the stages."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from torch import nn

from trimkit._device import resolve_device
from trimkit.distill._distiller import Distiller, parse_links
from trimkit.tasks import Task, as_task
from trimkit.train._fit import FitResult, fit


@contextlib.contextmanager
def distilling(student: nn.Module, teacher: nn.Module, task: Task, *, temperature: float = 4.0, alpha: float = 0.5,
               hints: Mapping[str, str] | None = None, attention: Mapping[str, str] | None = None,
               hint_weight: float = 1.0, attention_weight: float = 1000.0, teacher_precision: str = "auto",
               memo: bool = False, only_where_right: bool = True) -> Iterator[Distiller]:
    """The distiller of ``teacher`` into ``student`` on ``task``: the pair checked on a
    real batch, adapters built where hint channels differ, hooks attached until the block
    ends. Use it as the ``loss_fn`` of :func:`trimkit.train.fit`, with its ``adapters`` as
    ``extra_modules``."""
    links = parse_links(hints, attention, hint_weight=hint_weight, attention_weight=attention_weight)
    distiller = Distiller(teacher, temperature=temperature, alpha=alpha, links=links,
                          teacher_precision=teacher_precision, memo=memo, only_where_right=only_where_right)
    with distiller.prepare(student, example_batch(task), task.loss):
        yield distiller


def distill(student: nn.Module, teacher: nn.Module, train: Task | Any, val: Any | None = None, *,
            temperature: float = 4.0, alpha: float = 0.5, hints: Mapping[str, str] | None = None,
            attention: Mapping[str, str] | None = None, hint_weight: float = 1.0, attention_weight: float = 1000.0,
            teacher_precision: str = "auto", memo: bool = False, only_where_right: bool = True,
            device: str | None = None,
            **fit_options: Any) -> tuple[FitResult, Distiller]:
    """Train ``student`` in place with ``teacher``'s soft targets (and feature links);
    ``fit_options`` go to :func:`trimkit.train.fit`. ``hints`` and ``attention`` map
    student layer names to teacher layer names. Returns the fit result and the
    distiller (its ``precision`` says which precision the teacher ran in and why)."""
    task = as_task(train, val)
    student.to(resolve_device(device))
    with distilling(student, teacher, task, temperature=temperature, alpha=alpha, hints=hints, attention=attention,
                    hint_weight=hint_weight, attention_weight=attention_weight,
                    teacher_precision=teacher_precision, memo=memo,
                    only_where_right=only_where_right) as distiller:
        result = fit(student, task, device=device, loss_fn=distiller, extra_modules=[distiller.adapters],
                     **fit_options)
    return result, distiller


def example_batch(task: Task, count: int = 32) -> tuple:
    """The first ``count`` training inputs, unshuffled and unaugmented: the batch the
    teacher and student are checked on."""
    return next(iter(task.batches("train", min(count, task.size("train"))))).inputs
