"""Weight masks of unstructured pruning: which weights are pruned, kept at exactly zero.

Masks live beside the model, not in it: a dict from parameter name to a boolean tensor
(True = kept) in the root module's ``trimkit_masks`` attribute. The state dict's keys
are untouched, so export, surgery and loading into a plain model work as for any
model; ``copy.deepcopy`` (structured surgery, quantisation) carries the dict along.

Three things keep pruned weights at zero: :class:`MaskKeeper` in the training loop
(gradients of pruned weights zeroed before the optimiser steps, the weights zeroed
again after, so momentum, weight decay and Adam's moments cannot revive them), the
``masks`` header section of model files (``capture``/``restore``), and
:func:`carry_through_cut` when structured surgery removes channels of a masked model.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from trimkit.errors import TrimkitError

ATTRIBUTE = "trimkit_masks"


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's masks by parameter name (empty when it has none)."""
    return dict(getattr(model, ATTRIBUTE, None) or {})


def set_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Attach ``masks`` (parameter name -> bool tensor, True = kept) to ``model`` and
    zero the pruned weights. Raise TrimkitError when a mask fits no parameter."""
    parameters = dict(model.named_parameters())
    checked = {}
    for name, mask in masks.items():
        parameter = parameters.get(name)
        if parameter is None or tuple(parameter.shape) != tuple(mask.shape):
            found = "no such parameter" if parameter is None else f"the parameter is {tuple(parameter.shape)}"
            raise TrimkitError(f"mask for {name} {tuple(mask.shape)} does not fit this model ({found}); "
                               "masks apply only to the architecture they were made for")
        checked[name] = mask.to(torch.bool).cpu()
    if checked:
        model.__dict__[ATTRIBUTE] = checked
        apply_masks(model)
    else:
        model.__dict__.pop(ATTRIBUTE, None)


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Set every pruned weight to exactly zero."""
    parameters = dict(model.named_parameters())
    for name, mask in masks_of(model).items():
        parameter = parameters[name]
        parameter.masked_fill_(~mask.to(parameter.device), 0.0)


class MaskKeeper:
    """Keeps a masked model's pruned weights at zero through optimiser steps.

    Built from the model being trained (it holds the parameter objects, so build it
    again when the model is replaced); for a model without masks it does nothing.
    """

    def __init__(self, model: nn.Module) -> None:
        parameters = dict(model.named_parameters())
        self.pairs: list[tuple[nn.Parameter, torch.Tensor]] = []
        for name, mask in masks_of(model).items():
            parameter = parameters.get(name)
            if parameter is None or parameter.shape != mask.shape:
                raise TrimkitError(f"the model's mask for {name} no longer fits its weights; re-apply unstructured "
                                   "pruning after changing the architecture")
            self.pairs.append((parameter, ~mask.to(parameter.device)))

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` with pruned weights' gradients zeroed before and the
        weights zeroed after."""
        for parameter, pruned in self.pairs:
            if parameter.grad is not None:
                parameter.grad.masked_fill_(pruned, 0.0)
        optimizer.step()
        with torch.no_grad():
            for parameter, pruned in self.pairs:
                parameter.masked_fill_(pruned, 0.0)


def carry_through_cut(model: nn.Module, removed: Mapping[tuple[str, str], Iterable[int]]) -> None:
    """Slice the masks of ``model`` after structured surgery removed channels.

    ``removed`` maps ``(module name, "out" | "in")`` to the channels (in the numbering
    the masks have) that surgery took away. A mask the slicing cannot follow (grouped
    convolutions) is rebuilt from the weights' zeros, which the mask made zero."""
    masks = masks_of(model)
    if not masks:
        return
    parameters = dict(model.named_parameters())
    carried = {}
    for name, mask in masks.items():
        module_name, _, kind = name.rpartition(".")
        sliced = mask
        for dimension, direction in ((0, "out"), (1, "in")):
            gone = set(removed.get((module_name, direction), ()))
            if gone and kind == "weight" and sliced.dim() > dimension:
                keep = [i for i in range(sliced.shape[dimension]) if i not in gone]
                sliced = sliced.index_select(dimension, torch.tensor(keep, dtype=torch.long))
        parameter = parameters.get(name)
        if parameter is None:
            continue
        if sliced.shape != parameter.shape:
            sliced = parameter.detach().cpu() != 0
        carried[name] = sliced
    set_masks(model, carried)


# The ``masks`` header section. A mask equals "the weight is not zero" unless a kept
# weight is exactly zero; the section stores each mask's pruned count and, only where
# the weights' zeros say more than the mask, the mask's bits.

def capture(model: nn.Module) -> dict[str, Any] | None:
    masks = masks_of(model)
    if not masks:
        return None
    parameters = dict(model.named_parameters())
    entries = {}
    for name, mask in masks.items():
        weight = parameters[name].detach().cpu()
        entry: dict[str, Any] = {"shape": list(mask.shape), "pruned": int((~mask).sum())}
        if int((weight == 0).sum()) != entry["pruned"]:
            bits = np.packbits(mask.numpy().reshape(-1).astype(np.uint8))
            entry["bits"] = base64.b64encode(bits.tobytes()).decode("ascii")
        entries[name] = entry
    return {"architecture": _architecture(model), "masks": entries}


def restore(model: nn.Module, data: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    parameters = dict(model.named_parameters())
    recorded = data.get("architecture")
    current = _architecture(model)
    masks = {}
    for name, entry in dict(data.get("masks") or {}).items():
        shape = tuple(entry["shape"])
        if name not in parameters or tuple(parameters[name].shape) != shape or name not in state_dict:
            found = "has no such parameter" if name not in parameters else f"has {tuple(parameters[name].shape)}"
            raise TrimkitError(f"the masks section is for another architecture ({recorded}): mask {name} {shape}, "
                               f"but {current} {found}; load it into the model it was pruned from")
        if "bits" in entry:
            bits = np.frombuffer(base64.b64decode(entry["bits"]), dtype=np.uint8)
            flat = np.unpackbits(bits)[: int(np.prod(shape))].astype(bool)
            mask = torch.from_numpy(flat.copy()).reshape(shape)
        else:
            mask = state_dict[name].detach().cpu() != 0
            if int((~mask).sum()) != int(entry["pruned"]):
                raise TrimkitError(f"mask {name} records {entry['pruned']} pruned weights but the file's weights "
                                   f"have {int((~mask).sum())} zeros; the file is damaged, re-save the model")
        masks[name] = mask
    model.__dict__[ATTRIBUTE] = masks
    return model


def _architecture(model: nn.Module) -> str:
    origin = getattr(model, "trimkit_origin", None)
    return getattr(origin, "name", None) or type(model).__name__
