"""What precision does OpenVINO really compute in on this CPU, and what does it buy?

ResNet-56 (the pretrained CIFAR-10 weights when ../shared/data has them) on ONNX
Runtime f32, OpenVINO with precision asked f32 and left to the plugin (auto), and
PyTorch eager f32 and bf16. For each: the precision the runtime reports and the count
of convolution/dense layers per precision it runs them in, p50 at batch 1 and 32,
speed-up against ONNX Runtime f32, and top-1 on CIFAR-10 test images computed by that
runtime in that precision.

    python benchmarks/openvino_precision.py [--threads 2] [--images 2000] [--min-time 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

import trimkit
from trimkit import data, measure, models, train

PRETRAINED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pretrained" / "resnet56-4bfd9763.th"
CONFIGS = [("onnxruntime", "f32"), ("openvino", "f32"), ("openvino", "auto"), ("torch", "f32"), ("torch", "bf16")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()
    console = Console(width=160)
    model = models.create("resnet56")
    weights = "pretrained" if PRETRAINED.exists() else "random (no ../shared/data)"
    if PRETRAINED.exists():
        trimkit.load_weights(model, PRETRAINED)
    env = measure.environment(args.threads)
    console.print(f"{env['cpu']}: {', '.join(name for name, present in env['isa'].items() if present)}; "
                  f"native bf16: {train.cpu_has_native_bf16()}; ResNet-56 weights: {weights}; "
                  f"CPUs busy with other work: {env['busy_cpus_at_start']}")
    test = None
    if PRETRAINED.exists():
        test = data.load("cifar10", "test", normalization=models.origin(model).normalization()).subset(args.images)
    table = Table(title=f"ResNet-56, {args.threads} threads: precision asked and computed")
    for column in ("backend", "asked", "computed", "layers by precision", "p50 ms b1", "p50 ms b32",
                   "b32 vs ORT f32", "top-1 %"):
        table.add_column(column, justify="left" if column in ("backend", "asked", "computed") else "right")
    baseline_b32 = None
    for backend, precision in CONFIGS:
        results = {batch: measure.latency(model, backend=backend, precision=precision, batch_size=batch,
                                          threads=args.threads, min_time_s=args.min_time) for batch in (1, 32)}
        b32 = results[32].p50_ms
        baseline_b32 = baseline_b32 or b32
        top1 = "-"
        if test is not None:
            scored = measure.runtime_accuracy(model, test, backend=backend, precision=precision, threads=args.threads)
            top1 = f"{scored['top1']:.2f}"
        layers = results[32].compute_precisions
        table.add_row(backend, precision, results[32].precision,
                      "-" if not layers else ", ".join(f"{n} {p}" for p, n in layers.items()),
                      f"{results[1].p50_ms:.3f}", f"{b32:.2f}", f"{baseline_b32 / b32:.2f}x", top1)
    console.print(table)
    console.print(f"CPUs busy with other work after: {measure.busy_cpus()}")


if __name__ == "__main__":
    main()
