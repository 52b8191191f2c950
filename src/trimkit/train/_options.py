"""The options of a training run, validated once for ``fit``, the training stages and
``trimkit train``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from trimkit._options import Options


class FitOptions(Options):
    """How ``fit`` trains: epochs, batch, optimiser (SGD with Nesterov momentum, Adam,
    AdamW), peak learning rate and its schedule (constant, step, cosine, exponential),
    weight decay, compute precision (``auto``: bf16 where native, else fp32) and
    augmentation."""

    epochs: int = Field(ge=0)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.05
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    schedule: Literal["constant", "step", "cosine", "exponential"] = "cosine"
    step_size: int = Field(default=30, ge=1)
    gamma: float = Field(default=0.1, gt=0.0, le=1.0)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    augment: bool = True

    @field_validator("lr")
    @classmethod
    def _lr_positive(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{value} is not a learning rate; give a finite number > 0")
        return value

    def fit_settings(self) -> dict[str, object]:
        """The fields ``fit`` reads (a subclass's own keys left out), as a checkpoint records them."""
        return {name: getattr(self, name) for name in FitOptions.model_fields}
