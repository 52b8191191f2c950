"""FP32 vs INT8 PTQ on the CPU: top-1 drop and latency speed-up at batch 1 and 32.

Each model is exported to FP32 ONNX and quantised twice with ONNX Runtime static
quantisation (QDQ, int8 per-channel weights, MinMax calibration on 512 training images):
U8S8 (uint8 activations, trimkit's default) and S8S8 (ONNX Runtime's default). Top-1 is
computed by each runtime on the same test images; latency is the p50 of calls timed
interleaved in one run (``trimkit.measure.compare``). OpenVINO runs where it compiles
the file; a failure is printed, not hidden.

ResNet-20/56 use the pretrained weights in ../shared/data/pretrained; models without
trained weights (mobilenetv2) are first trained for ``--train-epochs`` on
``--train-images`` CIFAR-10 images, so the drop is measured on a model that has learnt
something (their absolute top-1 is low, and says so).

    python benchmarks/int8_cpu.py [--models resnet20,resnet56,mobilenetv2] [--test-images 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from trimkit import data, load_weights, measure, models, quant, train

PRETRAINED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pretrained"
WEIGHTS = {"resnet20": "resnet20-12fca82f.th", "resnet56": "resnet56-4bfd9763.th"}
GOALS = "goals: top-1 drop <= 0.5 point, speed-up >= 2x at batch 32"


def trained_model(name: str, args: argparse.Namespace):
    model = models.create(name)
    normalization = models.origin(model).normalization()
    if name in WEIGHTS:
        return load_weights(model, PRETRAINED / WEIGHTS[name]), f"pretrained {WEIGHTS[name]}"
    train.seed_everything(0)
    subset = data.load("cifar10", "train", normalization=normalization).subset(args.train_images, seed=2)
    train.fit(model, subset, epochs=args.train_epochs, batch_size=128, lr=0.05, progress=False)
    return model, f"trained here: {args.train_epochs} epoch(s) on {args.train_images} images"


def latencies(paths: list[Path], labels: list[str], backend: str, batch: int, args) -> dict[str, float | str]:
    try:
        result = measure.compare(paths, labels=labels, backend=backend, batch_size=batch, threads=args.threads,
                                 min_time_s=args.min_time)
    except Exception as error:  # a runtime that cannot compile a file: report it, keep measuring the rest
        if len(paths) == 1:
            return {labels[0]: _reason(error)}
        merged: dict[str, float | str] = {}
        for path, label in zip(paths, labels):
            merged.update(latencies([path], [label], backend, batch, args))
        return merged
    return {row.label: row.latency.p50_ms for row in result.models}


def accuracy(path: Path, test, backend: str) -> float | str:
    try:
        return measure.runtime_accuracy(path, test, backend=backend)["top1"]
    except Exception as error:
        return _reason(error)


def run_model(name: str, args: argparse.Namespace, folder: Path) -> list[str]:
    model, source = trained_model(name, args)
    normalization = models.origin(model).normalization()
    calibration = data.load("cifar10", "train", normalization=normalization)
    test = data.load("cifar10", "test", normalization=normalization).subset(args.test_images, seed=3)
    files = {"fp32": None}
    for fmt in ("u8s8", "s8s8"):
        result = quant.ptq_int8(model, calibration, out=folder / f"{name}.{fmt}.onnx", int8_format=fmt)
        files[fmt] = result.path
        files["fp32"] = result.fp32_path
    labels, paths = list(files), list(files.values())
    lines = [f"{name} ({source}); top-1 on {len(test)} CIFAR-10 test images"]
    for backend in args.backends:
        top1 = {label: accuracy(path, test, backend) for label, path in files.items()}
        timing = {batch: latencies(paths, labels, backend, batch, args) for batch in (1, 32)}
        for label in labels:
            lines.append(_row(name, backend, label, top1, timing))
    return lines


def _reason(error: Exception) -> str:
    """The informative line of a runtime's error (OpenVINO's first lines name only its sources)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    checks = [line for line in lines if line.startswith("Check ")]
    return "fails: " + (checks or lines or [type(error).__name__])[0][:70]


def _row(name: str, backend: str, label: str, top1: dict, timing: dict) -> str:
    def number(value, fmt):
        return format(value, fmt) if isinstance(value, float) else str(value)

    drop = top1["fp32"] - top1[label] if isinstance(top1[label], float) and isinstance(top1["fp32"], float) else "-"
    cells = [name, backend, label.upper(), number(top1[label], ".2f"), number(drop, "+.2f")]
    for batch in (1, 32):
        base, this = timing[batch].get("fp32"), timing[batch].get(label)
        speedup = base / this if isinstance(base, float) and isinstance(this, float) else "-"
        cells += [number(this, ".3f"), number(speedup, ".2f")]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet20,resnet56,mobilenetv2")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()
    args.backends = args.backends.split(",")
    print(f"INT8 PTQ vs FP32, {args.threads} threads; load average at start {os.getloadavg()[0]:.2f}; {GOALS}")
    warning = quant.cpu_int8_warning()
    print(f"CPU int8 support: {'ok (VNNI or AMX)' if warning is None else warning}")
    print("| model | backend | file | top-1 % | drop (points) | b1 p50 ms | b1 speed-up | b32 p50 ms | b32 speed-up |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="trimkit-int8-") as folder:
        for name in args.models.split(","):
            lines = run_model(name, args, Path(folder))
            print("\n".join(lines[1:]))
            print(f"|  {lines[0]} | | | | | | | | |")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
