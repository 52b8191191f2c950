"""`trimkit bench` and `trimkit compare`: measured latency on a runtime backend."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich import box
from rich.table import Table
from torch import nn

from trimkit import export, measure, pipeline
from trimkit.cli._common import resolve_subject
from trimkit.cli._console import console, print_json
from trimkit.cli._options import (DataDirOption, InputShapeOption, JsonOption, TrustOption, at_least,
                                  parse_input_shape, stage_options)
from trimkit.pipeline import Subject
from trimkit.pipeline.stages.compare import CompareOptions
from trimkit.pipeline.stages.measure import MeasureOptions
from trimkit.record import Measurement
from trimkit.tasks import Evaluation, Task, metric_title

BackendOption = Annotated[str, typer.Option(help=f"Runtime: {', '.join(measure.BACKENDS)}.")]
BatchOption = Annotated[int, typer.Option(help="Images per inference.")]
ThreadsOption = Annotated[int | None, typer.Option(help="Threads (default: the CPUs this process may use).")]
PrecisionOption = Annotated[str, typer.Option(help="auto (the runtime's choice), fp32 or bf16.")]
WarmupOption = Annotated[int, typer.Option(help="Untimed calls first.")]
MinTimeOption = Annotated[float, typer.Option("--min-time", help="Seconds of timed calls per model, at least.")]
MaxItersOption = Annotated[int, typer.Option(help="Timed calls per model, at most.")]
DataOption = Annotated[str | None, typer.Option("--data", help="Also score the model as the runtime computes it on "
                                                                  "this data set: top-1 and top-5, or pixel accuracy, "
                                                                  "class accuracy and mIoU on segmentation data.")]
SplitOption = Annotated[str, typer.Option(help="Split for --data.")]


RUNTIME_FLAGS = {"batch_sizes": "--batch-size", "min_time_s": "--min-time"}


def bench_command(
    model: Annotated[str, typer.Argument(help="Zoo name, trimkit .pt file or .onnx file.")],
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to load into a zoo model.")] = None,
    backend: BackendOption = "onnxruntime",
    batch_size: BatchOption = 1,
    threads: ThreadsOption = None,
    precision: PrecisionOption = "auto",
    per_layer: Annotated[bool, typer.Option(help="Also time each layer with the runtime's profiler.")] = False,
    top: Annotated[int, typer.Option(help="Layers to show with --per-layer.")] = 15,
    warmup: WarmupOption = 10,
    min_time: MinTimeOption = 1.0,
    max_iters: MaxItersOption = 10_000,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    split: SplitOption = "val",
    input_shape: InputShapeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Latency percentiles, throughput and (--per-layer) the slowest layers on a runtime backend."""
    options = stage_options(MeasureOptions, RUNTIME_FLAGS, backend=backend, batch_sizes=[batch_size], threads=threads,
                            precision=precision, min_time_s=min_time, warmup=warmup, max_iters=max_iters)
    at_least("--top", top, 1)
    subject = resolve_subject(model, weights, trust_checkpoint, parse_input_shape(input_shape))
    task = pipeline.command_task(subject, data, data_dir, (split,), at_input_size=True) if data else None
    scored = accuracy = None
    with tempfile.TemporaryDirectory(prefix="trimkit-bench-") as workdir:
        timed = _exported(subject, options.backend, Path(workdir))
        (result,) = measure.latencies([timed], options, labels=[subject.label], batch_size=batch_size,
                                      per_layer=per_layer)
        if task is not None:
            scored = measure.runtime_evaluation(timed, task, split, options, threads=result.threads)
            accuracy = {**scored.values, "precision": scored.precision, "backend": scored.backend}
    if as_json:
        print_json({**result.to_dict(), "accuracy": accuracy,
                    "measurement": _measurement(subject, result, scored).to_dict()})
        return
    print_latency(result, subject.label)
    if result.per_layer is not None:
        print_layers(result, top)
    if accuracy is not None:
        console.print(_scores_line(accuracy, task, split))


