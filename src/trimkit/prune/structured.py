"""Structured pruning the Combine way (Bonsai seed, Algorithm 1), on any CNN.

Score, select, cut, verify, each in its own module: ``_scoring`` turns a criterion
into group scores, ``_selection`` chooses channels, ``_graph`` finds the groups and
cuts them, ``_verify`` checks every cut against the original with the same channels
zeroed, and ``_session`` holds them together for one model. A cut that fails its check is undone and its group frozen, so the model
returned always runs and always equals a channel-masked original.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure._profile import ExampleInputs, as_input_tuple
from trimkit.prune import criteria
from trimkit.prune._graph import WEIGHT_LAYERS, ChannelGroup
from trimkit.prune._result import PruneResult
from trimkit.prune._scoring import NORMALIZATIONS, Calibration, GroupScorer
from trimkit.prune._selection import (
    below_threshold,
    enforce_keep_rules,
    global_cutoff,
    global_lowest,
    lowest_fraction,
)
from trimkit.prune._session import PruningSession

MODES = ("static", "progressive")
SCOPES = ("layer", "global")
LAYER_KINDS = ("conv", "dense", "both")


def structured(
    model: nn.Module,
    example_inputs: ExampleInputs,
    *,
    criterion: str | Callable[..., torch.Tensor] = "l1",
    threshold: float | None = None,
    ratio: float | Mapping[str, float] | None = None,
    scope: str = "layer",
    layers: str | Sequence[str] = "conv",
    mode: str = "progressive",
    normalize: str | None = None,
    round_to: int | None = None,
    ignore: Sequence[str | nn.Module] = (),
    calibration: torch.Tensor | tuple | None = None,
    verify: bool = True,
) -> PruneResult:
    """Remove filters and neurons from a copy of ``model``; the original is untouched.

    Say how much with ``threshold`` (Combine: a channel goes when its normalised score
    is below it) or ``ratio`` (a fraction per group; a dict maps layer names or glob
    patterns to fractions; with ``scope="global"`` one ranking over all groups).
    ``normalize`` defaults to ``rank`` (so one threshold serves every layer), and to
    ``mean`` (each layer's scores over their mean, as Torch-Pruning's global ranking
    does) for a global ranking, where within-layer ranks would be uniform.

    ``mode="static"`` scores every group on the original before any removal;
    ``"progressive"`` visits groups in execution order and scores each after the
    groups before it were cut, so shrunken inputs change its scores. A progressive
    global ranking fixes its cut-off score from the static scores.

    The output layer is never pruned; each group keeps at least its best channel and,
    with ``round_to=k``, a multiple of k channels. Data criteria (``mean_activation``,
    ``apoz``, ``taylor``) need ``calibration``: inputs, or (inputs, labels).
    """
    chosen = criteria.get(criterion)
    normalize = _resolve_normalize(normalize, scope, threshold, ratio, mode, layers, round_to)
    session = PruningSession(model, example_inputs, verify=verify)
    candidates = session.candidates(lambda group: _selected(group, layers, ignore))
    scorer = GroupScorer(session.graph, chosen, normalize, _calibration(calibration))
    plan = _Plan(threshold, ratio, scope, mode, round_to, candidates, scorer)
    for group in candidates:
        removal = plan.removal(group)
        if removal:
            session.cut(group, removal)
    return session.result()


class _Plan:
    """Decides each group's removal: from precomputed scores (static, and global
    rankings) or from scores computed when the group's turn comes (progressive)."""

    def __init__(self, threshold, ratio, scope, mode, round_to, groups: list[ChannelGroup], scorer: GroupScorer):
        self.threshold, self.ratio, self.scope, self.mode, self.round_to = threshold, ratio, scope, mode, round_to
        self.scorer = scorer
        self.static_scores: dict[str, torch.Tensor] = {}
        self.precomputed: dict[str, list[int]] = {}
        if mode == "static" or scope == "global":
            self.static_scores = {g.name: scorer.scores(g) for g in groups
                                  if threshold is not None or scope == "global" or _ratio_for(g, ratio)}
        if scope == "global" and ratio is not None:
            ordered = [self.static_scores[g.name] for g in groups]
            if mode == "static":
                self.precomputed = dict(zip((g.name for g in groups), global_lowest(ordered, float(ratio))))
            else:
                self.threshold = global_cutoff(ordered, float(ratio)) if ordered else 0.0

    def removal(self, group: ChannelGroup) -> list[int]:
        if self.threshold is None and group.name not in self.precomputed and not _ratio_for(group, self.ratio):
            return []
        if self.mode == "static":
            scores = self.static_scores[group.name]
        else:
            scores = self.scorer.scores(group)
        if group.name in self.precomputed:
            removal = self.precomputed[group.name]
        elif self.threshold is not None:
            removal = below_threshold(scores, self.threshold)
        else:
            removal = lowest_fraction(scores, _ratio_for(group, self.ratio))
        if not removal:
            return []
        return enforce_keep_rules(scores, removal, self.round_to, self.scorer.graph.blocks(group))


def _selected(group: ChannelGroup, layers: str | Sequence[str], ignore: Sequence[str | nn.Module]) -> bool:
    graph_modules = [group.root]
    names = group.producers
    ignored_names = [i for i in ignore if isinstance(i, str)]
    ignored_modules = [i for i in ignore if isinstance(i, nn.Module)]
    if any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in ignored_names):
        return False
    if any(m is i for m in graph_modules for i in ignored_modules):
        return False
    if isinstance(layers, str):
        kinds = {"conv": (nn.modules.conv._ConvNd,), "dense": (nn.Linear,), "both": WEIGHT_LAYERS}[layers]
        return isinstance(group.root, kinds)
    return any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in layers)


def _ratio_for(group: ChannelGroup, ratio: float | Mapping[str, float]) -> float:
    if not isinstance(ratio, Mapping):
        return float(ratio)
    for pattern, value in ratio.items():
        if any(fnmatch.fnmatchcase(name, pattern) for name in group.producers):
            return float(value)
    return 0.0


def _calibration(calibration) -> Calibration | None:
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


def _resolve_normalize(normalize, scope, threshold, ratio, mode, layers, round_to) -> str:
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
