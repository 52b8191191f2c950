"""The model zoo: ``create(name, ...)`` over a registry filled by one file per family, by
packages' ``trimkit.models`` entry points, and models of the user's own named by their
factory (``from_factory("mynet:MyNet", classes=7)``).

Each model made here remembers where it came from (:func:`origin`), so that
``trimkit.save`` can record how to rebuild it without pickling any class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trimkit.errors import TrimkitError
from trimkit.models import (deeplabv3, densenet, fcn, lenet, lraspp, mobilenetv2, resnet,  # noqa: F401  (the zoo)
                            resnet_cifar, siamfc, vgg_bonsai)
from trimkit.models._factory import FACTORY_HELP, looks_like_factory, parse_factory
from trimkit.models._origin import ModelOrigin, Normalization, origin, record_input, set_origin
from trimkit.models._registry import ENTRY_POINTS, ModelSpec, get_spec, names, register

__all__ = ["ENTRY_POINTS", "FACTORY_HELP", "ModelOrigin", "ModelSpec", "create", "from_factory",
           "looks_like_factory", "names", "origin", "parse_factory", "record_input", "register", "set_origin",
           "spec"]


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
    return set_origin(model, ModelOrigin(name, arguments))


def from_factory(factory: str, *, input_shape: tuple[int, ...] | None = None,
                 normalization: Normalization | None = None, search: tuple[str, ...] = (), **kwargs: Any
                 ) -> nn.Module:
    """A model of your own: ``factory`` names the function or class that builds it
    (``mynet:MyNet`` or ``path/to/mynet.py:MyNet``, optionally with keyword literals:
    ``mynet:MyNet(classes=7)``), called with ``kwargs``. ``input_shape`` (C, H, W) and
    ``normalization`` say how it is fed, where the data it is trained on does not (a
    model's own ``input_shape`` attribute serves too). The working folder, then the
    ``search`` folders, are where its module is looked for."""
    from trimkit.models._factory import build

    target, given = parse_factory(factory)
    return build(target, {**given, **kwargs}, shape=input_shape, mean_std=normalization, search=search)
