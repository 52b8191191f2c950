"""The ``teacher:`` options every training stage takes, and the distiller they build.

``teacher`` is ``original`` (the model the run started from: prune, then fine-tune
with the unpruned model as teacher in one line), the ``save_as`` name of an earlier
stage's model, or a trimkit model file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from trimkit import tasks
from trimkit.distill import Distiller, distilling
from trimkit.distill.kd import alpha_problem, temperature_problem
from trimkit.errors import TrimkitError
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions


class TeacherOptions(StageOptions):
    teacher: str | None = None
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5
    kd_only_where_right: bool = True
    teacher_check: Literal["warn", "refuse", "off"] = "warn"
    teacher_margin: float = Field(default=5.0, ge=0.0)
    teacher_precision: Literal["auto", "fp32", "bf16"] = "auto"
    hints: dict[str, str] = Field(default_factory=dict)
    attention: dict[str, str] = Field(default_factory=dict)
    hint_weight: float = Field(default=1.0, ge=0.0)
    attention_weight: float = Field(default=1000.0, ge=0.0)

    @field_validator("kd_temperature")
    @classmethod
    def _temperature_positive(cls, value: float) -> float:
        problem = temperature_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("kd_alpha")
    @classmethod
    def _alpha_in_unit_interval(cls, value: float) -> float:
        problem = alpha_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _features_need_a_teacher(self) -> TeacherOptions:
        if self.teacher is None and (self.hints or self.attention):
            raise ValueError("hints and attention need a teacher; set teacher: original (or a model file)")
        return self


def resolve_teacher(name: str, ctx: Context) -> nn.Module:
    """The model ``name`` refers to: a named model of the run, else a model file."""
    import trimkit

    if name in ctx.models:
        found = ctx.models[name]
        if isinstance(found, nn.Module):
            return found
        name = found  # a named file of the run
    if Path(name).is_file():
        return _checked_teacher(trimkit.load(name, trusted=ctx.trusted), name, ctx)
    known = ", ".join(m for m, v in ctx.models.items() if isinstance(v, nn.Module)) or "none"
    raise TrimkitError(f"teacher {name!r} is neither a model of this run (known: {known}) nor a model file; give "
                       "'original', the save_as name of an earlier stage, or the path of a model file")


def _checked_teacher(teacher: nn.Module, name: str, ctx: Context) -> nn.Module:
    """A teacher from a file, refused in one line where it was built for another task kind
    or for other inputs or classes than the run's data."""
    from trimkit import models

    origin = models.origin(teacher)
    task = ctx.task
    if origin is None or task is None:
        return teacher
    if origin.task is not None and origin.task != task.name:
        raise TrimkitError(f"teacher {name} is a {origin.task} model ({origin.label}), but the student learns "
                           f"{task.name}; give a {task.name} teacher trained on the same data")
    check_fits = getattr(task, "check_fits", None)
    datasets = getattr(task, "datasets", {})
    if check_fits is not None:
        for dataset in datasets.values():
            check_fits(dataset, origin, f"teacher {name}")
    return teacher


def check_teacher(teacher: nn.Module, options: TeacherOptions, ctx: Context, student_start: float | None,
                  chance: float | None) -> dict[str, Any]:
    """The teacher's validation metric against the student's before distillation and the
    chance level plus ``teacher_margin``: a warning with the numbers where the teacher is
    not above them, a one-line refusal under ``teacher_check: refuse``. Returns the figures."""
    task = ctx.task
    primary = task.primary_metric
    score = float(tasks.evaluate(teacher, task).values[primary])
    figures = {"metric": primary, "teacher": score, "student_start": student_start, "chance": chance,
               "margin": options.teacher_margin, "weak": False}
    sign = 1.0 if task.higher_is_better else -1.0
    bars = []
    if student_start is not None:
        bars.append((student_start, f"the student's {student_start:.2f} before distillation"))
    if chance is not None and task.higher_is_better:
        bars.append((chance + options.teacher_margin, f"chance ({chance:.2f}, the most frequent class everywhere) "
                                                      f"+ {options.teacher_margin:g}"))
    failed = [words for bar, words in bars if sign * (score - bar) <= 0]
    if not failed:
        return figures
    figures["weak"] = True
    message = (f"teacher {options.teacher} scores val {primary} {score:.2f}, not above {' nor '.join(failed)}: "
               "distillation cannot make the student better than its teacher")
    if options.teacher_check == "refuse":
        raise TrimkitError(f"{message}; give a better teacher, or set teacher_check: warn to distil anyway")
    ctx.say(f"   [yellow]warning:[/] {message}; its soft targets count only where it is right"
            if options.kd_only_where_right else f"   [yellow]warning:[/] {message}")
    return figures


@contextlib.contextmanager
def distillation(options: TeacherOptions, ctx: Context, student: nn.Module, *, student_start: float | None = None,
                 chance: float | None = None) -> Iterator[Distiller | None]:
    """The distiller for ``options`` (hooks attached, teacher checked against
    ``student_start`` and ``chance``, the student's validation metric before training and
    a constant predictor's), or None without a teacher; the hooks come off when the block ends."""
    if options.teacher is None:
        yield None
        return
    teacher = resolve_teacher(options.teacher, ctx)
    with distilling(student, teacher, ctx.task, temperature=options.kd_temperature, alpha=options.kd_alpha,
                    hints=options.hints, attention=options.attention, hint_weight=options.hint_weight,
                    attention_weight=options.attention_weight,
                    teacher_precision=options.teacher_precision,
                    only_where_right=options.kd_only_where_right) as distiller:
        figures = None
        if options.teacher_check != "off" and any(split in ctx.task.splits for split in ("val", "test")):
            figures = check_teacher(teacher, options, ctx, student_start, chance)
        choice = distiller.precision
        ctx.say(f"   teacher {options.teacher}: T={options.kd_temperature}, alpha={options.kd_alpha}, runs in "
                f"{choice.precision} ({choice.reason})")
        ctx.add(distillation={"teacher": options.teacher, "temperature": options.kd_temperature,
                              "alpha": options.kd_alpha,
                              "only_where_right": options.kd_only_where_right, "teacher_precision": choice.as_dict(),
                              "hints": dict(options.hints), "attention": dict(options.attention),
                              "adapters": list(distiller.adapters), "teacher_check": figures})
        yield distiller
