"""`trimkit prune MODEL --unstructured METHOD --sparsity X`: its options and its tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from trimkit import prune
from trimkit.cli._console import console
from trimkit.cli._options import stage_options
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.prune_unstructured import UnstructuredOptions
from trimkit.prune.unstructured import resolve_method
from trimkit.tasks import metric_title


def unstructured_options(method: str, sparsity: float | None, include: str | None, skip: str | None,
                         remove_dead: bool) -> UnstructuredOptions:
    if sparsity is None:
        raise TrimkitError("--unstructured needs --sparsity X, the fraction of weights to zero (such as 0.5)")
    return stage_options(UnstructuredOptions, method=resolve_method(method), sparsity=sparsity,
                         include=_split(include), skip=_split(skip), remove_dead=remove_dead)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def print_unstructured(label: str, summary: dict, final: Any, task: Any) -> None:
    table = Table(title=f"{label}: {summary['method']} unstructured pruning at {summary['sparsity']:.0%}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("parameters", f"{summary['params']:,}")
    table.add_row("nonzero parameters (masked)", f"{summary['nonzero_params']:,}")
    dead = summary["dead"]
    if dead is not None:
        table.add_row("dead channels removed", f"{dead['channels_removed']:,}")
        table.add_row("parameters after removal", f"{dead['params_after']:,}")
        table.add_row("nonzero parameters after removal", f"{dead['nonzero_after']:,}")
    size = prune.sparse_size(final)
    table.add_row("bytes dense", f"{size.dense_bytes:,}")
    table.add_row("bytes sparse (smallest format per layer)", f"{size.sparse_bytes:,}")
    if task is not None:
        title = metric_title(task.primary_metric)
        for when, name in (("before", "before"), ("pruned", "pruned"), ("after", "after fine-tuning")):
            table.add_row(f"{title} {name}", f"{summary[f'{task.primary_metric}_{when}']:.2f}")
    console.print(table)
    layers = Table(title="weights per layer")
    for column in ("layer", "weights", "zeros", "sparsity", "format"):
        layers.add_column(column, justify="left" if column in ("layer", "format") else "right")
    for name, counts in summary["layers"].items():
        stored = size.layers.get(f"{name}.weight")
        sparsity = counts["zeros"] / max(counts["weights"], 1)
        layers.add_row(name, f"{counts['weights']:,}", f"{counts['zeros']:,}", f"{sparsity:.1%}",
                       stored.format if stored is not None else "dense")
    console.print(layers)
    for kept in (dead or {}).get("kept", []):
        console.print(f"[yellow]kept dead channel[/] {kept['group']}[{kept['channel']}]: {kept['reason']}")
    console.print(f"saved {summary['out']}")
