"""FLOPs against real speed-up: ResNet-56 pruned uniformly, measured on real runtimes.

Each conv group of ResNet-56 is pruned by the same ratio (0.25, 0.5, 0.75) with
``trimkit.prune.structured``, keeping channel counts multiples of ``round_to`` (1 or
8). The MACs speed-up (baseline MACs over pruned MACs) is printed beside the measured
p50 speed-up on ONNX Runtime and OpenVINO, batch 1 and 32, 1 and 2 threads. All
models of one configuration are timed interleaved in one run (``measure.latencies``),
so load on the machine falls on them alike. The goal: at batch 32, measured speed-up
at least 0.8 of the MACs speed-up.

A second table says where the time goes, from the runtimes' profilers at the largest
batch and 1 thread: convolution time and the rate it reaches (GMAC/s), and the time of
everything else (element-wise ops, shortcuts, layout reorders). Where convolutions
slow down per MAC as channels shrink, the kernels dislike the channel counts; where the
rest grows in share, memory-bound layers limit the speed-up.

    python benchmarks/flops_vs_latency.py [--ratios 0.25,0.5,0.75] [--round-to 1,8] \
        [--backends onnxruntime,openvino] [--batch-sizes 1,32] [--threads 1,2] [--min-time 1]
        (add 16 to --round-to to see channel counts that fill an AVX-512 register of f32)
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from trimkit import measure, models, prune


def pruned_models(ratios: list[float], round_tos: list[int]) -> tuple[list[str], list[torch.nn.Module], list[int]]:
    """The baseline and every (ratio, round_to) variant, with their MACs per image."""
    baseline = models.create("resnet56").eval()
    example = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels, variants, macs = ["resnet56"], [baseline], [measure.profile(baseline, example[:1]).macs]
    for round_to in round_tos:
        for ratio in ratios:
            result = prune.structured(baseline, example, ratio=ratio, round_to=round_to)
            labels.append(f"ratio {ratio:g}, round_to {round_to}")
            variants.append(result.model)
            macs.append(result.after.macs)
    return labels, variants, macs


def where_time_goes(labels: list[str], variants: list[torch.nn.Module], macs: list[int], backend: str,
                    batch_size: int, min_time_s: float) -> Table:
    """Convolution time, its MAC rate, and the time of all other layers, per model."""
    results = measure.latencies(variants, labels=labels, backend=backend, batch_size=batch_size, threads=1,
                                min_time_s=min_time_s, per_layer=True)
    table = Table(title=f"where the time goes: {backend}, batch {batch_size}, 1 thread, runtime profiler")
    for column in ("model", "MACs x", "p50 x", "conv ms", "conv GMAC/s", "other ms", "other %"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, result, model_macs in zip(labels, results, macs, strict=True):
        conv_ms = sum(row.ms for row in result.per_layer if "Conv" in row.op)
        other_ms = result.per_layer_total_ms - conv_ms
        table.add_row(label, f"{macs[0] / model_macs:.2f}", f"{results[0].p50_ms / result.p50_ms:.2f}",
                      f"{conv_ms:.2f}", f"{model_macs * batch_size / conv_ms / 1e6:.1f}", f"{other_ms:.2f}",
                      f"{100 * other_ms / result.per_layer_total_ms:.0f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", default="0.25,0.5,0.75")
    parser.add_argument("--round-to", default="1,8")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--min-time", type=float, default=1.0)
    args = parser.parse_args()
    console = Console(width=160)
    labels, variants, macs = pruned_models([float(r) for r in args.ratios.split(",")],
                                           [int(k) for k in args.round_to.split(",")])
    configs = [(backend, batch, threads) for backend in args.backends.split(",")
               for batch in map(int, args.batch_sizes.split(",")) for threads in map(int, args.threads.split(","))]
    console.print(f"CPUs busy with other work before: {measure.busy_cpus()}")
    speedups: dict[tuple, list[float]] = {}
    precisions = {}
    for config in configs:
        backend, batch, threads = config
        results = measure.latencies(variants, labels=labels, backend=backend, batch_size=batch, threads=threads,
                                    min_time_s=args.min_time)
        speedups[config] = [results[0].p50_ms / result.p50_ms for result in results]
        precisions[backend] = results[0].precision
        console.print(f"{backend} batch {batch} threads {threads}: baseline p50 {results[0].p50_ms:.3f} ms")
    table = Table(title="ResNet-56 pruned uniformly: MACs speed-up and measured p50 speed-up")
    table.add_column("model")
    table.add_column("MACs", justify="right")
    table.add_column("MACs x", justify="right")
    short = {"onnxruntime": "ORT", "openvino": "OV"}
    for backend, batch, threads in configs:
        table.add_column(f"{short.get(backend, backend)} {precisions[backend]}\nb{batch} t{threads}", justify="right")
    for index, label in enumerate(labels):
        target = macs[0] / macs[index]
        cells = []
        for config in configs:
            measured = speedups[config][index]
            flag = " *" if config[1] == max(int(b) for b in args.batch_sizes.split(",")) and \
                measured < 0.8 * target else ""
            cells.append(f"{measured:.2f}{flag}")
        table.add_row(label, f"{macs[index] / 1e6:.1f}M", f"{target:.2f}", *cells)
    console.print(table)
    console.print("* at the largest batch: measured speed-up below 0.8 of the MACs speed-up")
    largest = max(int(b) for b in args.batch_sizes.split(","))
    for backend in args.backends.split(","):
        console.print(where_time_goes(labels, variants, macs, backend, largest, args.min_time))
    console.print(f"CPUs busy with other work after: {measure.busy_cpus()}")


if __name__ == "__main__":
    main()
