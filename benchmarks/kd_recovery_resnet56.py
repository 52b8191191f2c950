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
epochs, a fixed test subset) and printed with the table. Training runs on CUDA where
there is one (``--device``). On a GPU the three methods of a target can run as separate
processes side by side (``--methods``), each writing its rows (``--rows-out``), and
``--combine`` prints one table from those files:

    python benchmarks/kd_recovery_resnet56.py [--quick] [--epochs 2] [--train-images 5000] [--test-images 3000]
    python benchmarks/kd_recovery_resnet56.py --targets 2 --methods kd --rows-out kd2.json   # one method
    python benchmarks/kd_recovery_resnet56.py --combine plain2.json kd2.json tp2.json      # one table
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch_pruning as tp
from _cifar_baselines import CACHE, top1
from prune_resnet56 import PRETRAINED

import trimkit
from trimkit import data, distill, models, prune, train
from trimkit.measure import profile
from trimkit.prune._custom_layers import customized_pruners

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


def finetune(model, train_set, epochs: int, device: str, teacher=None, temperature: float = 4.0,
             alpha: float = 0.9):
    """Fine-tune in place on ``device``, then back to the CPU; with a teacher, through
    trimkit.distill (same loop, same budget)."""
    if teacher is None:
        train.fit(model, train_set, None, epochs=epochs, seed=0, progress=False, device=device, **FINETUNE)
        model.cpu()
        return None
    _, distiller = distill.distill(model, teacher, train_set, None, temperature=temperature, alpha=alpha,
                                   epochs=epochs, seed=0, progress=False, device=device, **FINETUNE)
    model.cpu()
    teacher.cpu()
    return distiller.precision


def adapted(base, train_set, epochs: int, device: str):
    """The unpruned model fine-tuned ``epochs`` on ``train_set`` (the same settings as the
    recovery), cached, so that parallel runs of this script start from the same weights."""
    path = CACHE / f"resnet56-adapted-n{len(train_set)}-e{epochs}.pt"
    if path.exists():
        return trimkit.load(path).eval()
    train.fit(base, train_set, None, epochs=epochs, seed=0, progress=False, device=device, **FINETUNE)
    base.cpu().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    trimkit.save(base, path, metadata={"benchmark": "kd_recovery_resnet56", "adapt_epochs": epochs})
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: 256 images, 1 epoch, 2x only")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs, the same for every method")
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--test-images", type=int, default=3000)
    parser.add_argument("--targets", default="2,3", help="MACs reduction factors")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--adapt-epochs", type=int, default=0,
                        help="first fine-tune the unpruned model this many epochs on the same train images (cached): "
                             "the start of every method and the teacher (the shared CIFAR-10 is JPEG-decoded, and the "
                             "pretrained weights were fitted to the lossless images)")
    parser.add_argument("--prepare-only", action="store_true", help="adapt (and cache) the unpruned model, then stop")
    parser.add_argument("--methods", default="plain,kd,tp", help="any of plain, kd, tp")
    parser.add_argument("--device", default="auto", help="auto (CUDA where present), cpu or cuda")
    parser.add_argument("--rows-out", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--combine", type=Path, nargs="+", help="print one table from --rows-out files and stop")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    if args.combine:
        _combine(args.combine)
        return
    methods = {m.strip() for m in args.methods.split(",")}
    if not methods <= {"plain", "kd", "tp"}:
        parser.error(f"--methods takes plain, kd and tp, got {args.methods!r}")
    device = str(train.resolve_device(args.device))
    if args.quick:
        args.epochs, args.train_images, args.test_images, args.targets = 1, 256, 256, "2"
    console.print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
                  f"{torch.get_num_threads()} threads")
    normalization = models.spec("resnet56").normalization()
    train_set = data.load("cifar10", "train", args.data_dir, normalization=normalization).subset(args.train_images)
    test_set = data.load("cifar10", "test", args.data_dir, normalization=normalization).subset(args.test_images, 1)
    example = test_set.example_inputs(8)
    base = trimkit.load_weights(models.create("resnet56"), args.data_dir / PRETRAINED).eval()
    console.print(f"pretrained ResNet-56: top-1 {top1(base, test_set, device):.2f} %")
    if args.adapt_epochs:
        base = adapted(base, train_set, args.adapt_epochs, device)
    if args.prepare_only:
        return
    base_top1 = top1(base, test_set, device)
    base_macs = profile(base, example[:1]).macs
    start = (f"the pretrained model fine-tuned {args.adapt_epochs} epoch(s) on the same images first (also the "
             "teacher); " if args.adapt_epochs else "")
    budget = (start + f"budget: fine-tuning {args.epochs} epoch(s) on {len(train_set):,} of 50,000 "
              f"train images (fixed random subset), top-1 on {len(test_set):,} of 10,000 test images; "
              f"SGD lr {FINETUNE['lr']} cosine, batch {FINETUNE['batch_size']}, wd {FINETUNE['weight_decay']}; "
              f"on {device}" + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""))
    console.print(budget)
    console.print(f"unpruned ResNet-56 ({'adapted' if args.adapt_epochs else 'pretrained'}, {base_macs:,} MACs): "
                  f"top-1 {base_top1:.2f} %")

    rows: list[tuple] = []

    def add(factor, label, model, pruned_top1, note=""):
        if model is None:
            rows.append((factor, label, None, None, None, None, note))
            return
        measured = profile(model, example[:1])
        rows.append((factor, label, measured.macs, measured.params, pruned_top1, top1(model, test_set, device), note))

    for factor in [float(f) for f in args.targets.split(",")]:
        target = base_macs / factor
        theirs, theirs_ratio = torch_pruning_group_l1(base, example, target)
        ours, ours_ratio = trimkit_group_l1(base, example, profile(theirs, example[:1]).macs)  # equal MACs
        console.print(f"{factor:g}x: Torch-Pruning ratio {theirs_ratio:.3f}, trimkit ratio {ours_ratio:.3f}")
        ours_top1 = top1(ours, test_set, device)
        if "plain" in methods:
            plain = copy.deepcopy(ours)
            finetune(plain, train_set, args.epochs, device)
            add(factor, "trimkit global group-L1, plain fine-tuning", plain, ours_top1)
        if "kd" in methods:
            kd = copy.deepcopy(ours)
            choice = finetune(kd, train_set, args.epochs, device, teacher=base, temperature=args.temperature,
                              alpha=args.alpha)
            add(factor, f"trimkit global group-L1, KD from the unpruned model (T={args.temperature:g}, "
                        f"alpha={args.alpha:g})", kd, ours_top1, f"teacher in {choice.precision}: {choice.reason}")
        if "tp" in methods:
            theirs_top1 = top1(theirs, test_set, device)
            finetune(theirs, train_set, args.epochs, device)
            add(factor, "Torch-Pruning Group-L1 pipeline, plain fine-tuning", theirs, theirs_top1)
        _print(rows, base_top1, base_macs, args.epochs, budget)
        if args.rows_out is not None:
            _write_rows(args.rows_out, rows, base_top1, base_macs, args.epochs, budget)


