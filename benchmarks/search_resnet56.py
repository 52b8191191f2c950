"""The edge seed's experiment (002, sections 3.5-4.2) with trimkit search: per-group
filter-pruning ratios of the pretrained CIFAR ResNet-56, searched with Optuna (TPE) for
latency, for top-1 and for a hybrid of the two.

1. Groups: the seed's Table 2 (first convolution of each block, by stage; the most
   sensitive layers left out, never pruned): layer1 (all nine blocks), layer2 (blocks
   1-4, 6, 7), layer3.1 alone, layer3 (blocks 2, 3, 5-8). One ratio each, 0 to 0.9.
2. Fast phase (the seed's: prune, no retraining): three searches, one per target,
   each trial pruned, scored on a fixed test subset, exported and timed on ONNX Runtime
   (batch 1, 1 thread). Trials per hour here against the seed's ~40 s a trial (1,631
   trials in about 18 hours, 24-55 s each).
3. Short fine-tune budget: the best trial of each search, Distiller's hand schedule
   (examples/recipes/resnet56-filter-rank.yaml) and Li et al.'s pruned-B
   (examples/recipes/resnet56-li-pruned-b.yaml), all fine-tuned for the same epochs on
   the same images, then top-1 and latency on ONNX Runtime and OpenVINO side by side.

Budgets are reduced to fit about ten minutes on two cores and the output says so: the
accuracy is on a test subset and the fine-tuning sees a train subset for few epochs,
so the absolute top-1 after fine-tuning is below what the full budgets reach.

    python benchmarks/search_resnet56.py [--quick] [--trials 8] [--epochs 1] [--out runs/search_resnet56]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from trimkit import measure, search
from trimkit.pipeline import parse_recipe, run_recipe

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WEIGHTS = SHARED / "pretrained" / "resnet56-4bfd9763.th"
SEED_SECONDS_PER_TRIAL = 40.0  # the seed's fast phase: 1,631 runs in about 18 hours, 24-55 s each
TABLE_2 = {
    "filter_pruner_layer_1": [f"layer1.{i}.conv1" for i in range(9)],
    "filter_pruner_layer_2": [f"layer2.{i}.conv1" for i in (1, 2, 3, 4, 6, 7)],
    "filter_pruner_layer_3_1": ["layer3.1.conv1"],
    "filter_pruner_layer_3_2": [f"layer3.{i}.conv1" for i in (2, 3, 5, 6, 7, 8)],
}
TARGETS = {
    "latency": {"name": "latency_ms", "direction": "minimize"},
    "top1": {"name": "top1", "direction": "maximize"},
    # the seed leaves its hybrid undefined; here: relative top-1 kept minus relative latency kept
    "hybrid": {"name": "hybrid", "expr": "top1 / baseline_top1 - latency_ms / baseline_latency_ms",
               "direction": "maximize"},
}
console = Console(width=170, highlight=False)


def search_recipe(target: str, trials: int, args: argparse.Namespace) -> dict:
    return {
        "name": f"resnet56-search-{target}",
        "model": {"name": "resnet56", "weights": str(WEIGHTS)},
        "task": {"data": "cifar10", "data_dir": str(SHARED), "train_samples": args.train_samples,
                 "val_samples": args.val_samples},
        "seed": 0,
        "stages": [
            {"stage": "prune", "criterion": "l1", "layers": "conv", "mode": "static", "ratio": 0.0},
            {"stage": "finetune", "epochs": 0, "lr": 0.01, "schedule": "cosine", "batch_size": 128},
        ],
        "search": {
            "method": "tpe", "n_trials": trials, "seed": 0, "epochs": 0,
            "parameters": {name: {"path": "stages.0.ratio", "keys": layers, "min": 0.0, "max": 0.9, "step": 0.05}
                           for name, layers in TABLE_2.items()},
            "latency": {"backend": "onnxruntime", "batch_size": 1, "threads": 1, "min_time_s": args.min_time},
            "objectives": [TARGETS[target]],
        },
    }


def run_fast_phase(args: argparse.Namespace, folder: Path) -> dict[str, dict]:
    found = {}
    for target in args.targets:
        data = search_recipe(target, args.trials, args)
        recipe = search.parse_search_recipe(data, source=f"{target} search")
        started = time.perf_counter()
        result = search.run_search(recipe, folder / f"search-{target}")
        wall = time.perf_counter() - started
        record = search.write_results(result.study, folder / f"search-{target}", storage=result.storage)
        seconds = [row["seconds"] for row in record["trials"] if row["seconds"]]
        best = record["best"][0] if record["best"] else None
        found[target] = {"recipe": recipe, "record": record, "wall": wall, "seconds": seconds, "best": best,
                         "values": None if best is None else
                         result.study.get_trials(deepcopy=False)[best["number"]].params}
    return found


def print_fast_phase(found: dict[str, dict], args: argparse.Namespace) -> None:
    table = Table(title=f"fast phase (prune only, no retraining): TPE, {args.trials} trials a target; top-1 on "
                        f"{args.val_samples} test images; ONNX Runtime batch 1, 1 thread")
    for column in ("target", "trials", "s / trial (median)", "trials / hour", "seed: trials / hour",
                   "best trial: ratios (l1, l2, l3.1, l3.2)", "top-1 %", "latency ms", "MACs"):
        table.add_column(column, justify="left" if column.startswith(("target", "best")) else "right")
    baseline = None
    for target, item in found.items():
        record, best = item["record"], item["best"]
        baseline = record["baseline"] or baseline
        per_trial = item["wall"] / max(1, len(item["seconds"]))
        ratios = "-" if best is None else ", ".join(f"{v:.2f}" for v in best["overrides"].values())
        table.add_row(target, str(len(item["seconds"])), f"{statistics.median(item['seconds']):.1f}",
                      f"{3600 / per_trial:.0f}", f"{3600 / SEED_SECONDS_PER_TRIAL:.0f}", ratios,
                      _fmt(best and best["metric"], 2), _fmt(best and best["latency_ms"], 3),
                      f"{best['macs']:,}" if best else "-")
    if baseline:
        table.add_row("baseline (pretrained)", "", "", "", "", "(nothing pruned)", _fmt(baseline["metric"], 2),
                      _fmt(baseline["latency_ms"], 3), f"{baseline['macs']:,}")
    console.print(table)
    console.print("trials / hour: one worker, wall time of the whole search (trial, export, timing, study "
                  "bookkeeping) divided by its trials; the seed's figure is ~40 s a trial.")


def finetune_recipes(found: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    """The best trial of each search, and the two hand schedules, at one fine-tune budget."""
    task = {"data": "cifar10", "data_dir": str(SHARED), "train_samples": args.train_samples,
            "val_samples": args.val_samples}
    recipes = {}
    for target, item in found.items():
        if item["values"] is None:
            continue
        recipe = copy.deepcopy(item["recipe"])
        recipe.spec.epochs = args.epochs
        data = recipe.trial_data(item["values"])
        data.pop("search", None)
        recipes[f"search: {target}"] = data
    distiller = yaml.safe_load((ROOT / "examples" / "recipes" / "resnet56-filter-rank.yaml").read_text())
    distiller["stages"] = [stage for stage in distiller["stages"] if stage["stage"] != "measure"]
    distiller["stages"][0].update(epochs=args.epochs, lr=0.01)
    distiller["stages"][0]["policies"][1]["ending_epoch"] = args.epochs
    recipes["Distiller hand schedule"] = distiller
    li = yaml.safe_load((ROOT / "examples" / "recipes" / "resnet56-li-pruned-b.yaml").read_text())
    li["stages"] = [stage for stage in li["stages"] if stage["stage"] != "measure"]
    li["stages"][1].update(epochs=args.epochs)
    recipes["Li et al. pruned-B"] = li
    for data in recipes.values():
        data["model"]["weights"] = str(WEIGHTS)
        data["task"] = dict(task)
        data["export"] = True
    return recipes


def run_finetune_phase(found: dict[str, dict], args: argparse.Namespace, folder: Path) -> None:
    table = Table(title=f"after {args.epochs} fine-tune epoch(s) on {args.train_samples} train images (equal for "
                        f"all); top-1 on {args.val_samples} test images")
    for column in ("model", "MACs", "params", "top-1 %", "ORT ms (b1, 1 thr)", "OpenVINO ms (b1, 1 thr)",
                   "OpenVINO precision"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for index, (label, data) in enumerate(finetune_recipes(found, args).items()):
        result = run_recipe(parse_recipe(data, source=label), folder / f"finetune-{index}", progress=False)
        final = result.log.records[-1]
        onnx = folder / f"finetune-{index}" / final.details["onnx"]
        timed = {backend: measure.latency(str(onnx), backend=backend, batch_size=1, threads=1,
                                          min_time_s=args.min_time) for backend in ("onnxruntime", "openvino")}
        top1 = final.measurement.metric("top1")
        table.add_row(label, f"{final.measurement.macs:,}", f"{final.measurement.params:,}",
                      _fmt(top1 and top1.value, 2), f"{timed['onnxruntime'].p50_ms:.3f}",
                      f"{timed['openvino'].p50_ms:.3f}", timed["openvino"].precision)
    console.print(table)


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 trial a target, tiny subsets")
    parser.add_argument("--trials", type=int, default=8, help="trials a target in the fast phase")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tune epochs of the second phase")
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--val-samples", type=int, default=1000)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds each latency is timed for")
    parser.add_argument("--targets", default="latency,top1,hybrid")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    if args.quick:
        args.trials, args.epochs, args.train_samples, args.val_samples, args.min_time = 1, 1, 64, 100, 0.1
    if not WEIGHTS.exists():
        sys.exit(f"needs {WEIGHTS} (the pretrained ResNet-56) and {SHARED / 'cifar10.npz'}")
    console.print(f"search_resnet56: load average at start {os.getloadavg()[0]:.2f}; budgets reduced: "
                  f"{args.trials} trials a target, top-1 on {args.val_samples} test images, fine-tuning "
                  f"{args.epochs} epoch(s) on {args.train_samples} train images"
                  + (" (--quick: a smoke run, not a measurement)" if args.quick else ""))
    with tempfile.TemporaryDirectory(prefix="search_resnet56-") as scratch:
        folder = args.out or Path(scratch)
        found = run_fast_phase(args, folder)
        print_fast_phase(found, args)
        run_finetune_phase(found, args, folder)
    console.print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
