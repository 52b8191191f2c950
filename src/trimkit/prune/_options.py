"""The options of a pruning call, checked and resolved: which groups it selects, what
ratio each gets, the calibration batch, the normalisation."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from trimkit._options import Options
from trimkit._registry import closest
from trimkit.errors import TrimkitError
from trimkit.measure._profile import as_input_tuple
from trimkit.prune import criteria
from trimkit.prune._budget import PruneTarget
from trimkit.prune._graph import WEIGHT_LAYERS, ChannelGroup
from trimkit.prune._scoring import Calibration

MODES = ("static", "progressive")
SCOPES = ("layer", "global")
LAYER_KINDS = ("conv", "dense", "both")


class CutOptions(Options):
    """How one structured cut chooses what to remove (see :func:`trimkit.prune.structured`):
    the criterion (a registered name, or a function of the (H, D) weights), how much
    (``ratio``, ``threshold``, or a ``target`` budget: latency or speed-up on a runtime,
    MACs, parameters), over which groups, and how scores are normalised. ``round_to``
    keeps multiples of a number of channels, or with ``auto`` the counts the target
    runtime's kernels run fast (the default where ``target`` names a runtime only)."""

    criterion: Any = "l1"
    ratio: float | dict[str, float] | None = None
    threshold: float | None = None
    scope: Literal["layer", "global"] = "layer"
    layers: Literal["conv", "dense", "both"] | list[str] = "conv"
    mode: Literal["static", "progressive"] = "progressive"
    normalize: Literal["rank", "percentile", "max", "mean", "none"] | None = None
    round_to: int | Literal["auto"] | None = None
    ignore: list[str] = Field(default_factory=list)
    target: PruneTarget | None = None

    @field_validator("criterion")
    @classmethod
    def _known_criterion(cls, value: Any) -> Any:
        if callable(value) or isinstance(value, criteria.Criterion):
            return value
        names = criteria.names()
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

    @field_validator("round_to")
    @classmethod
    def _round_to_positive(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"{value} is not a channel multiple; give an integer >= 1, or auto")
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold_finite(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{value} is not a threshold; give a finite number >= 0")
        return value

    @field_validator("layers")
    @classmethod
    def _some_layers(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list selects no layer; give conv, dense, both, or layer names")
        return value

    @model_validator(mode="after")
    def _global_ranking(self) -> CutOptions:
        if self.scope == "global" and isinstance(self.ratio, dict):
            raise ValueError("ratio: scope 'global' ranks all groups together; give one ratio, not a dict")
        if self.round_to == "auto" and self.target is None:
            raise ValueError("round_to auto takes its counts from the latency table of a runtime; name it "
                             "(target: {backend: onnxruntime, batch_size: 1} in a recipe, --backend in a command) "
                             "or give round_to a number")
        budget = self.target is not None and self.target.budget_kind is not None
        if budget and (self.ratio is not None or self.threshold is not None):
            raise ValueError(f"target {self.target.describe()} says how much to prune; give it or a "
                             f"{'ratio' if self.ratio is not None else 'threshold'}, not both")
        if self.scope == "global" and self.normalize in ("rank", "percentile"):
            raise ValueError(f"normalize {self.normalize!r} makes every layer's scores uniform, so a global ranking "
                             "would prune every layer alike; use max, mean or none with scope global")
        return self

    @property
    def normalization(self) -> str:
        """``normalize``, or its default: ``mean`` for a global ranking, else ``rank``."""
        if self.normalize is not None:
            return self.normalize
        return "mean" if self.scope == "global" or self.budget else "rank"

    @property
    def budget(self) -> bool:
        """Whether a target budget, not a ratio or threshold, says how much goes."""
        return self.target is not None and self.target.budget_kind is not None

    @property
    def rounding(self) -> int | str | None:
        """``round_to``, or ``auto`` where a target runtime is named and no budget is."""
        if self.round_to is None and self.target is not None and not self.budget:
            return "auto"
        return self.round_to

    def cut_settings(self) -> dict[str, Any]:
        """The fields of the cut (a subclass's own keys left out), as records show them."""
        return {name: getattr(self, name) for name in CutOptions.model_fields}


def ignored_names(model: nn.Module, ignore: Sequence[str | nn.Module]) -> list[str]:
    """Patterns for ``ignore``: names and globs as given, modules by their names in ``model``."""
    names = {module: name for name, module in model.named_modules()}
    patterns = []
    for item in ignore:
        if isinstance(item, nn.Module):
            if item not in names:
                raise TrimkitError(f"ignore= holds a {type(item).__name__} that is not part of the model")
            patterns.append(names[item])
        else:
            patterns.append(str(item))
    return patterns


def selects(group: ChannelGroup, layers: str | Sequence[str], ignore: Sequence[str] = ()) -> bool:
    """Whether a call with ``layers`` (a kind, or names and globs) and ``ignore`` (names
    and globs) prunes ``group``: by its first producer's kind, or by any producer's name."""
    names = group.producers
    if any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in ignore):
        return False
    if isinstance(layers, str):
        kinds = {"conv": (nn.modules.conv._ConvNd,), "dense": (nn.Linear,), "both": WEIGHT_LAYERS}[layers]
        return isinstance(group.root, kinds)
    return any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in layers)


def ratio_for(group: ChannelGroup, ratio: float | Mapping[str, float]) -> float:
    if not isinstance(ratio, Mapping):
        return float(ratio)
    for pattern, value in ratio.items():
        if any(fnmatch.fnmatchcase(name, pattern) for name in group.producers):
            return float(value)
    return 0.0


def parse_calibration(calibration) -> Calibration | None:
    if calibration is None:
        return None
    if isinstance(calibration, torch.Tensor):
        return Calibration((calibration,), None)
    items = tuple(calibration)
    last = items[-1]
    if len(items) >= 2 and isinstance(last, torch.Tensor) and not last.is_floating_point() and last.dim() == 1:
        inputs = items[0] if len(items) == 2 else items[:-1]
        return Calibration(as_input_tuple(inputs), last)
    return Calibration(as_input_tuple(items), None)


def check_patterns_match(prunable: Sequence[ChannelGroup], selected: Sequence[ChannelGroup],
                         layers: str | Sequence[str], ratio, ignore: Sequence[str]) -> None:
    """Every layer name or glob the caller gave must name something: a pattern that
    matches nothing is a typo, and would silently prune less (or nothing)."""
    names = [name for group in prunable for name in group.producers]
    shown = ", ".join(names[:8]) + (f" (and {len(names) - 8} more)" if len(names) > 8 else "")

    def unmatched(patterns: Sequence[str], groups: Sequence[ChannelGroup]) -> list[str]:
        return [pattern for pattern in patterns
                if not any(fnmatch.fnmatchcase(name, pattern) for group in groups for name in group.producers)]

    if not isinstance(layers, str):
        missing = unmatched(list(layers), prunable)
        if missing:
            raise TrimkitError(f"layers {', '.join(repr(m) for m in missing)} match no prunable layer; prunable "
                               f"layers: {shown}")
    missing = unmatched(list(ignore), prunable)
    if missing:
        raise TrimkitError(f"ignore {', '.join(repr(m) for m in missing)} match no prunable layer; prunable "
                           f"layers: {shown}")
    if isinstance(ratio, Mapping):
        missing = unmatched(list(ratio), selected)
        if missing:
            raise TrimkitError(f"ratio pattern {', '.join(repr(m) for m in missing)} matches no layer selected for "
                               f"pruning; prunable layers: {shown}")
