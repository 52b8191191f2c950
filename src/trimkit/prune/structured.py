"""Structured pruning the Combine way (Bonsai seed, Algorithm 1), on any CNN.

Score, select, cut, verify, each in its own module: ``_scoring`` turns a criterion
into group scores, ``_selection`` chooses channels, ``_graph`` finds the groups and
cuts them, ``_verify`` checks every cut against the original with the same channels
zeroed, and ``_session`` holds them together for one model; ``_options`` checks the
arguments. A cut that fails its check is undone and its group frozen, so the model
returned always runs and always equals a channel-masked original.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure._profile import ExampleInputs
from trimkit.prune import criteria
from trimkit.prune._budget_cut import AutoRounding, cut_to_budget
from trimkit.prune._graph import ChannelGroup
from trimkit.prune._options import (CutOptions, check_patterns_match, ignored_names, parse_calibration, ratio_for,
                                    selects)
from trimkit.prune._result import PruneResult
from trimkit.prune._scoring import GroupScorer
from trimkit.prune._selection import (below_threshold, enforce_keep_rules, global_cutoff, global_lowest,
                                      lowest_fraction)
from trimkit.prune._session import PruningSession


def structured(
    model: nn.Module,
    example_inputs: ExampleInputs,
    options: CutOptions | None = None,
    *,
    calibration: torch.Tensor | tuple | None = None,
    verify: bool = True,
    ignore: Sequence[str | nn.Module] | None = None,
    progress: bool = False,
    **settings: Any,
) -> PruneResult:
    """Remove filters and neurons from a copy of ``model``; the original is untouched.

    ``options`` (a :class:`CutOptions`) say what goes; its fields may also be given as
    keywords (``ratio=0.5, scope="global"``), validated alike. Say how much with
    ``threshold`` (Combine: a channel goes when its normalised score is below it) or
    ``ratio`` (a fraction per group; a dict maps layer names or glob patterns to
    fractions; with ``scope="global"`` one ranking over all groups). ``normalize``
    defaults to ``rank`` (so one threshold serves every layer), and to ``mean`` (each
    layer's scores over their mean, as Torch-Pruning's global ranking does) for a global
    ranking, where within-layer ranks would be uniform. ``ignore`` takes layer names,
    globs or the modules themselves.

    ``mode="static"`` scores every group on the original before any removal;
    ``"progressive"`` visits groups in execution order and scores each after the
    groups before it were cut, so shrunken inputs change its scores. A progressive
    global ranking fixes its cut-off score from the static scores.

    ``target`` (a :class:`PruneTarget` or its fields) prunes to a budget instead:
    ``latency_ms`` or ``speedup`` on a runtime (``backend``, ``batch_size``, ``threads``),
    ``macs`` or ``params``; channels go across all groups where they cost the least
    importance per millisecond saved (the runtime's latency table, built and cached on
    first use), and the result is measured and corrected until it is within the budget
    (``result.budget`` says what was aimed at, predicted and measured).

    The output layer is never pruned; each group keeps at least its best channel and,
    with ``round_to=k``, a multiple of k channels; with ``round_to="auto"`` (the default
    when ``target`` names only a runtime) a count its kernels run fast. Data criteria (``mean_activation``,
    ``apoz``, ``taylor``) need ``calibration``: inputs, or (inputs, labels).
    """
    if ignore is not None:
        settings["ignore"] = ignored_names(model, ignore)
    options = CutOptions.of(options, **settings)
    if not options.budget and (options.threshold is None) == (options.ratio is None):
        raise TrimkitError("say how much to prune with exactly one of threshold=T, ratio=R or a target budget")
    chosen = criteria.get(options.criterion)
    session = PruningSession(model, example_inputs, verify=verify)
    candidates = session.candidates(lambda group: selects(group, options.layers, options.ignore))
    check_patterns_match(list(session.graph.groups()), candidates, options.layers, options.ratio, options.ignore)
    scorer = GroupScorer(session.graph, chosen, options.normalization, parse_calibration(calibration))
    if options.budget:
        outcome = cut_to_budget(session, candidates, scorer, options.target, progress)
        result = session.result()
        result.budget = outcome
        return result
    rounding = AutoRounding(session, candidates, options.target, progress) if options.rounding == "auto" else None
    plan = _Plan(options.threshold, options.ratio, options.scope, options.mode,
                 None if rounding else options.rounding, candidates, scorer, rounding)
    for group in candidates:
        removal = plan.removal(group)
        if removal:
            session.cut(group, removal)
    return session.result()


class _Plan:
    """Decides each group's removal: from precomputed scores (static, and global
    rankings) or from scores computed when the group's turn comes (progressive)."""

    def __init__(self, threshold, ratio, scope, mode, round_to, groups: list[ChannelGroup], scorer: GroupScorer,
                 rounding: AutoRounding | None = None):
        self.threshold, self.ratio, self.scope, self.mode, self.round_to = threshold, ratio, scope, mode, round_to
        self.scorer, self.rounding = scorer, rounding
        self.static_scores: dict[str, torch.Tensor] = {}
        self.precomputed: dict[str, list[int]] = {}
        if mode == "static" or scope == "global":
            self.static_scores = {g.name: scorer.scores(g) for g in groups
                                  if threshold is not None or scope == "global" or ratio_for(g, ratio)}
        if scope == "global" and ratio is not None:
            ordered = [self.static_scores[g.name] for g in groups]
            if mode == "static":
                self.precomputed = dict(zip((g.name for g in groups), global_lowest(ordered, float(ratio))))
            else:
                self.threshold = global_cutoff(ordered, float(ratio)) if ordered else 0.0

    def removal(self, group: ChannelGroup) -> list[int]:
        if self.threshold is None and group.name not in self.precomputed and not ratio_for(group, self.ratio):
            return []
        scores = self.static_scores[group.name] if self.mode == "static" else self.scorer.scores(group)
        if group.name in self.precomputed:
            removal = self.precomputed[group.name]
        elif self.threshold is not None:
            removal = below_threshold(scores, self.threshold)
        else:
            removal = lowest_fraction(scores, ratio_for(group, self.ratio))
        if not removal:
            return []
        if self.rounding is not None:
            removal = self.rounding.adjust(group, scores, removal)
        return enforce_keep_rules(scores, removal, self.round_to, self.scorer.graph.layout(group))
