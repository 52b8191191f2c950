"""`trimkit demo`: the main job on the embedded MNIST subset, end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.table import Table

import trimkit
from trimkit import data as datasets
from trimkit import models, train
from trimkit.cli._common import console, print_json
from trimkit.measure import profile


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo's model files.")] = Path("demo-out"),
    epochs: Annotated[int, typer.Option(help="Training epochs for LeNet-5.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for the run.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train LeNet-5 on the embedded MNIST subset, evaluate and profile it."""
    started = time.perf_counter()
    train.seed_everything(seed)
    model = models.create("lenet5")
    normalization = models.origin(model).normalization()
    train_set = datasets.load("mnist5k", "train", normalization=normalization)
    val_set = datasets.load("mnist5k", "val", normalization=normalization)
    if not as_json:
        console.print(f"[bold]trimkit demo[/]: LeNet-5 on mnist5k ({len(train_set):,} train / {len(val_set):,} val images)")
    fitted = train.fit(model, train_set, val_set, epochs=epochs, batch_size=64, optimizer="sgd", lr=0.1,
                       weight_decay=5e-4, schedule="cosine", seed=seed, progress=not as_json)
    metrics = train.evaluate(model, val_set)
    measured = profile(model, torch.zeros(1, *models.origin(model).input_shape()))
    path = trimkit.save(model, out / "lenet5.pt", metadata={"data": "mnist5k", "val_top1": metrics["top1"]})
    seconds = time.perf_counter() - started
    record = {"model": "lenet5", "data": "mnist5k", "epochs": epochs, "top1": metrics["top1"], "top5": metrics["top5"],
              "loss": metrics["loss"], "params": measured.params, "macs": measured.macs, "flops": measured.flops,
              "param_bytes": measured.total_param_bytes, "train_precision": fitted.precision,
              "train_images_per_second": fitted.images_per_second, "seconds": seconds, "model_file": str(path)}
    if as_json:
        print_json(record)
        return
    table = Table(title="LeNet-5 on mnist5k")
    for column in ("top-1 %", "top-5 %", "params", "MACs", "FLOPs", "param bytes", "train img/s", "file"):
        table.add_column(column, justify="right")
    table.add_row(f"{metrics['top1']:.2f}", f"{metrics['top5']:.2f}", f"{measured.params:,}", f"{measured.macs:,}",
                  f"{measured.flops:,}", f"{measured.total_param_bytes:,}", f"{fitted.images_per_second:,.0f}", str(path))
    console.print(table)
    console.print(f"demo finished in {seconds:.1f} s (training in {fitted.precision})")
