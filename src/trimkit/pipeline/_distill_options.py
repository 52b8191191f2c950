"""The ``teacher:`` options every training stage takes, and the distiller they build.

``teacher`` is ``original`` (the model the run started from: prune, then fine-tune
with the unpruned model as teacher in one line), the ``save_as`` name of an earlier
stage's model, or a trimkit model file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from trimkit.distill import Distiller, distilling
from trimkit.distill.kd import alpha_problem, temperature_problem
from trimkit.errors import TrimkitError
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions


class TeacherOptions(StageOptions):
    teacher: str | None = None
    kd_temperature: float = 4.0
    kd_alpha: float = 0.9
    kd_only_where_right: bool = True
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
        return trimkit.load(name, trusted=ctx.trusted)
    known = ", ".join(m for m, v in ctx.models.items() if isinstance(v, nn.Module)) or "none"
    raise TrimkitError(f"teacher {name!r} is neither a model of this run (known: {known}) nor a model file; give "
                       "'original', the save_as name of an earlier stage, or the path of a model file")


@contextlib.contextmanager
def distillation(options: TeacherOptions, ctx: Context, student: nn.Module) -> Iterator[Distiller | None]:
    """The distiller for ``options`` (hooks attached, teacher checked), or None without a
    teacher; the hooks come off when the block ends."""
    if options.teacher is None:
        yield None
        return
    teacher = resolve_teacher(options.teacher, ctx)
    with distilling(student, teacher, ctx.task, temperature=options.kd_temperature, alpha=options.kd_alpha,
                    hints=options.hints, attention=options.attention, hint_weight=options.hint_weight,
                    attention_weight=options.attention_weight,
                    teacher_precision=options.teacher_precision,
                    only_where_right=options.kd_only_where_right) as distiller:
        choice = distiller.precision
        ctx.say(f"   teacher {options.teacher}: T={options.kd_temperature}, alpha={options.kd_alpha}, runs in "
                f"{choice.precision} ({choice.reason})")
        ctx.add(distillation={"teacher": options.teacher, "temperature": options.kd_temperature,
                              "alpha": options.kd_alpha,
                              "only_where_right": options.kd_only_where_right, "teacher_precision": choice.as_dict(),
                              "hints": dict(options.hints), "attention": dict(options.attention),
                              "adapters": list(distiller.adapters)})
        yield distiller