def _write_rows(path: Path, rows, base_top1, base_macs, epochs, budget) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps({"rows": rows, "base_top1": base_top1, "base_macs": base_macs,
                                     "epochs": epochs, "budget": budget}))
    temporary.replace(path)


def _combine(paths: list[Path]) -> None:
    parts = [json.loads(path.read_text()) for path in paths]
    first = parts[0]
    for part in parts[1:]:
        if (part["base_top1"], part["base_macs"], part["epochs"], part["budget"]) != (
                first["base_top1"], first["base_macs"], first["epochs"], first["budget"]):
            raise SystemExit(f"the row files were not measured on the same budget: {paths}")
    order = {"trimkit global group-L1, plain": 0, "trimkit global group-L1, KD": 1, "Torch-Pruning": 2}
    rows = sorted((tuple(row) for part in parts for row in part["rows"]),
                  key=lambda row: (row[0], next((v for k, v in order.items() if row[1].startswith(k)), 3)))
    _print(rows, first["base_top1"], first["base_macs"], first["epochs"], first["budget"])


def _print(rows, base_top1, base_macs, epochs, budget) -> None:
    table = Table(title=f"ResNet-56 on CIFAR-10: recovery after global structured pruning, {epochs} "
                        "fine-tuning epoch(s) each")
    for column in ("target", "method", "MACs", "reduction", "params", "top-1 pruned", "top-1 fine-tuned",
                   "vs unpruned", "note"):
        table.add_column(column, justify="left" if column in ("method", "note") else "right")
    best: dict[float, dict[str, float]] = {}
    for factor, label, macs, params, pruned_top1, tuned_top1, note in rows:
        if macs is None:
            table.add_row(f"{factor:g}x", label, "-", "-", "-", "-", "-", "-", note)
            continue
        side = "tp" if label.startswith("Torch") else "trimkit"
        best.setdefault(factor, {})[side] = max(best.get(factor, {}).get(side, 0.0), tuned_top1)
        table.add_row(f"{factor:g}x", label, f"{macs:,}", f"{base_macs / macs:.2f}x", f"{params:,}",
                      f"{pruned_top1:.2f}", f"{tuned_top1:.2f}", f"{tuned_top1 - base_top1:+.2f}", note)
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
