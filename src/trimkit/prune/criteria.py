"""Criterion functions: one score per filter (or neuron), higher = more valuable.

A weight criterion is a plain function of the (H, D) view of a layer's weights: H
filters or neurons, D = k1*k2*I for a convolution, I for a dense layer (Bonsai seed,
section 3.2). A data criterion also sees the layer's response to a calibration batch
(N, H, ...) and, for ``taylor``, the loss gradient with respect to that response.
The response is taken after the layer's batch norm when one follows it directly.

A group criterion (``group_l1``) applies a weight criterion to every layer that a
coupled group's channels touch, as Torch-Pruning's group importance does: the
producers' filters, the consumers' input-channel slices and the norm layers' scales,
summed per channel.

Users add their own with :func:`register`, or pass a callable as ``criterion=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from trimkit._registry import Registry
from trimkit.errors import TrimkitError

WeightCriterion = Callable[[torch.Tensor], torch.Tensor]
DataCriterion = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    """A named criterion. ``needs`` is "weights", "activations" or "gradients"."""

    name: str
    function: Callable[..., torch.Tensor]
    needs: str = "weights"

    @property
    def needs_data(self) -> bool:
        return self.needs in ("activations", "gradients")


NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NEEDS = ("weights", "group", "activations", "gradients")
CRITERIA: Registry[Criterion] = Registry("criterion", "criteria")


def register(name: str, function: Callable[..., torch.Tensor], needs: str = "weights", *,
             replace: bool = False) -> Criterion:
    """Add a criterion. Weight criteria take the (H, D) matrix; data criteria take
    ``(weights, response, gradient)`` with response and gradient shaped (N, H, ...); a
    group criterion is a weight criterion applied to every member of the group. Whether
    it needs a calibration batch (``needs_data``) follows from ``needs``."""
    if needs not in NEEDS:
        raise TrimkitError(f"criterion {name!r}: needs must be one of {', '.join(NEEDS)}, got {needs!r}")
    return CRITERIA.register(name, Criterion(name, function, needs), replace=replace)


def get(criterion: str | Callable[..., torch.Tensor] | Criterion) -> Criterion:
    """Look a criterion up by name; a bare callable is taken as a weight criterion."""
    if isinstance(criterion, Criterion):
        return criterion
    if callable(criterion):
        return Criterion(getattr(criterion, "__name__", "custom"), criterion, "weights")
    return CRITERIA.get(criterion)


def names() -> list[str]:
    return sorted(CRITERIA.names())


def channel_matrix(module: nn.Module, direction: str) -> torch.Tensor | None:
    """One row per output (``direction="out"``) or input channel of ``module``: the
    weights that channel owns. Grouped and transposed convolutions store their
    channels on other axes; this finds them. None for a module without such weights."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None
    weight = weight.detach().float()
    if isinstance(module, nn.modules.conv._ConvNd):
        groups = module.groups
        transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
        stored_first = "in" if transposed else "out"  # the axis the weight is stored by
        if direction == stored_first:
            return weight.reshape(weight.shape[0], -1)
        # (groups * a, b, k...) -> rows over the b axis, group by group
        a, b = weight.shape[0] // groups, weight.shape[1]
        return weight.reshape(groups, a, b, -1).permute(0, 2, 1, 3).reshape(groups * b, -1)
    if isinstance(module, nn.Linear):
        return weight if direction == "out" else weight.t()
    if isinstance(module, NORM_LAYERS) and weight.dim() == 1:  # per-channel scale
        return weight.abs().reshape(-1, 1)
    return None


def l1(weights: torch.Tensor) -> torch.Tensor:
    """Sum of absolute weights of each filter (Li et al. 2017)."""
    return weights.abs().sum(dim=1)


def l2(weights: torch.Tensor) -> torch.Tensor:
    return weights.pow(2).sum(dim=1).sqrt()


def std(weights: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each filter's weights (Bonsai)."""
    return weights.std(dim=1, unbiased=False)


def value_range(weights: torch.Tensor) -> torch.Tensor:
    """Largest minus smallest weight of each filter (Bonsai)."""
    return weights.max(dim=1).values - weights.min(dim=1).values


def mean_abs(weights: torch.Tensor) -> torch.Tensor:
    return weights.abs().mean(dim=1)


def max_abs(weights: torch.Tensor) -> torch.Tensor:
    return weights.abs().max(dim=1).values


def random_scores(weights: torch.Tensor) -> torch.Tensor:
    """Uniform random scores, seeded by the weights themselves so a run repeats."""
    seed = int(weights.abs().sum().item() * 1e6) % (2**31)
    return torch.rand(weights.shape[0], generator=torch.Generator().manual_seed(seed))


def _per_channel(tensor: torch.Tensor) -> torch.Tensor:
    """(N, H, ...) -> (H, N * ...) so statistics run over samples and positions."""
    return tensor.detach().float().transpose(0, 1).reshape(tensor.shape[1], -1)


def mean_activation(weights: torch.Tensor, response: torch.Tensor, gradient: torch.Tensor | None) -> torch.Tensor:
    """Mean of the rectified response of each channel."""
    return _per_channel(response).clamp_min(0).mean(dim=1)


def apoz(weights: torch.Tensor, response: torch.Tensor, gradient: torch.Tensor | None) -> torch.Tensor:
    """1 - average percentage of zeros after ReLU (Hu et al. 2016): fewer zeros, more value."""
    return 1.0 - (_per_channel(response) <= 0).float().mean(dim=1)


def taylor(weights: torch.Tensor, response: torch.Tensor, gradient: torch.Tensor | None) -> torch.Tensor:
    """First-order Taylor estimate of the loss change when a channel is removed
    (Molchanov et al. 2017): |mean over samples and positions of response * gradient|."""
    if gradient is None:
        raise TrimkitError("criterion 'taylor' needs labels: pass calibration=(inputs, labels)")
    product = _per_channel(response) * _per_channel(gradient)
    return product.mean(dim=1).abs()


for _name, _function in (("l1", l1), ("l2", l2), ("std", std), ("range", value_range), ("mean_abs", mean_abs),
                         ("max_abs", max_abs), ("random", random_scores)):
    register(_name, _function)
register("group_l1", l1, needs="group")
register("mean_activation", mean_activation, needs="activations")
register("apoz", apoz, needs="activations")
register("taylor", taylor, needs="gradients")
