"""Pruning to a latency budget: the pretrained ResNet-56 on CIFAR-10, on ONNX Runtime and
OpenVINO, batch 1 and 32, on this machine's CPU.

For each runtime and batch size:
1. The latency table: built from nothing (a fresh cache), its build time and points.
2. How well it predicts: random prunings (every conv layer its own random ratio in
   [0, 0.75]), the table's whole-model prediction against the measured p50, all timed
   interleaved with the unpruned model.
3. Ratio pruning by default: 50 % per layer with no rounding and with ``round_to: auto``
   (the counts this runtime's kernels like): the MACs speed-up beside the measured one
   (goal: measured at least 0.8 of the MACs speed-up).
4. Budgets of 1/2 and 1/3 of the unpruned latency (``target={"speedup": 2 | 3}``):
   met or not, rounds, the measured latency against the budget, then an independent
   interleaved timing of the result against the unpruned model; beside it, Torch-Pruning
   1.6.1's global Group-L1 (MetaPruner, with trimkit's option-A shortcut pruner, which it
   needs for this ResNet) at the ratio whose measured latency comes nearest the same
   budget (bisected on measured latency); top-1 of both on the CIFAR-10 test images,
   after the same fine-tuning (``--finetune-epochs``, 0 by default: top-1 straight
   after the cut; ``--distill`` fine-tunes trimkit's models distilled from the unpruned
   one, alpha 0.5, T 4, and Torch-Pruning's on the labels alone).

    python benchmarks/latency_budget.py [--backends onnxruntime,openvino] [--batch-sizes 1,32]
        [--speedups 2,3] [--random 12] [--threads 2] [--test-images 10000]
        [--finetune-epochs 0 --train-images 50000 [--distill]] [--no-tp] [--skip-tables]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch_pruning as tp
from rich.console import Console
from rich.table import Table

import trimkit
from trimkit import data, measure, models, prune, train
from trimkit.errors import TrimkitError
from trimkit.measure import RuntimeOptions
from trimkit.measure._latency_table import model_key
from trimkit.measure._timer import machine_fingerprint
from trimkit.measure._units import layer_units
from trimkit.prune._custom_layers import customized_pruners

PRETRAINED = "pretrained/resnet56-4bfd9763.th"
console = Console(width=170, markup=False)


def machine() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{machine_fingerprint()}, load average {load}"


def predicted_ms(table, base: torch.nn.Module, pruned: torch.nn.Module, example: torch.Tensor) -> float:
    units = layer_units(base, example)
    after = layer_units(pruned, example)
    counts = {name: (after[name].in_channels, after[name].out_channels) for name in units}
    return table.predict_ms(units, counts, model_key(base, units))


def random_prunings(base, example, count: int, seed: int) -> list[torch.nn.Module]:
    rng = random.Random(seed)
    names = [name for name, module in base.named_modules() if isinstance(module, torch.nn.Conv2d)]
    return [prune.structured(base, example, ratio={name: rng.uniform(0.0, 0.75) for name in names}).model
            for _ in range(count)]


def speedup_of(models_: list[torch.nn.Module], options: RuntimeOptions, batch: int, min_time: float
               ) -> tuple[list[float], list]:
    """p50 of the first model over each other's, all timed interleaved."""
    timed = measure.latencies(models_, options, batch_size=batch, min_time_s=min_time, input_shapes=[(3, 32, 32)])
    return [timed[0].p50_ms / result.p50_ms for result in timed[1:]], timed


