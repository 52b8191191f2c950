"""Options of a structured cut, shared by the ``prune`` stage, the schedule's pruners
and ``trimkit prune``: one validation for the API, the CLI and recipes."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trimkit._registry import closest
from trimkit.pipeline._registry import StageOptions


def _criteria() -> tuple[str, ...]:
    from trimkit.prune import criteria

    return tuple(criteria.names())


class CutOptions(StageOptions):
    """How one structured cut chooses what to remove (see :func:`trimkit.prune.structured`)."""

    criterion: str = "l1"
    ratio: float | dict[str, float] | None = None
    threshold: float | None = None
    scope: Literal["layer", "global"] = "layer"
    layers: Literal["conv", "dense", "both"] | list[str] = "conv"
    mode: Literal["static", "progressive"] = "progressive"
    normalize: Literal["rank", "percentile", "max", "mean", "none"] | None = None
    round_to: int | None = Field(default=None, ge=1)
    ignore: list[str] = Field(default_factory=list)
    calibration_samples: int = Field(default=256, ge=1)

    @field_validator("criterion")
    @classmethod
    def _known_criterion(cls, value: str) -> str:
        names = _criteria()
        if value not in names:
            raise ValueError(f"unknown criterion {value!r}{closest(value, names)}; criteria: {', '.join(names)}")
        return value

    @field_validator("ratio")
    @classmethod
    def _ratio_in_range(cls, value: float | dict[str, float] | None) -> Any:
        values = value.values() if isinstance(value, dict) else ([] if value is None else [value])
        for item in values:
            if not (math.isfinite(item) and 0.0 <= item < 1.0):
                raise ValueError(f"{item} is not in [0, 1): a ratio is the fraction of channels removed")
        if isinstance(value, dict) and not value:
            raise ValueError("an empty dict prunes nothing; give PATTERN: RATIO pairs or one number")
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold_finite(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{value} is not a threshold; give a finite number >= 0")
        return value

    @model_validator(mode="after")
    def _global_needs_one_ratio(self) -> CutOptions:
        if self.scope == "global" and isinstance(self.ratio, dict):
            raise ValueError("ratio: scope 'global' ranks all groups together; give one ratio, not a dict")
        if self.scope == "global" and self.normalize in ("rank", "percentile"):
            raise ValueError(f"normalize {self.normalize!r} makes every layer alike under scope 'global'; "
                             "use max, mean or none")
        return self

    def structured_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`trimkit.prune.structured`."""
        return {"criterion": self.criterion, "ratio": self.ratio, "threshold": self.threshold, "scope": self.scope,
                "layers": self.layers, "mode": self.mode, "normalize": self.normalize, "round_to": self.round_to,
                "ignore": list(self.ignore)}
