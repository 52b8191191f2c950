"""Wall time of pruning exploration on the pretrained CIFAR ResNet-56, 2,000 test images.

- a full sensitivity analysis: every channel group x 9 sparsities, each point a real,
  verified cut, evaluated by recomputing only the layers after the group;
- a 4-criterion comparison (std, range, mean_abs, max_abs): one threshold function per
  criterion (Algorithm 2, up to 12 points each).

Evaluation runs under torch.inference_mode, bf16 autocast where the CPU has it,
channels-last, batches of 500. Aim: the sensitivity analysis in under 3 minutes.

    python benchmarks/explore_speed.py [--data-dir ../shared/data] [--samples 2000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import trimkit
from trimkit import data, models, prune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    console = Console(width=160)
    model = trimkit.load_weights(models.create("resnet56"), args.data_dir / "pretrained/resnet56-4bfd9763.th").eval()
    test_set = data.load("cifar10", "test", args.data_dir, normalization=models.spec("resnet56").normalization())
    started = time.perf_counter()
    evaluation = prune.CachedEvaluation(test_set, args.samples)
    example = test_set.example_inputs(4)
    baseline = evaluation(model)
    setup = time.perf_counter() - started
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
                  f"{os.getloadavg()[0]:.2f}; evaluation in {evaluation.precision} on {evaluation.count} images: "
                  f"baseline top-1 {baseline:.2f} % (set-up and one evaluation {setup:.1f} s)")

    started = time.perf_counter()
    result = prune.sensitivity(model, example, evaluation, progress=True)
    sensitivity_seconds = time.perf_counter() - started
    points = sum(len(levels) for levels in result.metrics.values())

    started = time.perf_counter()
    comparison = prune.compare_criteria(model, example, evaluation, criteria=("std", "range", "mean_abs", "max_abs"),
                                        layers="both", mode="progressive")
    compare_seconds = time.perf_counter() - started
    curve_points = sum(len(c.points) for c in comparison.curves.values())
    evaluations = sum(c.evaluations for c in comparison.curves.values())

    table = Table(title=f"ResNet-56 exploration on {evaluation.count} CIFAR-10 images")
    for column in ("task", "groups / criteria", "points", "evaluations", "wall s", "s per point"):
        table.add_column(column, justify="left" if column == "task" else "right")
    table.add_row("sensitivity (9 sparsities)", str(len(result.metrics)), str(points), str(points),
                  f"{sensitivity_seconds:.1f}", f"{sensitivity_seconds / max(points, 1):.2f}")
    table.add_row("4-criterion comparison", "4", str(curve_points), str(evaluations), f"{compare_seconds:.1f}",
                  f"{compare_seconds / max(curve_points, 1):.2f}")
    console.print(table)
    console.print("AUC: " + ", ".join(f"{name} {auc:.3f}" for name, auc in comparison.auc.items())
                  + f"; best {comparison.best}; frozen groups: {len(result.frozen)}")
    console.print(f"aim: sensitivity under 180 s -> {'met' if sensitivity_seconds < 180 else 'missed'}")


if __name__ == "__main__":
    main()
