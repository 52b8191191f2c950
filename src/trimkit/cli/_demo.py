"""`trimkit demo`: the main job on the embedded MNIST subset, end to end.

Train LeNet-5, let the threshold functions choose the criterion and the threshold,
prune it the Combine way, fine-tune it, and show what that bought side by side. Every figure in the table is measured in this run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.table import Table

import trimkit
from trimkit import data as datasets
from trimkit import models, prune, train
from trimkit.cli._common import console, print_json
from trimkit.measure import profile
from trimkit.report import plot_threshold_functions

EXPLORE_CRITERIA = ("std", "range", "mean_abs", "max_abs", "l1")
# The threshold functions are measured before fine-tuning, so the plateau is judged
# with a wide tolerance; fine-tuning then recovers most of it.
EXPLORE_MAX_DROP = 15.0


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo's model files.")] = Path("demo-out"),
    epochs: Annotated[int, typer.Option(help="Training epochs for LeNet-5.")] = 30,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the run.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train LeNet-5 on the embedded MNIST subset, prune it, fine-tune it, and compare."""
    started = time.perf_counter()
    say = (lambda *args: None) if as_json else console.print
    train.seed_everything(seed)
    model = models.create("lenet5")
    normalization = models.origin(model).normalization()
    train_set = datasets.load("mnist5k", "train", normalization=normalization)
    val_set = datasets.load("mnist5k", "val", normalization=normalization)
    example = val_set.example_inputs(8)

    say(f"[bold]1. train[/] LeNet-5 on mnist5k ({len(train_set):,} train / {len(val_set):,} val images)")
    fitted = train.fit(model, train_set, val_set, epochs=epochs, batch_size=64, optimizer="sgd", lr=0.1,
                       weight_decay=5e-4, schedule="cosine", seed=seed, progress=not as_json)
    baseline_path = trimkit.save(model, out / "lenet5.pt", metadata={"data": "mnist5k"})

    say(f"[bold]2. explore[/] threshold functions of {', '.join(EXPLORE_CRITERIA)} (Algorithm 2, no fine-tuning)")
    comparison = prune.compare_criteria(model, example, prune.CachedEvaluation(val_set), criteria=EXPLORE_CRITERIA,
                                        layers="both")
    threshold = prune.recommend_threshold(comparison.curves[comparison.best], EXPLORE_MAX_DROP)
    settings = {"criterion": comparison.best, "threshold": threshold, "layers": "both", "mode": "progressive"}
    say("   AUC " + ", ".join(f"{name} {auc:.3f}" for name, auc in comparison.auc.items())
        + f"; best {comparison.best}, threshold {threshold:.3f} (plateau within {EXPLORE_MAX_DROP:g} points)")
    plot_threshold_functions(comparison, out / "threshold_functions.png", "Threshold functions: LeNet-5 on mnist5k")

    say(f"[bold]3. prune[/] with Combine: {settings}")
    pruned = prune.structured(model, example, **settings)
    say(f"   {pruned.groups_pruned} groups cut, each verified against the masked original; "
        f"{len(pruned.frozen)} frozen")
    top1_pruned = train.evaluate(pruned.model, val_set)["top1"]

    say(f"[bold]4. fine-tune[/] the pruned model for {finetune_epochs} epochs")
    train.fit(pruned.model, train_set, val_set, epochs=finetune_epochs, batch_size=64, lr=0.05, seed=seed,
              progress=not as_json)
    pruned_path = trimkit.save(pruned.model, out / "lenet5-pruned.pt", metadata={"pruning": settings})

    rows = [
        _row("baseline", model, val_set, example, baseline_path),
        {**_row("pruned + fine-tuned", pruned.model, val_set, example, pruned_path), "top1_before_finetune": top1_pruned},
    ]
    record = {"rows": rows, "pruning": {**settings, "frozen": len(pruned.frozen)},
              "explore": {name: {"auc": auc} for name, auc in comparison.auc.items()},
              "train_precision": fitted.precision, "train_images_per_second": fitted.images_per_second,
              "seconds": time.perf_counter() - started}
    if as_json:
        print_json(record)
        return
    _print_table(rows)
    console.print(f"demo finished in {record['seconds']:.1f} s (training in {fitted.precision}); "
                  f"top-1 of the pruned model before fine-tuning: {top1_pruned:.2f} %")


def _row(name: str, model: torch.nn.Module, val_set: datasets.ImageDataset, example: torch.Tensor,
         path: Path) -> dict:
    metrics = train.evaluate(model, val_set)
    measured = profile(model, example[:1])
    return {"model": name, "top1": metrics["top1"], "params": measured.params, "macs": measured.macs,
            "param_bytes": measured.total_param_bytes, "file": str(path), "file_bytes": path.stat().st_size}


def _print_table(rows: list[dict]) -> None:
    table = Table(title="LeNet-5 on mnist5k: what pruning bought")
    for column in ("model", "top-1 %", "params", "MACs", "param bytes", "file"):
        table.add_column(column, justify="left" if column in ("model", "file") else "right")
    base = rows[0]
    for row in rows:
        ratio = "" if row is base else f" ({row['macs'] / base['macs']:.2f}x)"
        table.add_row(row["model"], f"{row['top1']:.2f}", f"{row['params']:,}", f"{row['macs']:,}{ratio}",
                      f"{row['param_bytes']:,}", row["file"])
    console.print(table)
