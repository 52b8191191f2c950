"""The contract of a latency backend: a model file in, a session that runs it out.

A backend compiles one model for one batch size, thread count and precision into a
:class:`Session` with its inputs bound. trimkit's timing loop calls ``Session.run`` and
does the timing itself, so every backend is timed by the same code; the backend only
knows how to run its runtime, what precision that runtime really computes in, and how
to read the runtime's own profiler.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from trimkit.errors import TrimkitError

if TYPE_CHECKING:
    from trimkit.measure._target import ModelTarget

PRECISIONS = ("auto", "fp32", "bf16")
_PRECISION_ALIASES = {"f32": "fp32", "float32": "fp32", "bfloat16": "bf16"}


@dataclass(frozen=True)
class NodeTime:
    """Time of one node of the runtime's graph, in ms per inference (the median over the
    profiled inferences, so that a run preempted by another process does not count), as
    the runtime's profiler reports it."""

    name: str
    op: str
    ms: float


class Session(ABC):
    """One model compiled for one batch size, with random inputs bound."""

    #: the precision the runtime computes in, as the runtime reports it, spelled as trimkit spells it ("fp32", "bf16")
    precision: str
    #: compute layers (convolutions, dense layers) per precision they run in, where the runtime says
    compute_precisions: dict[str, int] | None = None

    @abstractmethod
    def run(self) -> None:
        """One inference on the bound inputs; returns when the outputs are ready."""

    @abstractmethod
    def infer(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """One inference on ``arrays`` (one per model input, batch as compiled); the outputs."""

    def node_times(self, iterations: int) -> list[NodeTime]:
        """Run ``iterations`` inferences under the runtime's profiler (a session opened
        with ``profile=True``); the median time per node. Only where ``has_profiler``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the runtime's resources and restore what opening changed; by default
        there is nothing to release."""
        return None


class Backend(ABC):
    """A runtime trimkit can time. ``model_format`` is what it runs: ``onnx`` or ``torch``;
    ``has_profiler`` says whether its sessions report per-node times."""

    name: ClassVar[str]
    model_format: ClassVar[str]
    has_profiler: ClassVar[bool] = True

    @abstractmethod
    def open(self, target: ModelTarget, *, batch_size: int, threads: int, precision: str,
             profile: bool = False) -> Session:
        """Compile ``target`` for ``batch_size``; with ``profile`` the runtime's profiler is on."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the runtime libraries, for the environment record."""


def check_precision(precision: str) -> str:
    """The canonical name of a requested precision (``f32`` and ``float32`` are taken for ``fp32``)."""
    canonical = _PRECISION_ALIASES.get(precision, precision)
    if canonical not in PRECISIONS:
        raise TrimkitError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return canonical


def random_inputs(target: ModelTarget, batch_size: int, seed: int = 0) -> list[np.ndarray]:
    """Standard-normal inputs of the target's shapes, like normalised images."""
    generator = np.random.default_rng(seed)
    return [generator.standard_normal((batch_size, *shape)).astype(dtype)
            for shape, dtype in zip(target.input_shapes, target.input_dtypes, strict=True)]


def runtime_error_line(error: BaseException) -> str:
    """The informative line of a runtime's error, at most 200 characters: OpenVINO's first
    lines name only its own sources (``Exception from src/...``), its ``Check ...`` line
    says what failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    checks = [line for line in lines if line.startswith("Check ")]
    useful = [line for line in lines if not line.startswith(("Exception from", "["))]
    return (checks or useful or lines or [type(error).__name__])[0][:200]
