"""The robots seed's Table 2 and Figure 6 (ResNet-18 teacher, LeNet student, CIFAR-10).

Table 2: the LeNet student trained alone against the same student distilled from the
ResNet-18 teacher (Hinton KD through ``trimkit.distill``), at the same budget: the same
images, epochs, optimiser, initial weights and augmentation.

Figure 6: the distilled student pruned class-blind (``trimkit.prune.unstructured``,
method ``global``) at 10 ... 90 %, top-1 before and after a short fine-tuning, against
the total compression: the pruned student's parameters (nonzero, after dead neurons
are removed) over the teacher's.

Budgets are reduced for a 2-core CPU (see ``_cifar_baselines``) and printed. The
teacher's logits are memoised per training image (``Distiller(memo=True)``), so the
distilled student and the student it is compared with train without augmentation;
the augmented student alone (the cached baseline) is shown too.

    python benchmarks/robots_distill.py [--quick] [--temperature 4] [--alpha 0.9] [--finetune-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cifar_baselines import Budget, baseline, cifar10, create, fit_settings, parameters, top1

from trimkit import distill, prune, train

console = Console(width=160)
SEED_TABLE2 = {"teacher": 92.48, "student": 85.10, "params": "11.2x10^6 to 0.357x10^6"}
SEED_FIGURE6 = "seed (Figure 6a, ResNet-18 to LeNet): top-1 above 80 % up to a total compression of more than 90 %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check on the quick budget")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning after each pruning (Figure 6)")
    parser.add_argument("--sparsities", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    parser.add_argument("--budget", choices=("quick", "default", "gpu"), help="default: quick with --quick")
    args = parser.parse_args()
    budget = getattr(Budget, args.budget or ("quick" if args.quick else "default"))()
    if args.quick:
        args.sparsities, args.finetune_epochs = "0.5,0.9", 1
    load = os.getloadavg()
    console.print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {torch.get_num_threads()} threads")
    console.print(budget.describe() + f"; training on {train.resolve_device()}")
    train_set, test_set = cifar10(budget)
    teacher, teacher_top1 = baseline("resnet18", budget)
    _augmented, augmented_top1 = baseline("lenet5", budget)
    epochs = budget.epochs_for("lenet5")
    settings = {**fit_settings("lenet5"), "epochs": epochs, "seed": budget.seed, "augment": False, "progress": False}

    torch.manual_seed(budget.seed)
    alone = create("lenet5")
    torch.manual_seed(budget.seed)
    student = create("lenet5")
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), student.state_dict().values()))
    train.fit(alone, train_set, None, **settings)
    _, distiller = distill.distill(student, teacher, train_set, None, temperature=args.temperature, alpha=args.alpha,
                                   memo=True, **settings)
    teacher.cpu()
    alone_top1 = top1(alone, test_set)
    student_top1 = top1(student, test_set)

    table = Table(title="Table 2: ResNet-18 teacher, LeNet student, CIFAR-10 (top-1 %)")
    for column in ("", "teacher", "student alone (augmented)", "student alone", "student distilled",
                   "parameters"):
        table.add_column(column, justify="left" if column in ("", "parameters") else "right")
    table.add_row("measured here", f"{teacher_top1:.2f}", f"{augmented_top1:.2f}", f"{alone_top1:.2f}",
                  f"{student_top1:.2f}", f"{parameters(teacher):,} to {parameters(student):,}")
    table.add_row("seed (Table 2)", f"{SEED_TABLE2['teacher']:.2f}", "-", "-", f"{SEED_TABLE2['student']:.2f}",
                  SEED_TABLE2["params"])
    console.print(table)
    console.print(f"same budget for 'alone' and 'distilled': {epochs} epochs, {len(train_set):,} images, no "
                  f"augmentation, the same initial weights; KD T={args.temperature:g}, alpha={args.alpha:g} (alpha "
                  f"weights the soft term); the teacher ran in {distiller.precision.precision} "
                  f"({distiller.precision.reason}), its logits memoised for {len(distiller.memo):,} images")
    console.print(f"distilled - alone: {student_top1 - alone_top1:+.2f} points")

    figure6(student, teacher, train_set, test_set, args, settings)


def figure6(student, teacher, train_set, test_set, args, settings) -> None:
    teacher_params = parameters(teacher)
    example = test_set.example_inputs(2)
    table = Table(title=f"Figure 6: the distilled LeNet pruned class-blind (global magnitude), fine-tuned "
                        f"{args.finetune_epochs} epoch(s); total compression = 1 - student params / teacher params")
    for column in ("pruned %", "nonzero params", "params after dead-neuron removal", "total compression %",
                   "top-1 pruned", "top-1 fine-tuned"):
        table.add_column(column, justify="right")
    base_top1 = top1(student, test_set)
    table.add_row("0", f"{parameters(student):,}", f"{parameters(student):,}",
                  f"{100 * (1 - parameters(student) / teacher_params):.2f}", f"{base_top1:.2f}", f"{base_top1:.2f}")
    tune = {**settings, "epochs": args.finetune_epochs, "lr": 0.01}
    for sparsity in [float(s) for s in args.sparsities.split(",")]:
        result = prune.unstructured(student, method="global", sparsity=sparsity, example_inputs=example)
        pruned_top1 = top1(result.model, test_set)
        train.fit(result.model, train_set, None, **tune)
        tuned_top1 = top1(result.model, test_set)
        kept = result.params_after_removal if result.params_after_removal is not None else result.nonzero_params
        table.add_row(f"{100 * sparsity:.0f}", f"{result.nonzero_params:,}", f"{kept:,}",
                      f"{100 * (1 - kept / teacher_params):.2f}", f"{pruned_top1:.2f}", f"{tuned_top1:.2f}")
    console.print(table)
    console.print(SEED_FIGURE6)
    console.print("note: trimkit's LeNet-5 has 83,126 parameters on CIFAR-10 (0.74 % of ResNet-18); the seed's LeNet "
                  "has 0.357x10^6 (3.2 %), so every row here starts from a higher total compression")


if __name__ == "__main__":
    main()
