"""Compression schedules in Distiller's style (edge seed, section 3.4.2): named pruners
and lr schedulers, and policies that fire them by epoch of a training stage.

A policy fires at ``epochs: [0, 3]``, or from ``starting_epoch`` up to (not including)
``ending_epoch`` every ``frequency`` epochs. A ``one_shot`` pruner cuts by its ratio or
threshold each time it fires; an ``agp`` pruner (Zhu & Gupta 2017, automated gradual
pruning) raises the fraction of channels removed from ``initial_sparsity`` to
``final_sparsity`` along a cubic ramp over its firings, each step a verified structured
cut of the model as it then is. An lr scheduler multiplies the learning rate by
``gamma`` at the end of each epoch it fires in (``exponential``), or every
``step_size`` firings (``step``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trimkit.pipeline._prune_options import CalibratedCut


class PrunerSpec(CalibratedCut):
    kind: Literal["one_shot", "agp"] = "one_shot"
    initial_sparsity: float = Field(default=0.0, ge=0.0, lt=1.0)
    final_sparsity: float | None = Field(default=None, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _how_much(self) -> PrunerSpec:
        if self.kind == "agp":
            if self.final_sparsity is None:
                raise ValueError("an agp pruner needs final_sparsity (the fraction of channels removed at the end)")
            if self.ratio is not None or self.threshold is not None:
                raise ValueError("an agp pruner sets its own ratio from initial_sparsity and final_sparsity; "
                                 "drop ratio and threshold")
            if self.final_sparsity < self.initial_sparsity:
                raise ValueError(f"final_sparsity {self.final_sparsity} is below initial_sparsity "
                                 f"{self.initial_sparsity}")
        elif (self.ratio is None) == (self.threshold is None):
            raise ValueError("a one_shot pruner needs exactly one of ratio or threshold")
        return self


class LrSchedulerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["exponential", "step"] = "exponential"
    gamma: float = Field(default=0.95, gt=0.0, le=1.0)
    step_size: int = Field(default=1, ge=1)


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pruner: str | None = None
    lr_scheduler: str | None = None
    epochs: list[int] | None = None
    starting_epoch: int | None = Field(default=None, ge=0)
    ending_epoch: int | None = Field(default=None, ge=1)
    frequency: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _one_thing_one_timing(self) -> PolicySpec:
        if (self.pruner is None) == (self.lr_scheduler is None):
            raise ValueError("a policy fires exactly one of pruner: NAME or lr_scheduler: NAME")
        if self.epochs is not None and (self.starting_epoch is not None or self.ending_epoch is not None):
            raise ValueError("give epochs: [...] or starting_epoch/ending_epoch, not both")
        if self.epochs is None and (self.starting_epoch is None or self.ending_epoch is None):
            raise ValueError("give epochs: [...], or both starting_epoch and ending_epoch")
        if self.epochs is not None and (not self.epochs or any(e < 0 for e in self.epochs)):
            raise ValueError(f"epochs {self.epochs} must be a non-empty list of epochs >= 0")
        if self.starting_epoch is not None and self.ending_epoch is not None \
                and self.ending_epoch <= self.starting_epoch:
            raise ValueError(f"ending_epoch {self.ending_epoch} must be after starting_epoch {self.starting_epoch}")
        return self

    def firing_epochs(self) -> list[int]:
        if self.epochs is not None:
            return sorted(set(self.epochs))
        return list(range(self.starting_epoch, self.ending_epoch, self.frequency))  # type: ignore[arg-type]

    @property
    def last_epoch(self) -> int:
        return self.firing_epochs()[-1]


def agp_sparsity(initial: float, final: float, step: int, steps: int) -> float:
    """Zhu & Gupta's cubic ramp: the sparsity after firing ``step`` of ``steps`` (0-based);
    the last firing reaches ``final``."""
    if steps <= 1:
        return final
    progress = step / (steps - 1)
    return final + (initial - final) * (1.0 - progress) ** 3


def step_ratio(current: float, target: float) -> float:
    """The fraction of the channels left now to remove so that ``target`` of the original
    channels are gone, when ``current`` already are."""
    if target <= current:
        return 0.0
    return (target - current) / (1.0 - current)


def lr_factor(epoch: int, schedulers: dict[str, LrSchedulerSpec], policies: list[PolicySpec]) -> float:
    """The product of every lr scheduler's decays that fired at the end of epochs before ``epoch``."""
    factor = 1.0
    for policy in policies:
        if policy.lr_scheduler is None:
            continue
        spec = schedulers[policy.lr_scheduler]
        fired = sum(1 for e in policy.firing_epochs() if e < epoch)
        steps = fired if spec.kind == "exponential" else fired // spec.step_size
        factor *= spec.gamma ** steps
    return factor
