"""Distillation where it pays most: recovering a structurally pruned ResNet-56 (issue 10, item 5).

The pretrained CIFAR ResNet-56 is pruned globally to 2x and 3x fewer MACs and each
pruned model is fine-tuned for the same epochs on the same images three ways:

- trimkit global group-L1, plain fine-tuning (cross-entropy);
- trimkit global group-L1, fine-tuned with knowledge distillation from the unpruned
  model (``trimkit.distill``: Hinton KD, temperature T, alpha on the soft term);
- Torch-Pruning's Group-L1 pipeline (MetaPruner, global, GroupMagnitudeImportance p=1,
  with trimkit's option-A shortcut pruner registered so that it runs on this model),
  plain fine-tuning: the outside reference.

Budgets are reduced for a 2-core CPU (a fixed random subset of the train split, few
epochs, a fixed test subset) and printed with the table.

    python benchmarks/kd_recovery_resnet56.py [--quick] [--epochs 2] [--train-images 5000] [--test-images 3000]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trimkit  # noqa: E402
import torch_pruning as tp  # noqa: E402
from prune_resnet56 import PRETRAINED  # noqa: E402
from trimkit import data, distill, models, prune, train  # noqa: E402
from trimkit.prune._custom_layers import customized_pruners  # noqa: E402
from trimkit.measure import profile  # noqa: E402

console = Console(width=170)
FINETUNE = {"batch_size": 128, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine"}


def bisect(run, target_macs: float, tolerance: float = 0.02, steps: int = 8):
    """The global ratio whose pruned model lands nearest ``target_macs``: ``run(ratio)``
    returns (model, macs); stops within ``tolerance`` of the target."""
    low, high, best = 0.0, 0.95, None
    for _ in range(steps):
        middle = (low + high) / 2
        model, macs = run(middle)
        if best is None or abs(macs - target_macs) < abs(best[2] - target_macs):
            best = (middle, model, macs)
        if abs(macs - target_macs) / target_macs < tolerance:
            break
        low, high = (middle, high) if macs > target_macs else (low, middle)
    return best


def trimkit_group_l1(base, example, target_macs):
    """trimkit's global group-L1 cut, searched without the per-cut check, then cut again
    at the chosen ratio with every cut verified."""
    def run(ratio, verify=False):
        result = prune.structured(base, example, criterion="group_l1", ratio=ratio, scope="global", mode="static",
                                  verify=verify)
        return result.model, result.macs_after

    ratio, _, _ = bisect(run, target_macs)
    return run(ratio, verify=True)[0], ratio


def torch_pruning_group_l1(base, example, target_macs):
    """Torch-Pruning's global Group-L1 (MetaPruner, GroupMagnitudeImportance p=1), with
    trimkit's option-A shortcut pruner registered (it crashes on this model without)."""
    def run(ratio):
        candidate = copy.deepcopy(base).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MetaPruner(candidate, example, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                          pruning_ratio=ratio, global_pruning=True,
                                          ignored_layers=[candidate.linear], customized_pruners=customized_pruners())
            pruner.step()
        return candidate, profile(candidate, example[:1]).macs

    ratio, model, _ = bisect(run, target_macs)
    return model, ratio


