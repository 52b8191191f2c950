"""What a structured prune did: the smaller model and the figures that prove it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from trimkit.measure import Profile, from_profile
from trimkit.prune._budget import BudgetOutcome


@dataclass(frozen=True)
class LayerChange:
    original: int
    kept: int

    @property
    def removed(self) -> int:
        return self.original - self.kept


@dataclass(frozen=True)
class FrozenGroup:
    """A group left whole: its layers and why (the failed check, or the error)."""

    group: str
    layers: tuple[str, ...]
    reason: str


@dataclass
class PruneResult:
    model: nn.Module
    before: Profile
    after: Profile
    layers: dict[str, LayerChange] = field(default_factory=dict)
    removed_channels: dict[str, list[int]] = field(default_factory=dict)
    frozen: list[FrozenGroup] = field(default_factory=list)
    prunable_layers: list[str] = field(default_factory=list)
    groups_pruned: int = 0
    verified: bool = True
    seconds: float = 0.0
    budget: BudgetOutcome | None = None

    @property
    def params_before(self) -> int:
        return self.before.params

    @property
    def params_after(self) -> int:
        return self.after.params

    @property
    def macs_before(self) -> int:
        return self.before.macs

    @property
    def macs_after(self) -> int:
        return self.after.macs

    @property
    def flops_before(self) -> int:
        return self.before.flops

    @property
    def flops_after(self) -> int:
        return self.after.flops

    @property
    def filters_pruned(self) -> float:
        """Fraction of the filters and neurons of the prunable layers that were removed."""
        original = sum(self.layers[name].original for name in self.prunable_layers)
        removed = sum(self.layers[name].removed for name in self.prunable_layers)
        return removed / original if original else 0.0

    @property
    def params_pruned(self) -> float:
        return 1.0 - self.params_after / self.params_before if self.params_before else 0.0

    @property
    def macs_reduction(self) -> float:
        """How many times fewer MACs (2.0 = half)."""
        return self.macs_before / max(self.macs_after, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "flops_before": self.flops_before,
            "flops_after": self.flops_after,
            "frozen": [{"group": f.group, "layers": list(f.layers), "reason": f.reason} for f in self.frozen],
            "layers": {name: {"kept": c.kept, "removed": c.removed} for name, c in self.layers.items()},
            "groups_pruned": self.groups_pruned,
            "verified": self.verified,
            "seconds": self.seconds,
            "budget": None if self.budget is None else self.budget.to_dict(),
            "measurements": {"before": from_profile(self.before, "before").to_dict(),
                             "after": from_profile(self.after, "after", self.model).to_dict()},
        }