def _exported(subject: Subject, backend: str, workdir: Path) -> nn.Module | Path:
    """What is timed and scored: a module exported once (parity checked) for an ONNX
    runtime, rather than once for the timing and again for the score."""
    if not isinstance(subject.model, nn.Module) or measure.get_backend(backend).model_format != "onnx":
        return subject.model
    example = torch.randn(2, *subject.input_shape, generator=torch.Generator().manual_seed(0))
    return export.onnx(subject.model, example, workdir / "model.onnx").path


def _scores_line(accuracy: dict, task: Task, split: str) -> str:
    shown = ", ".join(_figure(name, accuracy[name]) for name in task.metric_names
                      if name in accuracy and name not in task.minimised_metrics)
    size = "x".join(map(str, task.example_inputs(1)[0].shape[-2:]))
    return (f"{shown} on {accuracy['n']:,} {task.data_name(split)} {split} samples ({size}), computed by "
            f"{accuracy['backend']} in {accuracy['precision']}")


def _figure(name: str, value: float) -> str:
    """``mIoU 19.34 %``: a metric by its title, the unit after the value."""
    title = metric_title(name)
    return f"{title.removesuffix(' %')} {value:.2f} %" if title.endswith(" %") else f"{title} {value:.4g}"


def compare_command(
    models_: Annotated[list[str], typer.Argument(metavar="MODELS...", help="Zoo names, trimkit .pt or .onnx files; "
                                                                           "the first is the baseline.")],
    backend: BackendOption = "onnxruntime",
    batch_size: BatchOption = 1,
    threads: ThreadsOption = None,
    precision: PrecisionOption = "auto",
    warmup: WarmupOption = 10,
    min_time: MinTimeOption = 1.0,
    max_iters: MaxItersOption = 10_000,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    split: SplitOption = "val",
    as_json: JsonOption = False,
) -> None:
    """Measure models side by side, interleaved in one run: params, MACs, bytes, latency as ratios to the first."""
    options = stage_options(CompareOptions, RUNTIME_FLAGS, models=models_, backend=backend, batch_sizes=[batch_size],
                            threads=threads, precision=precision, min_time_s=min_time, warmup=warmup,
                            max_iters=max_iters)
    subjects = [resolve_subject(argument) for argument in options.models]
    task = pipeline.shared_task(subjects, data, data_dir, split) if data else None
    result = measure.compare([subject.model for subject in subjects], options,
                             labels=[subject.label for subject in subjects], batch_size=batch_size, task=task,
                             split=split)
    if as_json:
        print_json(result.to_dict())
        return
    print_comparison(result)


def _measurement(subject: Subject, result: measure.Latency, scored: Evaluation | None) -> Measurement:
    """What ``bench --json`` measured, as the record: counts of a PyTorch model, the ONNX
    file's size, the latency, and the runtime's own metrics."""
    if isinstance(subject.model, nn.Module) and subject.input_shape is not None:
        record = pipeline.measurement_of(subject)
    else:
        record = Measurement(subject.label, size_bytes={"onnx": Path(subject.model).stat().st_size})
    record.latency.append(measure.latency_record(result))
    if scored is not None:
        record.metrics.extend(scored.metrics())
    return record


def print_latency(result: measure.Latency, label: str) -> None:
    precision = result.precision if result.precision_requested == "auto" else \
        f"{result.precision} ({result.precision_requested} asked)"
    table = Table(title=f"{label} on {result.backend}: batch {result.batch_size}, {_threads(result.threads)}, "
                        f"{precision}; latency in ms", box=box.SIMPLE, padding=(0, 0))
    for column in ("p50", "p90", "p99", "mean", "std", "min", "max", "CV", "img/s", "calls"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{value:.3f}" for value in (result.p50_ms, result.p90_ms, result.p99_ms, result.mean_ms,
                                                  result.std_ms, result.min_ms, result.max_ms)),
                  f"{result.cv:.1%}", f"{result.throughput:,.0f}", f"{result.iterations:,}")
    console.print(table)
    console.print(environment_line(result))


