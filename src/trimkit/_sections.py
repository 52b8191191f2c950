"""Header sections of trimkit model files: what a model carries beyond its zoo
architecture and weights, which ``trimkit.load`` must redo before the weights fit.

A model file's header lists its sections in order, each ``{"name": ..., "data": ...}``.
``_model_file`` knows none of them: it asks this registry. A section implemented in a
heavy package (quantisation needs Brevitas) is registered when that package is
imported, and ``get_section`` imports it only when a file that has the section is
read, so loading a float model never imports Brevitas.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trimkit import _masks
from trimkit._registry import Registry
from trimkit._shape_edits import apply_edits, edits_of
from trimkit.errors import TrimkitError


@dataclass(frozen=True)
class Section:
    """One section of a model file's header.

    A section records some state of a model that a freshly built zoo model lacks and
    that must be redone before its state dict can be loaded: the architecture edits of
    pruning, the layers quantisation swapped, ... Sections are written in the order
    :func:`sections` gives and restored in the order the file lists them.

    .. note::
        ``capture`` and ``restore`` must agree on the data: whatever ``capture``
        returns is written with ``json.dumps`` and given back to ``restore`` after
        ``json.loads``, so tuples come back as lists and dict keys as strings.

    Args:
        name:
            The section's name in the header, unique among registered sections. It
            is part of the file format: renaming a section breaks the files written
            with the old name.
        capture:
            ``capture(model)`` returns the section's JSON-able data for ``model``, or
            None when the model has nothing for this section (the section is then
            left out of the file). It must not change the model.
        restore:
            ``restore(model, data, state_dict)`` redoes the section on ``model``, a
            freshly built model (or the one passed to ``trimkit.load``) to which the
            sections listed before this one were already restored, and returns the
            model to continue with, which may be a new module (quantisation returns a
            converted copy). ``state_dict`` is the file's, about to be loaded into the
            returned model: read it (for tensor shapes, say), never change it. Raise
            :class:`~trimkit.errors.TrimkitError` when ``data`` does not fit ``model``.
    """

    name: str
    capture: Callable[[nn.Module], Any | None]
    restore: Callable[[nn.Module, Any, Mapping[str, torch.Tensor]], nn.Module]


def _capture_edits(model: nn.Module) -> dict[str, dict[str, Any]] | None:
    return edits_of(model) or None


def _restore_edits(model: nn.Module, data: Any, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    apply_edits(model, data, state_dict)
    return model


EDITS = Section("edits", capture=_capture_edits, restore=_restore_edits)
# Unstructured pruning's weight masks: restored last, onto the modules the sections
# before it rebuilt (shapes after edits, layers after quantisation).
MASKS = Section("masks", capture=_masks.capture, restore=_masks.restore)

# Sections trimkit defines in packages this module must not import, each with the module
# whose import registers it. Their order here is their order in a file, after "edits",
# whatever order the packages happen to be imported in.
_PROVIDERS: dict[str, str] = {"quantization": "trimkit.quant._section"}
_ORDER = (EDITS.name, *_PROVIDERS, MASKS.name)

SECTIONS: Registry[Section] = Registry("header section")


def register_section(section: Section, *, replace: bool = False) -> None:
    """Make ``section`` known to ``trimkit.save`` and ``trimkit.load``."""
    SECTIONS.register(section.name, section, replace=replace)


def get_section(name: str, path: str | os.PathLike = "this model file") -> Section:
    """The section called ``name``, importing the package that provides it if need be;
    ``path`` names the file that has it, for the error when no trimkit section does."""
    if name not in SECTIONS and name in _PROVIDERS:
        importlib.import_module(_PROVIDERS[name])
    if name not in SECTIONS:
        raise TrimkitError(f"{path} has header section {name!r}, which this trimkit does not know; upgrade trimkit")
    return SECTIONS.get(name)


def sections() -> list[Section]:
    """The registered sections in the order ``trimkit.save`` writes them: trimkit's own
    in a fixed order, then any others in registration order."""
    rank = {name: position for position, name in enumerate(_ORDER)}
    return sorted((section for _, section in SECTIONS.items()), key=lambda section: rank.get(section.name, len(rank)))


register_section(EDITS)
register_section(MASKS)
