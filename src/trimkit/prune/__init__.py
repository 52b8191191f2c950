"""Pruning: ``structured`` removes filters and neurons for real, verified cut by cut;
``threshold_function``, ``compare_criteria`` and ``sensitivity`` explore how much to
prune, with which criterion, where.

Criteria live in :mod:`trimkit.prune.criteria`; add your own with
``trimkit.prune.register_criterion(name, function)``.
"""

from trimkit.prune import criteria
from trimkit.prune._evaluation import CachedEvaluation
from trimkit.prune._result import FrozenGroup, LayerChange, PruneResult
from trimkit.prune.criteria import register as register_criterion
from trimkit.prune.explore import (
    CriteriaComparison,
    ThresholdCurve,
    ThresholdPoint,
    area_under_curve,
    compare_criteria,
    recommend_threshold,
    threshold_function,
)
from trimkit.prune.sensitivity import SensitivityResult, group_by_sensitivity, sensitivity, suggest_ratios
from trimkit.prune.structured import structured

__all__ = [
    "CachedEvaluation",
    "CriteriaComparison",
    "FrozenGroup",
    "LayerChange",
    "PruneResult",
    "SensitivityResult",
    "ThresholdCurve",
    "ThresholdPoint",
    "area_under_curve",
    "compare_criteria",
    "criteria",
    "group_by_sensitivity",
    "recommend_threshold",
    "register_criterion",
    "sensitivity",
    "structured",
    "suggest_ratios",
    "threshold_function",
]
