"""`trimkit prune MODEL --unstructured METHOD --sparsity X`: mask single weights, remove
the neurons left dead, optionally fine-tune (the zeros stay), and save."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

import trimkit
from trimkit import prune, train
from trimkit.cli._common import console, print_json, prune_data, resolve_model
from trimkit.cli._options import stage_options
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.prune_unstructured import UnstructuredOptions, unstructured_measurement
from trimkit.pipeline.stages.train import TrainOptions
from trimkit.prune.unstructured import resolve_method, select_layers
from trimkit.record import Metric

EXAMPLE_BATCH = 8


def run_unstructured(*, model: str, out: Path, weights: Path | None, method: str, sparsity: float | None,
                     include: str | None, skip: str | None, remove_dead: bool, data: str | None,
                     data_dir: Path | None, finetune_epochs: int, lr: float, num_classes: int, trusted: bool,
                     resume: bool, as_json: bool, seed: int = 0) -> None:
    """Everything after the checks ``prune_command`` shares with structured pruning."""
    if sparsity is None:
        raise TrimkitError("--unstructured needs --sparsity X, the fraction of weights to zero (such as 0.5)")
    options = stage_options(UnstructuredOptions, method=resolve_method(method), sparsity=sparsity,
                            include=_split(include), skip=_split(skip), remove_dead=remove_dead)
    finetune = stage_options(TrainOptions, {"epochs": "--finetune-epochs"}, epochs=finetune_epochs, lr=lr,
                             weight_decay=5e-4)
    loaded = resolve_model(model, weights, num_classes=num_classes, trusted=trusted)
    select_layers(loaded.model, options.include or None, options.skip or None)  # patterns checked first
    train_set, val_set, example = prune_data(loaded, data, data_dir, EXAMPLE_BATCH)
    record: dict = {}
    if val_set is not None:
        record["top1_before"] = train.evaluate(loaded.model, val_set)["top1"]
    result = prune.unstructured(loaded.model, options.method, options.sparsity, include=options.include or None,
                                skip=options.skip or None, seed=seed, example_inputs=example,
                                remove_dead_neurons=options.remove_dead)
    final = result.dead.model if result.dead is not None else result.model
    if val_set is not None:
        record["top1_pruned"] = train.evaluate(final, val_set)["top1"]
        if finetune_epochs:
            train.fit(final, train_set, val_set, **finetune.fit_kwargs(),
                      checkpoint=out.with_suffix(out.suffix + ".ckpt"), resume=resume, progress=True)
        record["top1_after"] = train.evaluate(final, val_set)["top1"]
    measurement = unstructured_measurement(result, f"{loaded.label} {options.method} {options.sparsity:g}", example)
    if "top1_after" in record:
        measurement.metrics.append(Metric("top1", record["top1_after"], "val", len(val_set), "fp32", data=data))
    settings = {**options.model_dump(mode="json"), "finetune_epochs": finetune_epochs, "data": data}
    trimkit.save(final, out, metadata={"pruning": {"unstructured": settings}, **record})
    summary = {"measurement": measurement.to_dict(), **result.to_dict(), **record,
               "nonzero_params_final": prune.nonzero_parameters(final), "out": str(out)}
    if as_json:
        print_json(summary)
    else:
        _print_tables(loaded.label, result, summary, final)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _print_tables(label: str, result: prune.UnstructuredResult, summary: dict, final) -> None:
    table = Table(title=f"{label}: {result.method} unstructured pruning at {result.sparsity:.0%}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("parameters", f"{result.params:,}")
    table.add_row("nonzero parameters (masked)", f"{result.nonzero_params:,}")
    if result.dead is not None:
        table.add_row("dead channels removed", f"{result.dead.channels_removed:,}")
        table.add_row("parameters after removal", f"{result.dead.params_after:,}")
        table.add_row("nonzero parameters after removal", f"{result.dead.nonzero_after:,}")
    size = prune.sparse_size(final)
    table.add_row("bytes dense", f"{size.dense_bytes:,}")
    table.add_row("bytes sparse (smallest format per layer)", f"{size.sparse_bytes:,}")
    for key, name in (("top1_before", "top-1 % before"), ("top1_pruned", "top-1 % pruned"),
                      ("top1_after", "top-1 % after fine-tuning")):
        if key in summary:
            table.add_row(name, f"{summary[key]:.2f}")
    console.print(table)
    layers = Table(title="weights per layer")
    for column in ("layer", "weights", "zeros", "sparsity", "format"):
        layers.add_column(column, justify="left" if column in ("layer", "format") else "right")
    for name, counts in result.layers.items():
        stored = size.layers.get(f"{name}.weight")
        layers.add_row(name, f"{counts.weights:,}", f"{counts.zeros:,}", f"{counts.sparsity:.1%}",
                       stored.format if stored is not None else "dense")
    console.print(layers)
    if result.dead is not None:
        for kept in result.dead.kept:
            console.print(f"[yellow]kept dead channel[/] {kept.group}[{kept.channel}]: {kept.reason}")
    console.print(f"saved {summary['out']}")
