"""`trimkit demo`: the main job on the embedded MNIST subset, end to end.

Train LeNet-5; let the threshold functions choose the criterion and the threshold;
prune it the Combine way and fine-tune it; export both models to ONNX (parity
checked); quantise the pruned one to INT8; then measure all three side by side on
ONNX Runtime: accuracy as the runtime computes it, size and latency.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

import trimkit
from trimkit import data as datasets
from trimkit import export, measure, models, prune, quant, train
from trimkit.cli._bench import print_comparison
from trimkit.cli._common import console, print_json
from trimkit.report import plot_threshold_functions

EXPLORE_CRITERIA = ("std", "range", "mean_abs", "max_abs", "l1")
# The threshold functions are measured before fine-tuning, so the plateau is judged
# with a wide tolerance; fine-tuning then recovers most of it.
EXPLORE_MAX_DROP = 15.0
CALIBRATION_IMAGES = 1000
# LeNet-5 runs in tens of microseconds: one thread times it steadily, and a second
# one only adds synchronisation.
BENCH_THREADS = 1
BENCH_BATCHES = (1, 32)


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo's model files.")] = Path("demo-out"),
    epochs: Annotated[int, typer.Option(help="Training epochs for LeNet-5.")] = 30,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the run.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train LeNet-5 on embedded MNIST; explore, prune, fine-tune, export, quantise; measure."""
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
    trimkit.save(model, out / "lenet5.pt", metadata={"data": "mnist5k"})

    say(f"[bold]2. explore[/] threshold functions of {', '.join(EXPLORE_CRITERIA)} (Algorithm 2, no fine-tuning)")
    criteria = prune.compare_criteria(model, example, prune.CachedEvaluation(val_set), criteria=EXPLORE_CRITERIA,
                                      layers="both")
    threshold = prune.recommend_threshold(criteria.curves[criteria.best], EXPLORE_MAX_DROP)
    settings = {"criterion": criteria.best, "threshold": threshold, "layers": "both", "mode": "progressive"}
    say("   AUC " + ", ".join(f"{name} {auc:.3f}" for name, auc in criteria.auc.items())
        + f"; best {criteria.best}, threshold {threshold:.3f} (plateau within {EXPLORE_MAX_DROP:g} points)")
    plot_threshold_functions(criteria, out / "threshold_functions.png", "Threshold functions: LeNet-5 on mnist5k")

    say(f"[bold]3. prune[/] with Combine: criterion {settings['criterion']}, threshold {threshold:.3f}, "
        "conv and dense layers, progressive")
    pruned = prune.structured(model, example, **settings)
    top1_pruned = train.evaluate(pruned.model, val_set)["top1"]
    say(f"   {pruned.groups_pruned} groups cut, each verified against the masked original, {len(pruned.frozen)} "
        f"frozen; MACs {pruned.macs_before:,} -> {pruned.macs_after:,}; top-1 {top1_pruned:.2f} % before fine-tuning")

    say(f"[bold]4. fine-tune[/] the pruned model for {finetune_epochs} epochs")
    train.fit(pruned.model, train_set, val_set, epochs=finetune_epochs, batch_size=64, lr=0.05, seed=seed,
              progress=not as_json)
    trimkit.save(pruned.model, out / "lenet5-pruned.pt", metadata={"pruning": settings})

    say("[bold]5. export[/] both to ONNX, each checked against PyTorch")
    exports = {name: export.onnx(net, example, out / f"{name}.onnx")
               for name, net in (("lenet5", model), ("lenet5-pruned", pruned.model))}
    for name, result in exports.items():
        say(f"   {result.path}: {result.size_bytes:,} bytes, max relative error {result.max_rel_err:.1e}")

    say(f"[bold]6. quantise[/] the pruned model to INT8 (ONNX Runtime static PTQ, {CALIBRATION_IMAGES} "
        "calibration images)")
    int8 = quant.run_ptq(pruned.model, train_set.subset(CALIBRATION_IMAGES, seed), val_set,
                         out / "lenet5-pruned.int8.onnx")
    say(f"   {int8.model_path}: {int8.size.onnx_bytes:,} bytes; analytic weights + scales "
        f"{int8.size.analytic_bytes:,} bytes")

    say(f"[bold]7. measure[/] side by side on ONNX Runtime, {BENCH_THREADS} thread, interleaved, at batch 1 and 32")
    comparisons = {batch: measure.compare([model, pruned.model, int8.model_path],
                                          labels=["baseline", "pruned + fine-tuned", "pruned + INT8"],
                                          backend="onnxruntime", batch_size=batch, threads=BENCH_THREADS,
                                          data=val_set if batch == 1 else None)
                   for batch in BENCH_BATCHES}
    record = {"comparisons": {str(batch): c.to_dict() for batch, c in comparisons.items()}, "pruning": {**settings, "frozen": len(pruned.frozen),
                                                              "top1_before_finetune": top1_pruned},
              "explore": {name: {"auc": auc} for name, auc in criteria.auc.items()},
              "exports": {name: result.to_dict() for name, result in exports.items()},
              "int8": int8.to_dict(), "train_precision": fitted.precision,
              "train_images_per_second": fitted.images_per_second, "seconds": time.perf_counter() - started}
    if as_json:
        print_json(record)
        return
    for comparison in comparisons.values():
        print_comparison(comparison)
    console.print(f"demo finished in {record['seconds']:.1f} s; files in {out}/")
