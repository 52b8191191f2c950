"""Pruning: ``structured`` removes filters and neurons for real, verified cut by cut;
``unstructured`` masks single weights (random, layer, global) and ``remove_dead``
removes the neurons its masks left without inputs or outputs;
``threshold_function``, ``compare_criteria`` and ``sensitivity`` explore how much to
prune, with which criterion, where.

Criteria live in :mod:`trimkit.prune.criteria`; add your own with
``trimkit.prune.register_criterion(name, function)``.
"""

from trimkit._sparse_size import SparseSize, sparse_size
from trimkit.prune import criteria
from trimkit.prune._dead import DeadRemoval, KeptDead, remove_dead
from trimkit.prune._evaluation import CachedEvaluation
from trimkit.prune._budget import BudgetOutcome, PruneTarget
from trimkit.prune._budget_cut import latency_table
from trimkit.prune._options import CutOptions
from trimkit.prune._result import FrozenGroup, LayerChange, PruneResult
from trimkit.prune.criteria import register as register_criterion
from trimkit.prune.explore import (CriteriaComparison, ThresholdCurve, ThresholdPoint, area_under_curve,
                                   compare_criteria, recommend_threshold, threshold_function)
from trimkit.prune.sensitivity import SensitivityResult, group_by_sensitivity, sensitivity, suggest_ratios
from trimkit.prune.structured import structured
from trimkit.prune.unstructured import LayerSparsity, UnstructuredResult, nonzero_parameters, unstructured

__all__ = [
    "BudgetOutcome",
    "CachedEvaluation",
    "CriteriaComparison",
    "CutOptions",
    "DeadRemoval",
    "FrozenGroup",
    "KeptDead",
    "LayerChange",
    "LayerSparsity",
    "PruneResult",
    "PruneTarget",
    "SensitivityResult",
    "SparseSize",
    "ThresholdCurve",
    "ThresholdPoint",
    "UnstructuredResult",
    "area_under_curve",
    "compare_criteria",
    "criteria",
    "group_by_sensitivity",
    "latency_table",
    "nonzero_parameters",
    "recommend_threshold",
    "register_criterion",
    "remove_dead",
    "sensitivity",
    "sparse_size",
    "structured",
    "suggest_ratios",
    "threshold_function",
    "unstructured",
]
