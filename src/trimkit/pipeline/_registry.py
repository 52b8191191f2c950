"""The stage registry: a stage is a plain function ``(model, context, options) -> model``
with a pydantic model of its options, shared by the Python API, the CLI and recipes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel, ConfigDict
from torch import nn

from trimkit.errors import TrimkitError


class StageOptions(BaseModel):
    """Base of every stage's options: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


StageFunction = Callable[[nn.Module, "object", StageOptions], nn.Module]


@dataclass(frozen=True)
class Stage:
    name: str
    options: type[StageOptions]
    run: StageFunction
    summary: str


_STAGES: dict[str, Stage] = {}


def register_stage(name: str, options: type[StageOptions], summary: str = "") -> Callable[[StageFunction],
                                                                                           StageFunction]:
    """Decorator: register ``function`` as stage ``name`` taking ``options``."""

    def decorate(function: StageFunction) -> StageFunction:
        _STAGES[name] = Stage(name, options, function, summary or (function.__doc__ or "").strip().split("\n")[0])
        return function

    return decorate


def get_stage(name: str) -> Stage:
    if name not in _STAGES:
        raise TrimkitError(f"unknown stage {name!r}{closest(name, _STAGES)}; stages: {', '.join(_STAGES)}")
    return _STAGES[name]


def stage_names() -> tuple[str, ...]:
    return tuple(_STAGES)


def closest(name: str, choices) -> str:
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
