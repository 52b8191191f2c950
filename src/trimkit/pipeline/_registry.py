"""The stage registry: a stage is a plain function ``(model, context, options) -> model``
with a pydantic model of its options, shared by the Python API, the CLI and recipes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trimkit._options import Options
from trimkit._registry import Registry


class StageOptions(Options):
    """The options of every stage derive from this: unknown keys are errors, values are
    checked."""

    def needs(self) -> frozenset[str]:
        """What the stage, run with these options, needs of its task: capabilities a task
        kind offers (:data:`trimkit.tasks.CAPABILITIES`). None by default."""
        return frozenset()

StageFunction = Callable[[nn.Module, "object", StageOptions], nn.Module]


@dataclass(frozen=True)
class Stage:
    """A registered stage: its name, options model, function and one-line summary."""

    name: str
    options: type[StageOptions]
    run: StageFunction
    summary: str


STAGES: Registry[Stage] = Registry("stage")


def register_stage(name: str, options: type[StageOptions], summary: str = "", *,
                   replace: bool = False) -> Callable[[StageFunction], StageFunction]:
    """Decorator: register ``function`` as stage ``name`` taking ``options``."""

    def decorate(function: StageFunction) -> StageFunction:
        if not issubclass(options, StageOptions):
            raise TypeError(f"stage {name!r}: its options must derive from StageOptions")
        STAGES.register(name, Stage(name, options, function, summary or (function.__doc__ or "").strip()
                                    .split("\n")[0]), replace=replace)
        return function

    return decorate


def get_stage(name: str) -> Stage:
    return STAGES.get(name)


def stage_names() -> tuple[str, ...]:
    return STAGES.names()


def unsupported(options: StageOptions, capabilities: frozenset[str], kind: str) -> str | None:
    """Why a stage with ``options`` cannot run on a task of ``kind`` that offers
    ``capabilities``, in words; None when it can."""
    missing = sorted(options.needs() - capabilities)
    if not missing:
        return None
    from trimkit.tasks import CAPABILITIES

    return (f"needs a task that offers {', '.join(missing)} ({'; '.join(CAPABILITIES[m] for m in missing)}), "
            f"which a {kind} task does not")
