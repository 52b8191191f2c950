"""Deployment chosen by measurement (``trimkit.deploy.choose``) against hand choices, on CIFAR-10.

For each model and batch size: every candidate deploy measured (runtime x precision x
INT8 recipe x threads, timed interleaved in one run, top-1 computed by that runtime in
that precision on the test images), the one it chose, and then, as a user would check
it by hand:

* hand choices: the usual single picks (ONNX Runtime fp32 and its INT8 file, OpenVINO
  with its default precision and its NNCF INT8 file, at all CPUs), each timed alone with
  ``measure.latency`` (not interleaved), top-1 from deploy's table (same file, runtime and
  precision); the best hand choice is the fastest of them within the allowed drop;
* an independent check of the deployment folder: ``deploy.load(DIR)`` called in a plain
  loop on real test images against ONNX Runtime fp32 of the same model with its default
  session options, in alternating blocks, and both scored on the same test images.

Goals (ResNet-56, batch 32): the deployment at least 3x faster than ONNX Runtime fp32 at no
more than 0.3 points of top-1 lost, and not slower than the best hand choice (ratio <= 1.05,
within noise). Timings need a quiet machine: the load average and the CPUs other processes
kept busy are printed at the start and the end.

ResNet-20/56 use the pretrained weights in ../shared/data/pretrained; MobileNetV2 has none,
so it is first trained for ``--train-epochs`` on ``--train-images`` CIFAR-10 images (cached
in .cache/benchmarks/), to be scored on something that has learnt.

    python benchmarks/deploy_choice.py                     # the full run (about 30-60 min on 2 cores)
    python benchmarks/deploy_choice.py --quick             # a functional check: small, noisy, minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import trimkit
from trimkit import data, deploy, measure, models, tasks, train
from trimkit._cpu import cpu_flags, cpu_model

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT.parent / "shared" / "data" / "pretrained"
WEIGHTS = {"resnet20": "resnet20-12fca82f.th", "resnet56": "resnet56-4bfd9763.th"}
CACHE = ROOT / ".cache" / "benchmarks"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
#: the single picks a user makes by hand: label, runtime, precision asked of it, deploy's file for it,
#: and the candidate precision whose top-1 it shares (OpenVINO's default is bf16 where the CPU has it)
HAND = (("ONNX Runtime fp32", "onnxruntime", "fp32", "fp32.onnx", "fp32"),
        ("ONNX Runtime INT8 (trimkit's QDQ U8S8)", "onnxruntime", "fp32", "int8-qdq-u8s8.onnx", "int8"),
        ("OpenVINO default precision", "openvino", "auto", "fp32.xml", None),
        ("OpenVINO INT8 (NNCF)", "openvino", "fp32", "int8-nncf.xml", "int8"))


def trained_model(name: str, args: argparse.Namespace):
    model = models.create(name)
    if name in WEIGHTS:
        return trimkit.load_weights(model, PRETRAINED / WEIGHTS[name]), f"pretrained {WEIGHTS[name]}"
    path = CACHE / f"{name}-cifar10-n{args.train_images}-e{args.train_epochs}.pt"
    if path.exists():
        return trimkit.load(path), f"trained here ({path.name}, cached)"
    normalization = models.origin(model).normalization()
    subset = data.load("cifar10", "train", normalization=normalization).subset(args.train_images, seed=2)
    train.seed_everything(0)
    train.fit(model, subset, epochs=args.train_epochs, batch_size=128, lr=0.05, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    trimkit.save(model.eval(), path)
    return model, f"trained here: {args.train_epochs} epoch(s) on {args.train_images:,} images"


def time_loop(call, seconds: float, blocks: int = 5) -> float:
    """p50 in ms of ``call()`` over about ``seconds``, after ten untimed calls."""
    for _ in range(10):
        call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < blocks:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def independent_check(folder: Path, fp32: Path, test, batch: int, args) -> dict:
    """The deployment's loader against ONNX Runtime fp32 with default options, each timed in
    a plain loop on the same real images (alternating blocks), and both scored."""
    run = deploy.load(folder)
    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images, labels = (tensor.numpy() for tensor in test.tensors())
    batch_images = np.ascontiguousarray(images[:batch])
    deployed, reference = [], []
    for _ in range(args.repeats):  # alternating blocks: load changes fall on both
        deployed.append(time_loop(lambda: run(batch_images), args.min_time / args.repeats))
        reference.append(time_loop(lambda: session.run(None, {name: batch_images}), args.min_time / args.repeats))

    def top1(predict) -> float:
        hits = 0
        for start in range(0, len(images), 100):
            hits += int((predict(images[start:start + 100]).argmax(1) == labels[start:start + 100]).sum())
        return 100.0 * hits / len(images)

    return {"deployed_ms": statistics.median(deployed), "ort_default_ms": statistics.median(reference),
            "deployed_top1": top1(run), "ort_top1": top1(lambda x: session.run(None, {name: x})[0])}


def hand_choices(workdir: Path, decision: deploy.Decision, batch: int, args) -> list[tuple[str, float, float]]:
    """(label, p50 ms timed alone, top-1 from deploy's table) for each hand pick that ran."""
    threads = measure.available_cpus()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    found = []
    for label, runtime, asked, file, shares in HAND:
        shares = shares or ("bf16" if native_bf16 else "fp32")
        scored = [row.outcome.metric for row in decision.rows if row.candidate.artifact == file
                  and row.candidate.runtime == runtime and row.candidate.precision == shares
                  and row.outcome.metric is not None]
        if not (workdir / file).exists() or not scored:
            continue
        timed = measure.latency(str(workdir / file), backend=runtime, precision=asked, threads=threads,
                                batch_size=batch, min_time_s=args.min_time)
        found.append((f"{label}, {threads} threads ({timed.precision})", timed.p50_ms, scored[0]))
    return found


def run_model(name: str, args: argparse.Namespace) -> None:
    model, source = trained_model(name, args)
    normalization = models.origin(model).normalization()
    calibration = data.load("cifar10", "train", normalization=normalization)
    test = data.load("cifar10", "test", normalization=normalization).subset(args.test_images, seed=3)
    task = tasks.as_task(calibration, test)
    print(f"\n## {name} ({source}); top-1 on {len(test):,} CIFAR-10 test images")
    for batch in args.batches:
        with tempfile.TemporaryDirectory(prefix=f"trimkit-deploy-{name}-") as folder:
            out = Path(folder) / "deployment"
            workdir = Path(folder) / "files"
            found = deploy.choose(model, task=task, out=out, batch_size=batch, max_drop=args.max_drop,
                                  threads=args.threads, min_time_s=args.min_time,
                                  calibration_samples=args.calibration_images, progress=True,
                                  keep_files=workdir)
            print(f"\n### {name}, batch {batch}: every candidate (timed interleaved; top-1 as each computes it)")
            print("| " + " | ".join(deploy.TABLE_HEAD) + " |")
            print("|" + " --- |" * len(deploy.TABLE_HEAD))
            for cells in deploy.table_rows(found.decision):
                print("| " + " | ".join(cells) + " |")
            for line in deploy.summary_lines(found):
                print(line)
            report_hand_and_check(name, batch, found, workdir, out, test, args)


def report_hand_and_check(name: str, batch: int, found: deploy.Deployment, workdir: Path, out: Path, test,
                          args) -> None:
    decision = found.decision
    hand = hand_choices(workdir, decision, batch, args)
    print(f"\nhand choices, each timed alone at batch {batch} (top-1 from the table above):")
    allowed = [(label, ms, metric) for label, ms, metric in hand if decision.reference - metric <= args.max_drop]
    for label, ms, metric in hand:
        print(f"  {label}: p50 {ms:.3f} ms, top-1 {metric:.2f} (drop {decision.reference - metric:+.2f})")
    check = independent_check(out, workdir / "fp32.onnx", test, batch, args)
    speedup = check["ort_default_ms"] / check["deployed_ms"]
    drop = check["ort_top1"] - check["deployed_top1"]
    print(f"independent loop on real images: deploy.load(DIR) p50 {check['deployed_ms']:.3f} ms, ONNX Runtime fp32 "
          f"(default options) {check['ort_default_ms']:.3f} ms: {speedup:.2f}x; top-1 {check['deployed_top1']:.2f} "
          f"vs {check['ort_top1']:.2f} (drop {drop:+.2f})")
    if allowed:
        best_label, best_ms, _ = min(allowed, key=lambda item: item[1])
        chosen_alone = measure.latency(str(out / found.manifest["artifact"]), backend=found.manifest["runtime"]["name"],
                                       precision=found.manifest["runtime"]["inference_precision"],
                                       threads=found.manifest["runtime"]["threads"], batch_size=batch,
                                       min_time_s=args.min_time).p50_ms
        print(f"best hand choice within {args.max_drop:g} points: {best_label}, p50 {best_ms:.3f} ms; the deployment "
              f"timed alone the same way: {chosen_alone:.3f} ms (ratio {chosen_alone / best_ms:.2f}; <= 1.05 is "
              "within noise)")
        if name == "resnet56" and batch == 32:
            met = speedup >= 3.0 and drop <= 0.3 and chosen_alone / best_ms <= 1.05
            print(f"GOAL (ResNet-56, batch 32: >= 3x ONNX Runtime fp32, <= 0.3 points lost, not slower than the best "
                  f"hand choice): {'met' if met else 'NOT met'} ({speedup:.2f}x, {drop:+.2f} points, "
                  f"{chosen_alone / best_ms:.2f})")


def environment_line(moment: str) -> str:
    busy = measure.busy_cpus()
    return (f"{moment}: load average {os.getloadavg()[0]:.2f}, CPUs busy with other work "
            f"{'?' if busy is None else busy} of {measure.available_cpus()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet56,resnet20,mobilenetv2", help="zoo models, comma-separated")
    parser.add_argument("--batches", default="1,32", help="batch sizes, comma-separated")
    parser.add_argument("--test-images", type=int, default=10_000, help="CIFAR-10 test images scored (of 10,000)")
    parser.add_argument("--calibration-images", type=int, default=300, help="training images that calibrate INT8")
    parser.add_argument("--threads", default=None, help="thread counts deploy tries (default: 1, half, all CPUs)")
    parser.add_argument("--max-drop", type=float, default=0.3, help="top-1 points a deployment may lose")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of timed calls per candidate")
    parser.add_argument("--repeats", type=int, default=3, help="alternating blocks of the independent loop")
    parser.add_argument("--train-epochs", type=int, default=3, help="epochs for a model without weights")
    parser.add_argument("--train-images", type=int, default=20_000, help="images for a model without weights")
    parser.add_argument("--quick", action="store_true", help="a functional check: ResNet-20 only, 300 test "
                        "images, 64 calibration images, all CPUs only, 0.1 s per candidate")
    args = parser.parse_args()
    if args.quick:
        args.models, args.test_images, args.calibration_images = "resnet20", 300, 64
        args.min_time, args.repeats, args.threads = 0.1, 1, str(measure.available_cpus())
    args.batches = [int(b) for b in args.batches.split(",")]
    args.threads = None if args.threads is None else [int(t) for t in args.threads.split(",")]
    flags = cpu_flags()
    print(f"# trimkit deploy against hand choices on {cpu_model()}, {measure.available_cpus()} CPUs")
    print(f"CPU flags that decide the precisions: {', '.join(f for f in FLAGS if f in flags) or 'none'}; "
          f"max drop {args.max_drop:g} points; {args.min_time:g} s per candidate")
    print(environment_line("at the start"))
    for name in args.models.split(","):
        run_model(name, args)
    print("\n" + environment_line("at the end"))


if __name__ == "__main__":
    main()
