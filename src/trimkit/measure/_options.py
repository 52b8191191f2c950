"""How a runtime runs and is timed: the one options type of every timed call
(``latency``, ``compare``, ``runtime_evaluation``, the measure and compare stages, a
search's latency, ``trimkit bench``), validated once."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from trimkit._options import Options
from trimkit.errors import TrimkitError
from trimkit.measure._backend import check_precision
from trimkit.measure._registry import BACKENDS
from trimkit.measure._timing import TimingPlan
from trimkit.record import precision_name


def _known_backend(value: str) -> str:
    try:
        BACKENDS.get(value)
    except TrimkitError as error:
        raise ValueError(str(error)) from None
    return value


def _known_precision(value: str) -> str:
    try:
        return precision_name(check_precision(value))
    except TrimkitError as error:
        raise ValueError(str(error)) from None


class RuntimeOptions(Options):
    """The runtime (``backend``), its ``threads`` (default: the CPUs this process may
    use) and ``precision`` (``auto``: the runtime's own choice, ``fp32``, ``bf16``), and
    the timing: ``warmup`` untimed calls, then calls one by one until ``min_time_s``
    seconds and ``min_iters`` calls, at most ``max_iters``."""

    backend: Annotated[str, AfterValidator(_known_backend)] = "onnxruntime"
    threads: int | None = Field(default=None, ge=1)
    precision: Annotated[str, AfterValidator(_known_precision)] = "auto"
    warmup: int = Field(default=10, ge=1, description="untimed calls first; they also size the timing blocks")
    min_time_s: float = Field(default=1.0, gt=0.0)
    min_iters: int = Field(default=10, ge=1)
    max_iters: int = Field(default=10_000, ge=1)

    def plan(self) -> TimingPlan:
        """The timing loop's plan (at most ``max_iters`` calls, so at least that many fewer)."""
        return TimingPlan(self.warmup, self.min_time_s, min(self.min_iters, self.max_iters), self.max_iters)

    def runtime_settings(self) -> dict[str, object]:
        """The fields of the runtime (a subclass's own keys left out)."""
        return {name: getattr(self, name) for name in RuntimeOptions.model_fields}
