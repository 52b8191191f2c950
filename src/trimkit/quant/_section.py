"""The ``quantization`` section of a model file's header: the plan a quantised model
was converted by, from which ``trimkit.load`` swaps in the same Brevitas layers before
loading their weights and scales. Registered by ``quant._convert``, the one module that
makes quantised models, and imported by ``_sections`` when a file holds the section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trimkit._sections import Section, register_section

PLAN_ATTRIBUTE = "trimkit_quant_plan"


def _capture(model: nn.Module) -> dict[str, Any] | None:
    quant_plan = getattr(model, PLAN_ATTRIBUTE, None)
    return None if quant_plan is None else quant_plan.to_dict()


def _restore(model: nn.Module, data: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    from trimkit.quant._convert import apply_plan  # Brevitas, imported only for files that hold a plan

    return apply_plan(model, data)


QUANTIZATION = Section("quantization", capture=_capture, restore=_restore)
register_section(QUANTIZATION)
