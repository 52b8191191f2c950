"""The options of a stage that times models on a runtime (``measure``, ``compare``):
:class:`trimkit.measure.RuntimeOptions` at each of ``batch_sizes``."""

from __future__ import annotations

from pydantic import Field, field_validator

from trimkit.measure import RuntimeOptions
from trimkit.pipeline._registry import StageOptions


class RuntimeStageOptions(RuntimeOptions, StageOptions):
    batch_sizes: list[int] = Field(default_factory=lambda: [1], min_length=1)

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value):
            raise ValueError(f"each must be >= 1, got {value}")
        return value
