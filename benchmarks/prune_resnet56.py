"""Structured pruning of the pretrained CIFAR ResNet-56: trimkit against Torch-Pruning.

1. The pretrained ResNet-56 (option-A shortcuts) is fine-tuned on the JPEG CIFAR-10
   train split, so that the baseline fits the file (cached in runs/).
2. Methods, each fine-tuned with the same budget (SGD + Nesterov, lr 0.01, cosine,
   weight decay 5e-4, batch 128, pad-4 crop + flip, bf16 autocast on the CPU):
   - seed 002 / Li et al. "pruned-B": L1 on the first convolution of each block,
     60 / 30 / 10 % by stage, skipping layers 16, 20, 38 and 54;
   - trimkit global L1 (mean-normalised) at the ratio that halves the MACs, and the
     same with group-L1 (filters, norm scales and the next layers' input weights);
   - Torch-Pruning 1.6.1 Group-L1 (MetaPruner, global) at the same MACs, as it comes,
     and again with trimkit's option-A shortcut pruner registered.
3. Printed side by side: MACs reduction, parameters, top-1 before and after fine-tuning
   (10,000 test images), pruning wall time, and whether the pruned model runs.

    python benchmarks/prune_resnet56.py [--epochs 3] [--baseline-epochs 2] [--methods li,l1,group_l1,tp,tp_shortcut]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import torch
import torch_pruning as tp
from rich.console import Console
from rich.table import Table

import trimkit
from trimkit import data, models, prune, train
from trimkit.measure import profile
from trimkit.prune._custom_layers import customized_pruners

PRETRAINED = "pretrained/resnet56-4bfd9763.th"
LI_SKIPPED = {"layer1.7.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer3.8.conv1"}  # conv layers 16, 20, 38, 54
LI_STAGE_RATIOS = {"layer1": 0.6, "layer2": 0.3, "layer3": 0.1}
METHODS = ("li", "l1", "group_l1", "tp", "tp_shortcut")
console = Console(width=160)


def finetune(model, train_set, test_set, epochs, seed=0):
    train.fit(model, train_set, None, epochs=epochs, batch_size=128, optimizer="sgd", lr=0.01, weight_decay=5e-4,
              schedule="cosine", seed=seed, progress=True)
    return train.evaluate(model, test_set)["top1"]


def baseline(data_dir: Path, train_set, test_set, epochs: int) -> torch.nn.Module:
    cache = Path("runs") / f"resnet56-jpeg-finetuned-{epochs}ep.pt"
    if cache.exists():
        return trimkit.load(cache)
    model = trimkit.load_weights(models.create("resnet56"), data_dir / PRETRAINED)
    console.print(f"baseline: pretrained top-1 on the JPEG test split {train.evaluate(model, test_set)['top1']:.2f} %;"
                  f" fine-tuning {epochs} epochs")
    finetune(model, train_set, test_set, epochs)
    trimkit.save(model, cache, metadata={"benchmark": "prune_resnet56 baseline", "epochs": epochs})
    return model


def li_pruned_b(model, example):
    ratios = {f"{stage}.*.conv1": ratio for stage, ratio in LI_STAGE_RATIOS.items()}
    ratios = {**dict.fromkeys(LI_SKIPPED, 0.0), **ratios}
    return prune.structured(model, example, criterion="l1", ratio=ratios, layers="conv", mode="static")


def global_half_macs(model, example, target_macs, criterion="l1"):
    """Bisect the global ratio until the MACs are within 1 % of the target."""
    low, high, best = 0.0, 0.95, None
    for _ in range(12):
        middle = (low + high) / 2
        result = prune.structured(model, example, criterion=criterion, ratio=middle, scope="global", mode="static")
        closer = best is None or abs(result.macs_after - target_macs) < abs(best.macs_after - target_macs)
        best = result if closer else best
        if abs(result.macs_after - target_macs) / target_macs < 0.01:
            break
        low, high = (middle, high) if result.macs_after > target_macs else (low, middle)
    return best


def torch_pruning_group_l1(model, example, target_macs, with_trimkit_shortcut: bool):
    """Torch-Pruning's global Group-L1 pruner at the ratio that lands nearest the target."""
    low, high, best = 0.0, 0.95, None
    for _ in range(12):
        middle = (low + high) / 2
        candidate = copy.deepcopy(model).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MetaPruner(
                candidate, example, importance=tp.importance.GroupMagnitudeImportance(p=1), pruning_ratio=middle,
                global_pruning=True, ignored_layers=[candidate.linear],
                customized_pruners=customized_pruners() if with_trimkit_shortcut else None,
            )
            pruner.step()
        try:
            macs = profile(candidate, example).macs
        except RuntimeError as error:
            return None, str(error).splitlines()[0]
        if best is None or abs(macs - target_macs) < abs(best[1] - target_macs):
            best = (candidate, macs)
        if abs(macs - target_macs) / target_macs < 0.01:
            break
        low, high = (middle, high) if macs > target_macs else (low, middle)
    return best[0], None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs after pruning")
    parser.add_argument("--baseline-epochs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {', '.join(METHODS)}")
    args = parser.parse_args()
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    normalization = models.spec("resnet56").normalization()
    train_set = data.load("cifar10", "train", args.data_dir, normalization=normalization)
    test_set = data.load("cifar10", "test", args.data_dir, normalization=normalization)
    example = test_set.example_inputs(8)

    base = baseline(args.data_dir, train_set, test_set, args.baseline_epochs)
    base_top1 = train.evaluate(base, test_set)["top1"]
    base_profile = profile(base, example[:1])
    rows = [("baseline (fine-tuned on the JPEG split)", base, base_top1, base_top1, 0.0, "")]

    trimkit_methods = {
        "li": ("Li et al. pruned-B: L1, first conv of each block", lambda: li_pruned_b(base, example)),
        "l1": ("trimkit global L1, MACs / 2", lambda: global_half_macs(base, example, base_profile.macs / 2)),
        "group_l1": ("trimkit global group-L1, MACs / 2",
                     lambda: global_half_macs(base, example, base_profile.macs / 2, "group_l1")),
    }
    chosen = args.methods.split(",")
    for key, (label, run) in trimkit_methods.items():
        if key not in chosen:
            continue
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
        pruned = result.model
        rows.append((label, pruned, train.evaluate(pruned, test_set)["top1"],
                     finetune(pruned, train_set, test_set, args.epochs), seconds,
                     f"verified, {len(result.frozen)} frozen"))
    for key, label, with_shortcut in (("tp", "Torch-Pruning Group-L1, MACs / 2", False),
                                      ("tp_shortcut", "Torch-Pruning Group-L1 + trimkit shortcut pruner", True)):
        if key not in chosen:
            continue
        started = time.perf_counter()
        pruned, failure = torch_pruning_group_l1(base, example, base_profile.macs / 2, with_shortcut)
        seconds = time.perf_counter() - started
        if pruned is None:
            rows.append((label, None, None, None, seconds, f"crashes: {failure}"))
            continue
        rows.append((label, pruned, train.evaluate(pruned, test_set)["top1"],
                     finetune(pruned, train_set, test_set, args.epochs), seconds, "runs"))

    table = Table(title=f"ResNet-56 on CIFAR-10 (JPEG), fine-tuning {args.epochs} epochs each, SGD lr 0.01 cosine, "
                        f"bf16 on {torch.get_num_threads()} CPU threads")
    for column in ("method", "MACs", "MACs reduction", "params", "top-1 pruned", "top-1 fine-tuned",
                   "change", "prune s", "outcome"):
        table.add_column(column, justify="left" if column in ("method", "outcome") else "right")
    for label, model, top1_pruned, top1_tuned, seconds, outcome in rows:
        if model is None:
            table.add_row(label, "-", "-", "-", "-", "-", "-", f"{seconds:.1f}", outcome)
            continue
        measured = profile(model, example[:1])
        table.add_row(label, f"{measured.macs:,}", f"{base_profile.macs / measured.macs:.2f}x", f"{measured.params:,}",
                      f"{top1_pruned:.2f}", f"{top1_tuned:.2f}", f"{top1_tuned - base_top1:+.2f}", f"{seconds:.1f}",
                      outcome)
    console.print(table)
    console.print("published: Li et al. pruned-B -27.6 % FLOPs at +0.02 points; Torch-Pruning Group-L1 2.12x "
                  "at -0.60 points after 100 epochs (both on lossless CIFAR-10, longer fine-tuning)")


if __name__ == "__main__":
    main()
