"""The options of ``trimkit deploy``, the ``deploy`` stage and ``trimkit.deploy.choose``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from trimkit._options import Options
from trimkit.deploy._candidates import INT8_RECIPES, RUNTIMES
from trimkit.measure import RuntimeOptions

#: The default allowed drop, in points of the task's metric. Measured by its paired
#: difference on the same images, a drop's standard error on n images is about
#: sqrt(flips) / n: INT8 and bf16 flip about 1 % of CIFAR-10 predictions, so 0.3 points
#: on 1,000 images and 0.1 on 10,000. 0.5 points is then above the noise of a 1,000-image
#: check and half of Intel Neural Compressor's default criterion (1 % relative, about 0.8
#: to 0.9 points at 80-90 % top-1).
DEFAULT_MAX_DROP = 0.5


class DeployOptions(Options):
    """What to choose from and how to measure. ``backends``, ``precisions``,
    ``int8_recipes`` and ``threads`` left out mean all that run here (see
    :func:`trimkit.deploy.plan_candidates`); ``batch_size`` is the batch the deployment
    is timed (and chosen) at; ``max_drop`` the points of the task's metric a candidate
    may lose against ONNX Runtime fp32 on ``samples`` images of the evaluation split (all
    of it by default); ``calibration_samples`` training images calibrate INT8. The timing
    fields are :class:`~trimkit.measure.RuntimeOptions`'s. ``queue`` (a PostgreSQL URL)
    and ``device_name`` time the candidates on another device, through the benchmark
    workers of ``trimkit bench-worker``."""

    backends: list[str] | None = Field(default=None, min_length=1)
    precisions: list[Literal["fp32", "bf16", "int8"]] | None = Field(default=None, min_length=1)
    int8_recipes: list[str] | None = Field(default=None, min_length=1)
    threads: list[int] | None = Field(default=None, min_length=1)
    batch_size: int = Field(default=1, ge=1)
    max_drop: float = DEFAULT_MAX_DROP
    samples: int | None = Field(default=None, ge=1)
    calibration_samples: int = Field(default=300, ge=1)
    warmup: int = Field(default=10, ge=1)
    min_time_s: float = Field(default=1.0, gt=0.0)
    min_iters: int = Field(default=10, ge=1)
    max_iters: int = Field(default=10_000, ge=1)
    queue: str | None = None
    device_name: str | None = None
    remote_timeout_s: float = Field(default=600.0, gt=0.0)

    @field_validator("backends")
    @classmethod
    def _known_runtimes(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if name not in RUNTIMES:
                raise ValueError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)} (torch is not a "
                                 "deployment runtime: a deployment runs without the model's Python code)")
        return value

    @field_validator("int8_recipes")
    @classmethod
    def _known_recipes(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if name not in INT8_RECIPES:
                raise ValueError(f"unknown INT8 recipe {name!r}; choose from {', '.join(INT8_RECIPES)}")
        return value

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(count < 1 for count in value):
            raise ValueError(f"each thread count must be at least 1, got {value}")
        return value

    @field_validator("max_drop")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a number of points; give e.g. 0.5")
        return value

    def timing(self) -> RuntimeOptions:
        """The timing loop's settings, as every timed call of trimkit takes them."""
        return RuntimeOptions(warmup=self.warmup, min_time_s=self.min_time_s, min_iters=self.min_iters,
                              max_iters=self.max_iters)
