"""The model zoo: ``create(name, ...)`` over a registry filled by one file per family.

Each model made here remembers where it came from (:func:`origin`), so that
``trimkit.save`` can record how to rebuild it without pickling any class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from trimkit.errors import TrimkitError
from trimkit.models import (  # noqa: F401  (fill the registry)  # noqa: F401  (segmentation families)
    deeplabv3,
    densenet,
    fcn,
    lenet,
    lraspp,
    mobilenetv2,
    resnet,
    resnet_cifar,
    siamfc,
    vgg_bonsai,
)
from trimkit.models._registry import ModelSpec, get_spec, names, register

__all__ = ["ModelOrigin", "ModelSpec", "create", "names", "origin", "register", "spec"]

_ORIGIN_ATTRIBUTE = "trimkit_origin"


@dataclass(frozen=True)
class ModelOrigin:
    """The zoo name and arguments a model was built from; JSON-serialisable."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.name)

    @property
    def in_channels(self) -> int:
        return int(self.kwargs.get("in_channels", self.spec.in_channels))

    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.input_shape(self.in_channels)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.spec.normalization(self.in_channels)


def spec(name: str) -> ModelSpec:
    """What the zoo knows about model ``name``: input shape, normalisation, default data."""
    return get_spec(name)


def create(name: str, num_classes: int = 10, in_channels: int | None = None, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with fresh weights.

    ``in_channels`` defaults to the model's usual input (1 for the MNIST models, 3 for
    the CIFAR ones); the input size follows from it (28x28 for 1 channel, 32x32 for 3).
    """
    model_spec = get_spec(name)
    if int(num_classes) < 1:
        raise TrimkitError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels is not None and int(in_channels) < 1:
        raise TrimkitError(f"in_channels must be at least 1, got {in_channels}")
    arguments = {"num_classes": int(num_classes),
                 "in_channels": int(in_channels if in_channels is not None else model_spec.in_channels),
                 **kwargs}
    model = model_spec.builder(**arguments)
    setattr(model, _ORIGIN_ATTRIBUTE, ModelOrigin(name, arguments))
    return model


def origin(model: nn.Module) -> ModelOrigin | None:
    """Where ``model`` came from in the zoo, or None for a model built elsewhere."""
    return getattr(model, _ORIGIN_ATTRIBUTE, None)
