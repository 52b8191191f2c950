"""Pruning: ``structured`` removes filters and neurons for real, verified cut by cut.

Criteria live in :mod:`trimkit.prune.criteria`; add your own with
``trimkit.prune.register_criterion(name, function)``.
"""

from trimkit.prune import criteria
from trimkit.prune._result import FrozenGroup, LayerChange, PruneResult
from trimkit.prune.criteria import register as register_criterion
from trimkit.prune.structured import structured

__all__ = ["FrozenGroup", "LayerChange", "PruneResult", "criteria", "register_criterion", "structured"]
