"""Robots seed (003), Figures 3-4: unstructured pruning of LeNet and ResNet-18 on CIFAR-10.

For each model, method (random, class-uniform = ``layer``, class-blind = ``global``) and
sparsity: top-1 of the pruned model before and after a short fine-tuning (the masks
hold, so the zeros stay zero), the nonzero parameters, and the parameters left once the
neurons and filters the masks left dead are removed for real (the seed's Figure 4).
Then, for one pruned model per network, its size dense and in a sparse format, and its
latency on ONNX Runtime and OpenVINO beside the dense model's, with a plain statement of
whether sparsity bought any speed.

The seed plots Figures 3-4 without printing their values; what it does state is
printed beside ours: the models' parameter counts (its Table 1), the ResNet-18's
accuracy (its Table 2), and its findings (class-blind best at most sparsities and
steady above 40 %; parameter counts not linear in the sparsity and different by
method). Budgets are reduced for this CPU and printed.

    python benchmarks/robots_unstructured.py [--quick] [--models lenet5,resnet18]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cifar_baselines import Budget, baseline, cifar10
from _cifar_baselines import top1 as top1_of

from trimkit import measure, prune, train

console = Console(width=170)
METHODS = {"random": "random", "layer": "class-uniform", "global": "class-blind"}
SEED_PARAMS = {"lenet5": 0.357e6, "resnet18": 11.2e6}  # the seed's Table 1
SEED_TOP1 = {"resnet18": 92.48}  # the seed's Table 2 (ResNet-18 as teacher, CIFAR-10)


@dataclass(frozen=True)
class Plan:
    sparsities: tuple[float, ...]
    finetune_images: int
    finetune_epochs: int
    test_images: int


def plans(quick: bool) -> dict[str, Plan]:
    if quick:
        return {"lenet5": Plan((0.3, 0.6, 0.9), 512, 1, 500), "resnet18": Plan((0.9,), 64, 1, 200)}
    tenths = tuple(round(0.1 * i, 1) for i in range(1, 10))
    return {"lenet5": Plan(tenths, 2000, 1, 2000), "resnet18": Plan((0.3, 0.6, 0.9), 256, 1, 500)}


BUDGETS = {
    "quick": Budget.quick,
    # LeNet trained enough to be well above chance, on a machine too busy for the default
    "small": lambda: Budget(train_images=5_000, test_images=1_000, epochs={"lenet5": 8, "resnet18": 1}),
    "default": Budget.default,
    "gpu": Budget.gpu,
}


@dataclass
class Point:
    method: str
    sparsity: float
    top1_pruned: float
    top1_tuned: float
    nonzero: int
    params_after: int
    nonzero_after: int
    channels_removed: int
    kept_dead: int
    dense_bytes: int
    sparse_bytes: int


def run_model(name: str, budget: Budget, plan: Plan, latency_time: float) -> None:
    model, top1 = baseline(name, budget)
    train_set, test_set = cifar10(budget)
    test_set = test_set.subset(plan.test_images, seed=2)
    tune_set = train_set.subset(plan.finetune_images, seed=3)
    top1 = top1_of(model, test_set)
    example = test_set.example_inputs(8)
    params = sum(p.numel() for p in model.parameters())
    console.print(f"\n[bold]{name}[/]: {params:,} parameters (the seed's {name}: {SEED_PARAMS[name] / 1e6:.3g}M); "
                  f"baseline top-1 {top1:.2f} % on {len(test_set):,} test images"
                  + (f" (the seed's, fully trained: {SEED_TOP1[name]:.2f} %)" if name in SEED_TOP1 else ""))
    console.print(f"fine-tuning after pruning: {plan.finetune_epochs} epoch(s) on {len(tune_set):,} train images, "
                  "SGD lr 0.01 momentum 0.9 wd 5e-4, cosine; "
                  f"sparsities {', '.join(f'{s:.0%}' for s in plan.sparsities)}; "
                  "each pruned model is evaluated after dead-neuron removal (the same outputs, verified)")
    points = []
    for method in METHODS:
        for sparsity in plan.sparsities:
            started = time.perf_counter()
            result = prune.unstructured(model, method, sparsity, seed=0, example_inputs=example)
            compact = result.dead.model
            pruned_top1 = top1_of(compact, test_set)
            train.fit(compact, tune_set, None, epochs=plan.finetune_epochs, batch_size=64, lr=0.01, momentum=0.9,
                      weight_decay=5e-4, schedule="cosine", seed=0, progress=False)
            size = prune.sparse_size(compact)
            points.append(Point(method, sparsity, pruned_top1, top1_of(compact, test_set),
                                result.nonzero_params, result.dead.params_after, prune.nonzero_parameters(compact),
                                result.dead.channels_removed, len(result.dead.kept), size.dense_bytes,
                                size.sparse_bytes))
            print(f"  {name} {method} {sparsity:.0%}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    _accuracy_table(name, top1, plan, points)
    _params_table(name, params, plan, points)
    _findings(plan, points)
    _size_and_latency(name, model, example, latency_time)


def _accuracy_table(name: str, top1: float, plan: Plan, points: list[Point]) -> None:
    table = Table(title=f"Figure 3 ({name}): top-1 % pruned / after fine-tuning (baseline {top1:.2f})")
    table.add_column("sparsity", justify="right")
    for label in METHODS.values():
        table.add_column(f"{label} pruned", justify="right")
        table.add_column(f"{label} tuned", justify="right")
    for sparsity in plan.sparsities:
        row = [f"{sparsity:.0%}"]
        for method in METHODS:
            point = _find(points, method, sparsity)
            row += [f"{point.top1_pruned:.2f}", f"{point.top1_tuned:.2f}"]
        table.add_row(*row)
    console.print(table)


def _params_table(name: str, params: int, plan: Plan, points: list[Point]) -> None:
    table = Table(title=f"Figure 4 ({name}): nonzero parameters after dead-neuron removal "
                        "(masked nonzero -> after removal; channels removed, dead channels kept)")
    table.add_column("sparsity", justify="right")
    for label in METHODS.values():
        table.add_column(label, justify="right")
    for sparsity in plan.sparsities:
        row = [f"{sparsity:.0%}"]
        for method in METHODS:
            p = _find(points, method, sparsity)
            row.append(f"{p.nonzero:,} -> {p.nonzero_after:,} ({p.channels_removed} ch, {p.kept_dead} kept)")
        table.add_row(*row)
    console.print(table)
    gaps = {s: max(_find(points, m, s).nonzero_after for m in METHODS) - min(_find(points, m, s).nonzero_after
                                                                            for m in METHODS)
            for s in plan.sparsities}
    widest = max(gaps, key=gaps.__getitem__)
    removed = {m: sum(_find(points, m, s).nonzero - _find(points, m, s).nonzero_after for s in plan.sparsities)
               for m in METHODS}
    console.print(f"dense parameters: {params:,}. The masked counts fall linearly with the sparsity (by construction); "
                  f"after removal the methods differ at {sum(g > 0 for g in gaps.values())} of {len(gaps)} sparsities "
                  f"(widest gap {gaps[widest]:,} parameters at {widest:.0%}); parameters removed with dead neurons, "
                  "summed over sparsities: " + ", ".join(f"{METHODS[m]} {n:,}" for m, n in removed.items())
                  + ". The seed's Figure 4: not linear, and different by method.")


def _findings(plan: Plan, points: list[Point]) -> None:
    best = dict.fromkeys(("pruned", "tuned"), 0)
    for sparsity in plan.sparsities:
        for stage in best:
            scores = {m: getattr(_find(points, m, sparsity), f"top1_{stage}") for m in METHODS}
            best[stage] += scores["global"] >= max(scores.values())
    high = [s for s in plan.sparsities if s > 0.4]
    drops = {m: max((_find(points, m, s).top1_tuned for s in plan.sparsities), default=0)
             - min((_find(points, m, s).top1_tuned for s in high), default=0) for m in METHODS}
    console.print(f"seed: class-blind is best at most sparsities. here: class-blind best (or tied) at "
                  f"{best['pruned']} of {len(plan.sparsities)} sparsities before fine-tuning, {best['tuned']} after")
    console.print("seed: class-blind stays steady above 40 %. here: spread of tuned top-1 from its best to its "
                  "worst above 40 %: " + ", ".join(f"{METHODS[m]} {d:.2f} pts" for m, d in drops.items()))


def _size_and_latency(name: str, model, example, latency_time: float) -> None:
    result = prune.unstructured(model, "global", 0.9, example_inputs=example)
    masked, compact = result.model, result.dead.model
    size = prune.sparse_size(masked)
    formats = {}
    for layer in size.layers.values():
        formats[layer.format] = formats.get(layer.format, 0) + 1
    console.print(f"\n{name}, class-blind 90 %: {size.dense_bytes:,} bytes dense, {size.sparse_bytes:,} in the "
                  f"sparse format ({size.ratio:.1f}x smaller; per layer: "
                  + ", ".join(f"{count} {kind}" for kind, count in sorted(formats.items())) + ")")
    dense = copy.deepcopy(model)
    for backend in ("onnxruntime", "openvino"):
        try:
            timed = measure.latencies([dense, masked, compact], labels=["dense", "masked 90%", "dead removed"],
                                      backend=backend, batch_size=1, threads=2, min_time_s=latency_time)
        except Exception as error:  # a backend missing here is said, not hidden
            console.print(f"{backend}: not measured ({type(error).__name__}: {str(error).splitlines()[0]})")
            continue
        table = Table(title=f"{name} on {backend}, batch 1, 2 threads (machine load {os.getloadavg()[0]:.1f})")
        for column in ("model", "p50 ms", "p90 ms", "vs dense"):
            table.add_column(column, justify="left" if column == "model" else "right")
        base = timed[0]
        for item in timed:
            table.add_row(item.model, f"{item.p50_ms:.3f}", f"{item.p90_ms:.3f}", f"{base.p50_ms / item.p50_ms:.2f}x")
        console.print(table)
        console.print(_verdict(backend, base, timed[1], timed[2]))


def _verdict(backend: str, dense, masked, compact) -> str:
    """Whether the zeros alone made the runtime faster: a speed-up beyond the spread of
    both timings (p90 over p50; the cv of sub-millisecond timings is ruled by rare stalls)
    counts; anything less is noise."""
    noise = max(dense.p90_ms / dense.p50_ms - 1, masked.p90_ms / masked.p50_ms - 1, 0.02)
    gain = dense.p50_ms / masked.p50_ms - 1
    said = (f"{backend}: sparsity bought speed ({gain:+.0%})" if gain > noise else
            f"{backend}: sparsity bought no speed (masked vs dense {gain:+.0%}, within noise {noise:.0%}): the runtime "
            "multiplies the zeros like any other weight")
    removed = dense.p50_ms / compact.p50_ms - 1
    return said + f"; removing the dead neurons changed the time by {removed:+.0%}"


def _find(points: list[Point], method: str, sparsity: float) -> Point:
    return next(p for p in points if p.method == method and p.sparsity == sparsity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few sparsities, tiny fine-tuning")
    parser.add_argument("--models", default="lenet5,resnet18")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default=None,
                        help="the baselines' training budget (default: quick with --quick, else default)")
    parser.add_argument("--sparsities", default=None, help="comma-separated fractions, such as 0.3,0.6,0.9")
    parser.add_argument("--finetune-images", type=int, default=None)
    parser.add_argument("--test-images", type=int, default=None)
    args = parser.parse_args()
    console.print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
                  f"on {os.cpu_count()} CPUs")
    budget = BUDGETS[args.budget or ("quick" if args.quick else "default")]()
    chosen = args.budget or ("quick" if args.quick else "default")
    console.print(budget.describe() + f"  [budget {chosen}]; training on {train.resolve_device()}")
    console.print("reduced from the seed: its models were trained to convergence on all of CIFAR-10; here the "
                  "baselines train briefly on a subset, the fine-tuning after each pruning is one short epoch, and "
                  "ResNet-18 is pruned at fewer sparsities")
    for name in (n.strip() for n in args.models.split(",")):
        plan = plans(args.quick)[name]
        plan = Plan(tuple(float(s) for s in args.sparsities.split(",")) if args.sparsities else plan.sparsities,
                    args.finetune_images or plan.finetune_images, plan.finetune_epochs,
                    args.test_images or plan.test_images)
        run_model(name, budget, plan, latency_time=0.3 if args.quick else 2.0)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
