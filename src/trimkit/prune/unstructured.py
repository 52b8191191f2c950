"""Unstructured pruning (robots seed, section 3.1): zero individual weights of conv and
dense layers, by one of three rules, and keep them zero.

- ``random``: x % of all selected weights, chosen uniformly at random over the model.
- ``layer`` (class-uniform): the x % smallest |w| of each layer.
- ``global`` (class-blind): the x % smallest |w| over all selected layers together.

Counts are exact: ``round(x * n)`` weights go, per layer for ``layer``, over the model
otherwise; ties in |w| are broken by position. The masked copy keeps its architecture
(masks live beside it, see ``trimkit._masks``); :func:`trimkit.prune.remove_dead` then
removes for real the neurons and filters the masks left without inputs or outputs.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trimkit import _masks, models
from trimkit._sparse_size import SparseSize, sparse_size
from trimkit.errors import TrimkitError
from trimkit.measure._profile import ExampleInputs
from trimkit.prune._dead import DeadRemoval, remove_dead

METHODS = {"random": "random", "layer": "layer", "class-uniform": "layer", "uniform": "layer",
           "global": "global", "class-blind": "global", "blind": "global"}
WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass(frozen=True)
class LayerSparsity:
    """One weight tensor's counts after masking."""

    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.weights if self.weights else 0.0


@dataclass
class UnstructuredResult:
    """The masked copy (``model``, same architecture), the counts per layer, and, when
    example inputs were available, the model with dead neurons removed (``dead``)."""

    model: nn.Module
    method: str
    sparsity: float
    layers: dict[str, LayerSparsity]
    params: int
    nonzero_params: int
    size: SparseSize
    dead: DeadRemoval | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def zeros(self) -> int:
        return sum(layer.zeros for layer in self.layers.values())

    @property
    def params_after_removal(self) -> int | None:
        """Nonzero parameters once dead neurons are removed: the seed's Figure 4 count."""
        return None if self.dead is None else self.dead.nonzero_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "sparsity": self.sparsity,
            "params": self.params,
            "nonzero_params": self.nonzero_params,
            "zeros": self.zeros,
            "layers": {name: {"weights": c.weights, "zeros": c.zeros} for name, c in self.layers.items()},
            "size": self.size.to_dict(),
            "dead": None if self.dead is None else self.dead.to_dict(),
            "notes": list(self.notes),
        }


def unstructured(
    model: nn.Module,
    method: str = "global",
    sparsity: float = 0.5,
    *,
    include: str | Sequence[str] | None = None,
    skip: str | Sequence[str] | None = None,
    seed: int = 0,
    example_inputs: ExampleInputs | None = None,
    remove_dead_neurons: bool = True,
) -> UnstructuredResult:
    """Mask a copy of ``model``: ``sparsity`` of the weights of its conv and dense layers
    are set to zero by ``method`` and stay zero in :func:`trimkit.train.fit`, in saved
    files and through structured surgery. The original is untouched.

    ``include`` and ``skip`` are layer names or glob patterns (``features.*``); by
    default every conv and dense layer takes part, the first and the last included.
    Masks already on ``model`` are kept (a pruned weight stays pruned) and count toward
    the sparsity. With ``example_inputs`` (or for a zoo model, whose input shape is
    known) the dead neurons are also removed from a second copy, reported in ``dead``.
    """
    chosen = resolve_method(method)
    check_sparsity(sparsity)
    masked = copy.deepcopy(model)
    layers = select_layers(masked, include, skip)
    weights = {name: module.weight for name, module in layers.items()}
    existing = _masks.masks_of(masked)
    keep = _masks_for(chosen, weights, existing, sparsity, seed)
    _masks.set_masks(masked, {**existing, **keep})
    counts = {name: LayerSparsity(int(weights[name].numel()), int((~keep[f"{name}.weight"]).sum()))
              for name in layers}
    result = UnstructuredResult(
        model=masked, method=chosen, sparsity=float(sparsity), layers=counts,
        params=sum(p.numel() for p in masked.parameters()),
        nonzero_params=nonzero_parameters(masked), size=sparse_size(masked),
    )
    if remove_dead_neurons:
        inputs = example_inputs if example_inputs is not None else _zoo_inputs(masked)
        if inputs is None:
            result.notes.append("dead neurons not removed: pass example_inputs (the model is not from the zoo)")
        else:
            result.dead = remove_dead(masked, inputs)
    return result


