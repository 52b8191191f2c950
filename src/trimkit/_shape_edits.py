"""Architecture edits: how a pruned model's modules differ from a freshly built one.

Pruning changes plain attributes (``out_channels``, ``num_features``, a shortcut's
``source`` map) and tensor shapes. The attributes are recorded on the model as they
change and saved in the model file's header; the tensor shapes come from the state
dict. Applying both to a fresh instance rebuilds the pruned architecture without
pickling any class.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

EDITS_ATTRIBUTE = "trimkit_edits"
_SIMPLE = (int, float, bool, str, type(None))


def _is_simple(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_simple(v) for v in value)
    return isinstance(value, _SIMPLE)


def _plain_attributes(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _is_simple(v)}


def attribute_changes(before: nn.Module, after: nn.Module) -> dict[str, dict[str, Any]]:
    """Plain attributes of ``after``'s modules that differ from ``before``'s, by module name."""
    changes: dict[str, dict[str, Any]] = {}
    for name, module in after.named_modules():
        try:
            previous = before.get_submodule(name)
        except AttributeError:
            continue
        old = _plain_attributes(previous)
        changed = {k: v for k, v in _plain_attributes(module).items() if old.get(k) != v}
        if changed:
            changes[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()}
    return changes


def record_edits(model: nn.Module, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge ``changes`` into the edits the model carries (later values win)."""
    edits = {name: dict(values) for name, values in getattr(model, EDITS_ATTRIBUTE, {}).items()}
    for name, values in changes.items():
        edits.setdefault(name, {}).update(values)
    setattr(model, EDITS_ATTRIBUTE, edits)


def edits_of(model: nn.Module) -> dict[str, dict[str, Any]]:
    return getattr(model, EDITS_ATTRIBUTE, {})


def apply_edits(model: nn.Module, edits: Mapping[str, Mapping[str, Any]],
                state_dict: Mapping[str, torch.Tensor]) -> None:
    """Set the recorded attributes and give the edited modules' tensors the saved shapes."""
    for name, values in edits.items():
        module = model.get_submodule(name)
        for key, value in values.items():
            current = getattr(module, key, None)
            setattr(module, key, tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value)
        prefix = f"{name}." if name else ""
        for key, tensor in list(module._parameters.items()):
            saved = state_dict.get(prefix + key)
            if tensor is not None and saved is not None and saved.shape != tensor.shape:
                module._parameters[key] = nn.Parameter(torch.empty(saved.shape, dtype=tensor.dtype),
                                                       requires_grad=tensor.requires_grad)
        for key, tensor in list(module._buffers.items()):
            saved = state_dict.get(prefix + key)
            if tensor is not None and saved is not None and saved.shape != tensor.shape:
                module._buffers[key] = torch.empty(saved.shape, dtype=tensor.dtype)
    record_edits(model, edits)
