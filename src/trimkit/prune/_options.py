"""The options of a pruning call, checked and resolved: which groups it selects, what
ratio each gets, the calibration batch, the normalisation."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure._profile import as_input_tuple
from trimkit.prune._graph import WEIGHT_LAYERS, ChannelGroup
from trimkit.prune._scoring import NORMALIZATIONS, Calibration

MODES = ("static", "progressive")
SCOPES = ("layer", "global")
LAYER_KINDS = ("conv", "dense", "both")


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


def resolve_normalize(normalize, scope, threshold, ratio, mode, layers, round_to) -> str:
    if (threshold is None) == (ratio is None):
        raise TrimkitError("say how much to prune with exactly one of threshold=T or ratio=R")
    if mode not in MODES:
        raise TrimkitError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if scope not in SCOPES:
        raise TrimkitError(f"unknown scope {scope!r}; choose one of: {', '.join(SCOPES)}")
    if isinstance(layers, str) and layers not in LAYER_KINDS:
        raise TrimkitError(f"unknown layers {layers!r}; choose one of: {', '.join(LAYER_KINDS)}, or a list of names")
    if round_to is not None and round_to < 1:
        raise TrimkitError(f"round_to must be a positive integer, got {round_to}")
    ratios = ratio.values() if isinstance(ratio, Mapping) else ([] if ratio is None else [ratio])
    for value in ratios:
        if not 0.0 <= float(value) < 1.0:
            raise TrimkitError(f"ratio {value} is out of range; a ratio is the fraction removed, in [0, 1)")
    if scope == "global" and isinstance(ratio, Mapping):
        raise TrimkitError("scope='global' ranks all groups together; give one ratio, not a dict")
    if normalize is None:
        normalize = "mean" if scope == "global" else "rank"
    if normalize not in NORMALIZATIONS:
        raise TrimkitError(f"unknown normalize {normalize!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    if scope == "global" and normalize in ("rank", "percentile"):
        raise TrimkitError(
            f"normalize={normalize!r} makes every layer's scores uniform, so a global ranking would prune every "
            "layer alike; use normalize='max' or 'none' with scope='global'"
        )
    return normalize


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
