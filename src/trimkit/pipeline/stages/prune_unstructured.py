"""Stage ``prune_unstructured``: mask single weights (random, layer, global), then remove
the neurons and filters the masks left dead; later training stages keep the zeros."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from trimkit import prune
from trimkit.measure import from_profile, profile
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.record import Measurement


class UnstructuredOptions(StageOptions):
    """Options of :func:`trimkit.prune.unstructured` in a recipe."""

    method: Literal["random", "layer", "global"] = "global"
    sparsity: float
    include: list[str] = Field(default_factory=list)
    skip: list[str] = Field(default_factory=list)
    remove_dead: bool = True

    @field_validator("sparsity")
    @classmethod
    def _sparsity_in_range(cls, value: float) -> float:
        if not (math.isfinite(value) and 0.0 <= value < 1.0):
            raise ValueError(f"{value} is not in [0, 1): sparsity is the fraction of weights set to zero")
        return value


@register_stage("prune_unstructured", UnstructuredOptions,
                "zero single weights (random, layer, global) and remove the neurons left dead")
def prune_unstructured_stage(model: nn.Module, ctx: Context, options: UnstructuredOptions) -> nn.Module:
    example = ctx.example_inputs(8)
    result = prune.unstructured(model, options.method, options.sparsity, include=options.include or None,
                                skip=options.skip or None, seed=ctx.seed,
                                example_inputs=example if options.remove_dead else None,
                                remove_dead_neurons=options.remove_dead)
    final = result.dead.model if result.dead is not None else result.model
    record = unstructured_measurement(result, "pruned_unstructured", example)
    details = result.to_dict()
    ctx.say(f"   {options.method} at {options.sparsity:.0%}: {result.zeros:,} weights zeroed; nonzero parameters "
            f"{result.nonzero_params:,} of {result.params:,}"
            + (f"; {result.dead.channels_removed} dead channels removed, {result.dead.params_after:,} parameters "
               f"left ({result.dead.nonzero_after:,} nonzero)" if result.dead is not None else ""))
    ctx.add(record, settings=options.model_dump(mode="json"), **details)
    return final


def unstructured_measurement(result: prune.UnstructuredResult, label: str, example_inputs) -> Measurement:
    """The record of the model the result ends with (after dead-neuron removal where
    that ran): parameters, MACs, and its bytes dense and in the sparse format."""
    model = result.dead.model if result.dead is not None else result.model
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    return from_profile(profile(model, tuple(t[:1] for t in inputs)), label, model)  # a masked model's has "sparse"
