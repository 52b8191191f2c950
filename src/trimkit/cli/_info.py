"""`trimkit models` and `trimkit profile`."""

from __future__ import annotations


import torch
from rich.table import Table

from trimkit import models
from trimkit.cli._common import example_batch, resolve_model
from trimkit.cli._console import console, print_json
from trimkit.cli._options import (InChannelsOption, InputShapeOption, JsonOption, ModelArgument, NumClassesOption,
                                  TrustOption, WeightsOption, parse_input_shape)
from trimkit.measure import from_profile
from trimkit.measure import profile as profile_model


def _example_inputs(model, subject=None) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """One input; a Siamese tracker's pair (exemplar and search crops)."""
    pair = getattr(model, "example_inputs", None)
    if callable(pair):
        return pair()
    if subject is None:
        return torch.zeros(1, *models.origin(model).input_shape())
    return example_batch(subject, 1).zero_()


def models_command(
    as_json: JsonOption = False,
) -> None:
    """List the zoo: input shape, parameters, MACs and default data of every model."""
    rows = []
    for name in models.names():
        spec = models.spec(name)
        model = models.create(name)
        shape = spec.input_shape()
        measured = profile_model(model, _example_inputs(model))
        rows.append({"name": name, "family": spec.family, "task": spec.task, "input_shape": list(shape),
                     "params": measured.params,
                     "macs": measured.macs, "default_data": spec.default_data, "description": spec.description})
    if as_json:
        print_json({"models": rows})
        return
    table = Table(title="trimkit model zoo")
    for column in ("model", "task", "input", "params", "MACs", "data", "description"):
        table.add_column(column, justify="right" if column in ("params", "MACs") else "left")
    for row in rows:
        table.add_row(row["name"], row["task"], "x".join(map(str, row["input_shape"])), f"{row['params']:,}",
                      f"{row['macs']:,}", row["default_data"], row["description"])
    console.print(table)


def profile_command(
    model: ModelArgument,
    weights: WeightsOption = None,
    num_classes: NumClassesOption = 10,
    in_channels: InChannelsOption = None,
    input_shape: InputShapeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Parameters, MACs and FLOPs per layer and in total, for one input image."""
    loaded = resolve_model(model, weights, num_classes=num_classes, in_channels=in_channels, trusted=trust_checkpoint,
                           input_shape=parse_input_shape(input_shape))
    measured = profile_model(loaded.model, _example_inputs(loaded.model, loaded))
    if as_json:
        record = measured.to_dict()
        record.update(model=loaded.label, input_shape=list(loaded.input_shape),
                      measurement=from_profile(measured, loaded.label, loaded.model).to_dict())
        print_json(record)
        return
    table = Table(title=f"{loaded.label}, input 1x{'x'.join(map(str, loaded.input_shape))}")
    for column in ("layer", "type", "output", "params", "MACs", "FLOPs"):
        table.add_column(column, justify="right" if column in ("params", "MACs", "FLOPs") else "left")
    for layer in measured.layers:
        table.add_row(layer.name, layer.type, "x".join(map(str, layer.output_shape)), f"{layer.params:,}",
                      f"{layer.macs:,}", f"{layer.flops:,}")
    table.add_section()
    table.add_row("total", "", "", f"{measured.params:,}", f"{measured.macs:,}", f"{measured.flops:,}")
    console.print(table)
    sizes = ", ".join(f"{dtype} {size:,} B" for dtype, size in measured.param_bytes.items())
    console.print(f"parameter bytes: {sizes}; buffers {measured.buffer_bytes:,} B")