def torch_pruning_at_latency(base, example, share: float, options: RuntimeOptions, batch: int
                             ) -> tuple[torch.nn.Module, float, float]:
    """Torch-Pruning's global Group-L1 at the smallest ratio whose measured p50 is at most
    ``share`` of the unpruned model's (bisected; each step timed interleaved with it)."""
    low, high, best, last = 0.0, 0.9, None, None
    for _ in range(7):
        ratio = (low + high) / 2
        candidate = copy.deepcopy(base).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MetaPruner(candidate, example, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                          pruning_ratio=ratio, global_pruning=True, ignored_layers=[candidate.linear],
                                          customized_pruners=customized_pruners())
            pruner.step()
        (speedup,), _ = speedup_of([base, candidate], options, batch, 0.5)
        last = (candidate, ratio, 1 / speedup)
        if 1 / speedup <= share:
            best = last if best is None or ratio < best[1] else best
            high = ratio
        else:
            low = ratio
    return best or last


def finetuned_top1(model, train_set, test_set, epochs: int, teacher=None) -> float:
    """Top-1 on the test images after ``epochs`` of SGD at 0.01 (cosine), distilled from
    ``teacher`` (alpha 0.5, T 4) where one is given."""
    settings = dict(epochs=epochs, batch_size=128, optimizer="sgd", lr=0.01, weight_decay=5e-4, schedule="cosine",
                    seed=0, progress=True)
    if epochs and teacher is not None:
        from trimkit import distill

        distill.distill(model, teacher, train_set, None, **settings)
    elif epochs:
        train.fit(model, train_set, None, **settings)
    return float(train.evaluate(model.eval(), test_set)["top1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--speedups", default="2,3")
    parser.add_argument("--random", type=int, default=12, help="random prunings to check predictions on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-ratio", type=float, default=0.9, help="most of a group's channels a budget may take")
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--train-images", type=int, default=50_000)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--no-tp", action="store_true", help="leave out Torch-Pruning")
    parser.add_argument("--distill", action="store_true",
                        help="fine-tune trimkit's budgeted models distilled from the unpruned model (Torch-Pruning's "
                             "plainly, as its users do)")
    parser.add_argument("--skip-tables", action="store_true",
                        help="leave out the prediction check and the ratio-pruning rows (budgets only)")
    args = parser.parse_args()
    console.print(f"CPU: {machine()}")
    console.print(f"torch {torch.__version__}, Torch-Pruning {tp.__version__}")
    base = trimkit.load_weights(models.create("resnet56"), args.data_dir / PRETRAINED).eval()
    example = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    test_set = data.load("cifar10", "test", args.data_dir).subset(args.test_images, seed=1)
    train_set = data.load("cifar10", "train", args.data_dir).subset(args.train_images, seed=0)
    base_macs = measure.profile(base, example[:1]).macs
    top1_cache: dict[int, float] = {}

    def top1(model, distilled: bool = False) -> float:
        if id(model) not in top1_cache:
            teacher = base if distilled and args.distill else None
            top1_cache[id(model)] = finetuned_top1(copy.deepcopy(model), train_set, test_set, args.finetune_epochs,
                                                   teacher)
        return top1_cache[id(model)]

    console.print(f"ResNet-56 pretrained: {base_macs / 1e6:.1f}M MACs, top-1 {top1(base):.2f} % on "
                  f"{len(test_set):,} test images; fine-tuning after each cut: {args.finetune_epochs} epoch(s)")
    randoms = random_prunings(base, example, args.random, seed=0)
    tables, budgets, defaults = Table(title="latency tables"), Table(title="budgets"), Table(
        title="ratio pruning 50 % per layer: MACs speed-up against measured speed-up")
    for column in ("runtime, batch", "build s", "points", "mean |error| %", "max |error| %", "within 10 %"):
        tables.add_column(column, justify="right")
    for column in ("runtime, batch", "rounding", "MACs x", "measured x", "measured / MACs"):
        defaults.add_column(column, justify="right")
    for column in ("runtime, batch", "method", "budget ms", "measured ms", "noise ms", "met", "rounds", "prune s",
                   "independent x", "MACs x", "top-1 %"):
        budgets.add_column(column, justify="right")
    for backend in args.backends.split(","):
        for batch in map(int, args.batch_sizes.split(",")):
            where = f"{backend}, b{batch}"
            options = RuntimeOptions(backend=backend, threads=args.threads)
            with tempfile.TemporaryDirectory() as cache:
                table_file = Path(cache) / "table.json"
                table = prune.latency_table(base, example, backend=backend, batch_size=batch,
                                            threads=args.threads, table=str(table_file), progress=True)
                points = sum(len(values) for values in table.points.values())
                randoms_here = [] if args.skip_tables else randoms
                _, timed = speedup_of([base, *randoms_here], options, batch, args.min_time / 2)
                errors = [abs(predicted_ms(table, base, model, example) / result.p50_ms - 1) * 100
                          for model, result in zip([base, *randoms_here], timed, strict=True)]
                tables.add_row(where, f"{table.build_s:.1f}", str(points), f"{sum(errors) / len(errors):.1f}",
                               f"{max(errors):.1f}", f"{sum(e <= 10 for e in errors)}/{len(errors)}")
                if not args.skip_tables:
                    plain = prune.structured(base, example, ratio=0.5)
                    auto = prune.structured(base, example, ratio=0.5, target={
                        "backend": backend, "batch_size": batch, "threads": args.threads, "table": str(table_file)})
                    measured, _ = speedup_of([base, plain.model, auto.model], options, batch, args.min_time)
                    for label, result, speed in (("none", plain, measured[0]), ("auto", auto, measured[1])):
                        macs_x = result.macs_before / result.macs_after
                        defaults.add_row(where, label, f"{macs_x:.2f}", f"{speed:.2f}", f"{speed / macs_x:.2f}")
                for speedup in map(float, args.speedups.split(",")):
                    started = time.perf_counter()
                    try:
                        result = prune.structured(base, example, target={
                            "speedup": speedup, "backend": backend, "batch_size": batch, "threads": args.threads,
                            "table": str(table_file), "max_ratio": args.max_ratio})
                    except TrimkitError as error:
                        budgets.add_row(where, f"trimkit {speedup:g}x", "", "", "", "refused", "", "", "", "", "")
                        console.print(f"{where}, {speedup:g}x: {error}")
                        continue
                    seconds = time.perf_counter() - started
                    outcome = result.budget
                    (independent,), timed = speedup_of([base, result.model], options, batch, args.min_time)
                    macs_x = base_macs / measure.profile(result.model, example[:1]).macs
                    budgets.add_row(where, f"trimkit {speedup:g}x", f"{outcome.budget:.3f}", f"{outcome.measured:.3f}",
                                    f"{outcome.noise:.3f}", outcome.verdict, str(len(outcome.rounds)),
                                    f"{seconds:.1f}", f"{independent:.2f}", f"{macs_x:.2f}",
                                    f"{top1(result.model, distilled=True):.2f}")
                    if args.no_tp:
                        continue
                    started = time.perf_counter()
                    theirs, ratio, _share = torch_pruning_at_latency(base, example, 1 / speedup, options, batch)
                    seconds = time.perf_counter() - started
                    (independent,), timed = speedup_of([base, theirs], options, batch, args.min_time)
                    macs_x = base_macs / measure.profile(theirs, example[:1]).macs
                    budgets.add_row(where, f"TP Group-L1 r={ratio:.3f}", f"{outcome.budget:.3f}",
                                    f"{timed[1].p50_ms:.3f}", "", "", "", f"{seconds:.1f}", f"{independent:.2f}",
                                    f"{macs_x:.2f}", f"{top1(theirs):.2f}")
            console.print(f"done {where}; load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    console.print(tables)
    console.print(defaults)
    console.print(budgets)
    console.print("independent x: the result timed against the unpruned model once more, interleaved, after the "
                  "budgeted cut finished; budget and measured ms are the budgeted cut's own last round")
    console.print(f"CPU after: {machine()}")


if __name__ == "__main__":
    main()
