"""Forward hooks that keep the outputs of named layers, so models need no changes."""

from __future__ import annotations

import difflib
from typing import Iterable

import torch
from torch import nn

from trimkit.errors import TrimkitError


def find_layer(model: nn.Module, name: str, role: str) -> nn.Module:
    """The submodule called ``name``, or a one-line error naming the closest layer."""
    layers = dict(model.named_modules())
    if name in layers and name != "":
        return layers[name]
    close = difflib.get_close_matches(name, [n for n in layers if n], n=1, cutoff=0.3)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise TrimkitError(f"the {role} has no layer {name!r}{hint} (layer names are as in model.named_modules())")


class FeatureTap:
    """Keeps the latest output of each named layer of ``model`` in ``features``.

    Use as a context manager, or call :meth:`close` to remove the hooks.
    """

    def __init__(self, model: nn.Module, names: Iterable[str], role: str) -> None:
        self.features: dict[str, torch.Tensor] = {}
        self._handles = []
        for name in dict.fromkeys(names):
            layer = find_layer(model, name, role)
            self._handles.append(layer.register_forward_hook(self._keeper(name)))

    def _keeper(self, name: str):
        def keep(module: nn.Module, inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                raise TrimkitError(f"layer {name!r} gives a {type(output).__name__}, not a tensor; choose a layer "
                                   "whose output is one feature map")
            self.features[name] = output

        return keep

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.features.clear()

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
