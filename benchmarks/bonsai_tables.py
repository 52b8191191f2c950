"""Bonsai (seed 001) Tables 2-7 with trimkit: models A, B, C on MNIST and CIFAR-10.

For each model and data set: train; for each layer selection (both, conv, dense) and
criterion (std, max_abs, mean_abs, range) run the threshold function (Algorithm 2,
no fine-tuning) and print its AUC beside the paper's (Tables 2-3). Then prune at the
recommended threshold (end of the plateau within --max-drop points, refined by
bisection) with the best criterion and layer selection, retrain, and print accuracy, % of filters pruned and
FLOPs beside the paper's Tables 4-7.

CPU budget (defaults): Adam lr 1e-3, batch 128, bf16 autocast; MNIST 2 epochs, CIFAR-10
6 epochs (pad-4 crop + flip); threshold functions on 2,000 test images with up to 10
points; retraining 2 epochs at lr 3e-4. ``--train-samples`` trains on a fixed subset
for a quicker run. The paper does not give its training budget.

    python benchmarks/bonsai_tables.py [--data-dir ../shared/data] [--train-samples N] [--models a,b,c]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from trimkit import data, models, prune, train
from trimkit.measure import profile

CRITERIA = ("std", "max_abs", "mean_abs", "range")
SELECTIONS = ("both", "conv", "dense")
# The paper's Tables 2-3: AUC per data set, layer selection and model, in CRITERIA order.
PAPER_AUC = {
    "mnist": {"both": {"a": (0.860, 0.245, 0.855, 0.219), "b": (0.824, 0.244, 0.805, 0.324),
                       "c": (0.806, 0.781, 0.776, 0.778)},
              "conv": {"a": (0.879, 0.232, 0.870, 0.230), "b": (0.801, 0.230, 0.789, 0.182),
                       "c": (0.045, 0.036, 0.061, 0.042)},
              "dense": {"a": (0.174, 0.169, 0.179, 0.175), "b": (0.280, 0.242, 0.283, 0.235),
                        "c": (0.804, 0.780, 0.777, 0.779)}},
    "cifar10": {"both": {"a": (0.293, 0.192, 0.343, 0.177), "b": (0.431, 0.239, 0.474, 0.242),
                         "c": (0.166, 0.155, 0.167, 0.150)},
                "conv": {"a": (0.225, 0.156, 0.275, 0.158), "b": (0.363, 0.185, 0.425, 0.225),
                         "c": (0.044, 0.031, 0.043, 0.038)},
                "dense": {"a": (0.191, 0.085, 0.202, 0.081), "b": (0.280, 0.131, 0.311, 0.135),
                          "c": (0.297, 0.333, 0.321, 0.313)}},
}
# Tables 4-7: original top-1, after prune + retrain, % pruned; FLOPs original, after.
PAPER_RESULT = {
    "mnist": {"a": (99.04, 99.33, 79.00, 105_595_549, 32_973_437), "b": (99.07, 98.73, 76.52, 107_757_094, 37_178_977),
              "c": (98.00, 97.90, 70.83, 752_919, 330_418)},
    "cifar10": {"a": (77.14, 78.36, 16.55, 158_355_901, 120_584_938),
                "b": (73.26, 79.11, 38.76, 166_591_782, 98_209_450), "c": (49.72, 50.32, 35.72, 953_727, 772_011)},
}
EPOCHS = {"mnist": 2, "cifar10": 6}
console = Console(width=170)


def train_model(variant: str, dataset: str, args) -> tuple:
    in_channels = 1 if dataset == "mnist" else 3
    train.seed_everything(0)
    model = models.create(f"vgg_{variant}", in_channels=in_channels)
    normalization = models.spec(f"vgg_{variant}").normalization(in_channels)
    train_set = data.load(dataset, "train", args.data_dir, normalization=normalization)
    if args.train_samples:
        train_set = train_set.subset(args.train_samples)
    test_set = data.load(dataset, "test", args.data_dir, normalization=normalization)
    train.fit(model, train_set, epochs=EPOCHS[dataset], optimizer="adam", lr=1e-3, weight_decay=0.0,
              schedule="cosine", progress=True)
    return model.eval(), train_set, test_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="mnist,cifar10")
    parser.add_argument("--models", default="a,b,c")
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--max-evals", type=int, default=10)
    parser.add_argument("--max-drop", type=float, default=2.0)
    parser.add_argument("--retrain-epochs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    for dataset in args.datasets.split(","):
        auc_rows, result_rows = [], []
        for variant in args.models.split(","):
            model, train_set, test_set = train_model(variant, dataset, args)
            evaluation = prune.CachedEvaluation(test_set, args.eval_samples)
            example = test_set.example_inputs(4)
            baseline = evaluation(model)
            comparisons = {}
            for selection in SELECTIONS:
                comparisons[selection] = prune.compare_criteria(model, example, evaluation, criteria=CRITERIA,
                                                                layers=selection, max_evals=args.max_evals)
                aucs = comparisons[selection].auc
                paper = PAPER_AUC[dataset][selection][variant]
                auc_rows.append((variant.upper(), selection,
                                 *(f"{aucs[c]:.3f} ({p:.3f})" for c, p in zip(CRITERIA, paper)),
                                 comparisons[selection].best))
            selection, comparison = max(comparisons.items(), key=lambda item: item[1].auc[item[1].best])
            curve = prune.threshold_function(model, example, evaluation, criterion=comparison.best, layers=selection,
                                             max_evals=args.max_evals, baseline=baseline, refine_drop=args.max_drop)
            threshold = prune.recommend_threshold(curve, args.max_drop)
            pruned = prune.structured(model, example, criterion=comparison.best, threshold=threshold, layers=selection)
            train.fit(pruned.model, train_set, epochs=args.retrain_epochs, optimizer="adam", lr=3e-4,
                      weight_decay=0.0, progress=True)
            original_top1 = train.evaluate(model, test_set)["top1"]
            after_top1 = train.evaluate(pruned.model, test_set)["top1"]
            paper = PAPER_RESULT[dataset][variant]
            flops_before, flops_after = profile(model, example[:1]).flops, profile(pruned.model, example[:1]).flops
            result_rows.append((variant.upper(), f"{comparison.best}, {selection}, t={threshold:.3f}",
                                f"{original_top1:.2f} ({paper[0]:.2f})", f"{after_top1:.2f} ({paper[1]:.2f})",
                                f"{100 * pruned.filters_pruned:.1f} ({paper[2]:.1f})",
                                f"{flops_before:,} ({paper[3]:,})", f"{flops_after:,} ({paper[4]:,})",
                                f"{100 * (1 - flops_after / flops_before):.1f} "
                                f"({100 * (1 - paper[4] / paper[3]):.1f})", f"{baseline:.2f}"))
        table = Table(title=f"AUC of the threshold functions on {dataset}: ours (paper), Tables 2-3")
        for column in ("model", "layers", *CRITERIA, "best"):
            table.add_column(column, justify="left" if column in ("model", "layers", "best") else "right")
        for row in auc_rows:
            table.add_row(*row)
        console.print(table)
        table = Table(title=f"Prune at the recommended threshold and retrain on {dataset}: ours (paper), Tables 4-7")
        for column in ("model", "criterion, layers, threshold", "top-1 original", "top-1 after", "% filters pruned",
                       "FLOPs original", "FLOPs after", "% FLOPs reduction", f"top-1 on {args.eval_samples} (AUC set)"):
            table.add_column(column, justify="left" if column in ("model", "criterion, layers, threshold") else "right")
        for row in result_rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"wall time {time.perf_counter() - started:.0f} s; FLOPs by the seed's formulas (2*MACs of conv "
                  "and dense layers); the paper's FLOP counts use a different convention, compare the reductions")


if __name__ == "__main__":
    main()
