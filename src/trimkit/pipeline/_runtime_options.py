"""Options of a timed run on a runtime backend, shared by ``measure``, ``compare`` and
``trimkit bench``: backend and precision names are checked against the backends
themselves, and precisions are spelled as records spell them (``fp32``, ``bf16``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from trimkit import measure
from trimkit.errors import TrimkitError
from trimkit.measure._backend import check_precision
from trimkit.pipeline._registry import StageOptions
from trimkit.record import precision_name


def _known_backend(value: str) -> str:
    try:
        measure.get_backend(value)
    except TrimkitError as error:
        raise ValueError(str(error)) from None
    return value


def _known_precision(value: str) -> str:
    try:
        return precision_name(check_precision(value))
    except TrimkitError as error:
        raise ValueError(str(error)) from None


class RuntimeOptions(StageOptions):
    backend: Annotated[str, AfterValidator(_known_backend)] = "onnxruntime"
    batch_sizes: list[int] = Field(default_factory=lambda: [1], min_length=1)
    threads: int | None = Field(default=None, ge=1)
    precision: Annotated[str, AfterValidator(_known_precision)] = "auto"
    min_time_s: float = Field(default=1.0, gt=0.0)

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value):
            raise ValueError(f"each must be >= 1, got {value}")
        return value