def environment_line(result: measure.Latency) -> str:
    env = result.env
    flags = ", ".join(name for name, present in env["isa"].items() if present) or "none"
    layers = "" if not result.compute_precisions else \
        "; compute layers by precision: " + ", ".join(f"{n} {p}" for p, n in result.compute_precisions.items())
    busy = env["busy_cpus_at_start"]
    line = (f"{env['cpu']} ({env['cpus_available']} CPUs; {flags}); {'?' if busy is None else busy} CPUs busy with "
            f"other work at start; {result.backend} {env['versions'].get(result.backend, '')}{layers}")
    if busy is not None and busy + result.threads > env["cpus_available"] + 0.25:
        line += (f"\n[yellow]warning[/]: other processes kept {busy:.1f} of {env['cpus_available']} CPUs busy and "
                 f"{result.threads} threads were timed: threads wait for CPUs, so these figures are noisy")
    return line


def print_layers(result: measure.Latency, top: int) -> None:
    table = Table(title=f"slowest {min(top, len(result.per_layer))} of {len(result.per_layer)} layers, "
                        f"{result.backend} profiler", box=box.SIMPLE)
    for column in ("layer", "op", "ms", "%"):
        table.add_column(column, justify="right" if column in ("ms", "%") else "left")
    for row in result.per_layer[:top]:
        table.add_row(row.name, row.op, f"{row.ms:.4f}", f"{row.percent:.1f}")
    console.print(table)
    console.print(f"layers sum to {result.per_layer_total_ms:.3f} ms under the profiler; end-to-end p50 "
                  f"{result.p50_ms:.3f} ms without it")


def print_comparison(comparison: measure.Comparison) -> None:
    """The side-by-side table of ``trimkit compare``: each figure and its ratio to the first model."""
    first = comparison.models[0].latency
    table = Table(title=f"{first.backend}, batch {first.batch_size}, {_threads(first.threads)}, {first.precision}; "
                        f"ratios against {comparison.models[0].label}", box=box.SIMPLE, padding=(0, 0))
    columns = ["model", "params", "×", "MACs", "×", "ONNX", "×", "p50 ms", "×", "img/s", "×"]
    # a column per metric the rows show (one, but a comparison read from an old log may mix)
    scored_by = list(dict.fromkeys(model.metric for model in comparison.models if model.score is not None))
    for metric in scored_by:
        columns += [metric_title(metric), "Δ"]
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in comparison.models:
        ratios = comparison.ratios(model)
        cells = [model.label]
        for key, shown in (("params", _short(model.params)), ("macs", _short(model.macs)),
                           ("size_bytes", _short(model.size_bytes, "B")), ("p50_ms", f"{model.latency.p50_ms:.3f}"),
                           ("throughput", f"{model.latency.throughput:,.0f}")):
            cells += [shown, "-" if ratios[key] is None else f"{ratios[key]:.2f}"]
        for metric in scored_by:
            change = comparison.change(model) if model.metric == metric else None
            cells += ["-" if model.metric != metric or model.score is None else f"{model.score:.2f}",
                      "-" if change is None else f"{change:+.2f}"]
        table.add_row(*cells)
    console.print(table)
    scored = next((m for model in comparison.models for m in model.metrics if m.name == model.metric), None)
    if scored is not None:
        images = " ".join(part for part in (f"{scored.samples:,}", scored.data, scored.split, "images") if part)
        console.print(f"{', '.join(metric_title(metric) for metric in scored_by)} on {images} as {scored.backend} "
                      f"computes it; Δ: points against {comparison.models[0].label}")
    console.print(environment_line(first))


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def _short(value: int | None, unit: str = "") -> str:
    """1234567 -> 1.23M: the comparison table must fit 80 columns; --json has every digit."""
    if value is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{prefix}{unit}"
    return f"{value}{unit}"