def finetune(model, train_set, epochs: int, teacher=None, temperature: float = 4.0, alpha: float = 0.9):
    """Fine-tune in place; with a teacher, through trimkit.distill (same loop, same budget)."""
    if teacher is None:
        train.fit(model, train_set, None, epochs=epochs, seed=0, progress=False, **FINETUNE)
        return None
    _, distiller = distill.distill(model, teacher, train_set, None, temperature=temperature, alpha=alpha,
                                   epochs=epochs, seed=0, progress=False, **FINETUNE)
    return distiller.precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: 256 images, 1 epoch, 2x only")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs, the same for every method")
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--test-images", type=int, default=3000)
    parser.add_argument("--targets", default="2,3", help="MACs reduction factors")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.train_images, args.test_images, args.targets = 1, 256, 256, "2"
    console.print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
                  f"{torch.get_num_threads()} threads")
    normalization = models.spec("resnet56").normalization()
    train_set = data.load("cifar10", "train", args.data_dir, normalization=normalization).subset(args.train_images)
    test_set = data.load("cifar10", "test", args.data_dir, normalization=normalization).subset(args.test_images, 1)
    example = test_set.example_inputs(8)
    base = trimkit.load_weights(models.create("resnet56"), args.data_dir / PRETRAINED).eval()
    base_top1 = train.evaluate(base, test_set)["top1"]
    base_macs = profile(base, example[:1]).macs
    budget = (f"budget reduced for this CPU: fine-tuning {args.epochs} epoch(s) on {len(train_set):,} of 50,000 "
              f"train images (fixed random subset), top-1 on {len(test_set):,} of 10,000 test images; "
              f"SGD lr {FINETUNE['lr']} cosine, batch {FINETUNE['batch_size']}, wd {FINETUNE['weight_decay']}")
    console.print(budget)
    console.print(f"unpruned ResNet-56 (pretrained, {base_macs:,} MACs): top-1 {base_top1:.2f} %")

    rows: list[tuple] = []

    def add(factor, label, model, pruned_top1, note=""):
        if model is None:
            rows.append((factor, label, None, None, None, None, note))
            return
        measured = profile(model, example[:1])
        rows.append((factor, label, measured.macs, measured.params, pruned_top1,
                     train.evaluate(model, test_set)["top1"], note))

    for factor in [float(f) for f in args.targets.split(",")]:
        target = base_macs / factor
        theirs, theirs_ratio = torch_pruning_group_l1(base, example, target)
        ours, ours_ratio = trimkit_group_l1(base, example, profile(theirs, example[:1]).macs)  # equal MACs
        console.print(f"{factor:g}x: Torch-Pruning ratio {theirs_ratio:.3f}, trimkit ratio {ours_ratio:.3f}")
        ours_top1 = train.evaluate(ours, test_set)["top1"]
        plain = copy.deepcopy(ours)
        finetune(plain, train_set, args.epochs)
        add(factor, "trimkit global group-L1, plain fine-tuning", plain, ours_top1)
        kd = copy.deepcopy(ours)
        choice = finetune(kd, train_set, args.epochs, teacher=base, temperature=args.temperature, alpha=args.alpha)
        add(factor, f"trimkit global group-L1, KD from the unpruned model (T={args.temperature:g}, alpha={args.alpha:g})",
            kd, ours_top1, f"teacher in {choice.precision}: {choice.reason}")
        theirs_top1 = train.evaluate(theirs, test_set)["top1"]
        finetune(theirs, train_set, args.epochs)
        add(factor, "Torch-Pruning Group-L1 pipeline, plain fine-tuning", theirs, theirs_top1)
        _print(rows, base_top1, base_macs, args, budget)


def _print(rows, base_top1, base_macs, args, budget) -> None:
    table = Table(title=f"ResNet-56 on CIFAR-10: recovery after global structured pruning, {args.epochs} "
                        "fine-tuning epoch(s) each")
    for column in ("target", "method", "MACs", "reduction", "params", "top-1 pruned", "top-1 fine-tuned",
                   "vs unpruned", "note"):
        table.add_column(column, justify="left" if column in ("method", "note") else "right")
    best: dict[float, dict[str, float]] = {}
    for factor, label, macs, params, pruned_top1, top1, note in rows:
        if macs is None:
            table.add_row(f"{factor:g}x", label, "-", "-", "-", "-", "-", "-", note)
            continue
        side = "tp" if label.startswith("Torch") else "trimkit"
        best.setdefault(factor, {})[side] = max(best.get(factor, {}).get(side, 0.0), top1)
        table.add_row(f"{factor:g}x", label, f"{macs:,}", f"{base_macs / macs:.2f}x", f"{params:,}",
                      f"{pruned_top1:.2f}", f"{top1:.2f}", f"{top1 - base_top1:+.2f}", note)
    console.print(table)
    console.print(budget)
    for factor, sides in best.items():
        if "tp" in sides and "trimkit" in sides:
            gap = sides["trimkit"] - sides["tp"]
            verdict = "meets" if gap >= 0.5 else "misses"
            console.print(f"{factor:g}x: trimkit's best {sides['trimkit']:.2f} % vs Torch-Pruning {sides['tp']:.2f} % "
                          f"= {gap:+.2f} points ({verdict} the +0.5 goal)")

if __name__ == "__main__":
    main()