def nonzero_parameters(model: nn.Module) -> int:
    """Parameters that are not exactly zero."""
    return int(sum(int(torch.count_nonzero(p.detach())) for p in model.parameters()))


def resolve_method(method: str) -> str:
    if method in METHODS:
        return METHODS[method]
    close = difflib.get_close_matches(str(method), list(METHODS), n=1, cutoff=0.4)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TrimkitError(f"unknown unstructured pruning method {method!r}; {hint}choose random, layer "
                       "(class-uniform) or global (class-blind)")


def check_sparsity(sparsity: float) -> None:
    if not isinstance(sparsity, (int, float)) or not 0.0 <= float(sparsity) < 1.0:
        raise TrimkitError(f"sparsity {sparsity!r} is not in [0, 1); give the fraction of weights to prune, "
                           "such as 0.5")


def select_layers(model: nn.Module, include: str | Sequence[str] | None,
                  skip: str | Sequence[str] | None) -> dict[str, nn.Module]:
    """The conv and dense layers ``include`` names (all by default) less those ``skip``
    names; a pattern that matches no such layer is an error."""
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, WEIGHT_LAYERS) and getattr(module, "weight", None) is not None}
    include_patterns, skip_patterns = _patterns(include), _patterns(skip)
    for flag, patterns in (("include", include_patterns), ("skip", skip_patterns)):
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in layers):
                close = difflib.get_close_matches(pattern, list(layers), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TrimkitError(f"{flag} pattern {pattern!r} matches no conv or dense layer{hint}; "
                                   f"layers are {', '.join(list(layers)[:6])}{', ...' if len(layers) > 6 else ''}")
    chosen = {name: module for name, module in layers.items()
              if (not include_patterns or any(fnmatch.fnmatchcase(name, p) for p in include_patterns))
              and not any(fnmatch.fnmatchcase(name, p) for p in skip_patterns)}
    if not chosen:
        raise TrimkitError("include and skip leave no conv or dense layer to prune; loosen them")
    return chosen


def _patterns(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


def _masks_for(method: str, weights: dict[str, torch.Tensor], existing: dict[str, torch.Tensor],
               sparsity: float, seed: int) -> dict[str, torch.Tensor]:
    """Kept-masks (True = kept) by parameter name. Weights an earlier mask pruned rank
    first, so they stay pruned and count toward the sparsity."""
    names = list(weights)
    flat = [weights[name].detach().abs().reshape(-1).float().cpu() for name in names]
    already = [~existing[f"{name}.weight"].reshape(-1) if f"{name}.weight" in existing
               else torch.zeros(t.numel(), dtype=torch.bool) for name, t in zip(names, flat)]
    if method == "layer":
        pruned = [_lowest(score, prior, round(sparsity * score.numel())) for score, prior in zip(flat, already)]
    else:
        if method == "random":
            generator = torch.Generator().manual_seed(seed)
            scores = torch.rand(sum(t.numel() for t in flat), generator=generator)
        else:
            scores = torch.cat(flat)
        everything = _lowest(scores, torch.cat(already), round(sparsity * scores.numel()))
        pruned = list(torch.split(everything, [t.numel() for t in flat]))
    return {f"{name}.weight": ~p.reshape(weights[name].shape) for name, p in zip(names, pruned)}


def _lowest(scores: torch.Tensor, prior: torch.Tensor, count: int) -> torch.Tensor:
    """A boolean mask of the ``count`` lowest scores (earlier-pruned ones first; ties by
    position), at least the earlier-pruned ones."""
    count = max(count, int(prior.sum()))
    ranked = torch.where(prior, torch.full_like(scores, -1.0), scores)
    order = torch.sort(ranked, stable=True).indices
    chosen = torch.zeros(scores.numel(), dtype=torch.bool)
    chosen[order[:count]] = True
    return chosen


def _zoo_inputs(model: nn.Module) -> torch.Tensor | None:
    origin = models.origin(model)
    shape = origin.input_shape() if origin is not None else None
    if shape is None:
        return None
    return torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
