"""Is `trimkit bench` repeatable, and does it agree with a plain ONNX Runtime loop?

For each model, the same exported file is measured twice back to back with
``trimkit.measure.latency`` (the p50s should agree within 5 % for models of 1 ms or
more), and once by an independent timing loop written here with nothing but the
onnxruntime API (same threads; the p50 should agree with trimkit's within 10 %).
The CPUs kept busy by other processes are printed: on a shared machine they move the
figures.

    python benchmarks/latency_repeatability.py [--models resnet20,resnet56,mobilenetv2] \
        [--batch-sizes 1,32] [--threads 1,2] [--backends onnxruntime,openvino] [--min-time 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from rich.console import Console
from rich.table import Table

from trimkit import export, measure, models


def independent_onnxruntime_p50(path: Path, batch_size: int, threads: int, min_time_s: float) -> float:
    """A timing loop as a user would write it: a session, 20 warm-up runs, then runs
    timed one by one for ``min_time_s``; the median in ms."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    feed = {first.name: np.random.default_rng(1).standard_normal((batch_size, *first.shape[1:]), dtype=np.float32)}
    for _ in range(20):
        session.run(None, feed)
    times = []
    deadline = time.perf_counter() + min_time_s
    while time.perf_counter() < deadline or len(times) < 10:
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,resnet56,mobilenetv2")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()
    console = Console(width=160)
    table = Table(title=f"p50 ms of two back-to-back trimkit runs and of an independent ONNX Runtime loop "
                        f"(min {args.min_time} s each)")
    for column in ("model", "backend", "batch", "threads", "precision", "run 1", "run 2", "Δ runs",
                   "plain ORT", "Δ trimkit/plain"):
        table.add_column(column, justify="left" if column in ("model", "backend", "precision") else "right")
    console.print(f"CPUs busy with other work before: {measure.busy_cpus()}")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            model = models.create(name)
            path = Path(workdir) / f"{name}.onnx"
            export.onnx(model, torch.randn(2, *models.spec(name).input_shape()), path)
            for backend in args.backends.split(","):
                for batch_size in map(int, args.batch_sizes.split(",")):
                    for threads in map(int, args.threads.split(",")):
                        runs = [measure.latency(path, backend=backend, batch_size=batch_size, threads=threads,
                                                min_time_s=args.min_time) for _ in range(2)]
                        first, second = (run.p50_ms for run in runs)
                        plain = plain_delta = ""
                        if backend == "onnxruntime":
                            reference = independent_onnxruntime_p50(path, batch_size, threads, args.min_time)
                            plain, plain_delta = f"{reference:.3f}", f"{(first - reference) / reference:+.1%}"
                        table.add_row(name, backend, str(batch_size), str(threads), runs[0].precision,
                                      f"{first:.3f}", f"{second:.3f}", f"{(second - first) / first:+.1%}",
                                      plain, plain_delta)
    console.print(table)
    console.print(f"CPUs busy with other work after: {measure.busy_cpus()}")


if __name__ == "__main__":
    main()
