"""`trimkit bench` and `trimkit compare`: measured latency on a runtime backend."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Union

import torch
import typer
from rich import box
from rich.table import Table
from torch import nn

from trimkit import data as datasets
from trimkit import export, measure, models
from trimkit.cli._common import (check_fits, console, measurement_of, print_json, require_recorded_input,
                                 resolve_model)
from trimkit.cli._options import DataDirOption, JsonOption, TrustOption, at_least, stage_options
from trimkit.cli._segment import onnx_spatial_size
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.compare import CompareOptions
from trimkit.pipeline.stages.measure import MeasureOptions
from trimkit.record import Measurement
from trimkit.tasks import ClassificationTask, Evaluation, SegmentationTask, Task, metric_title

BackendOption = Annotated[str, typer.Option(help=f"Runtime: {', '.join(measure.BACKENDS)}.")]
BatchOption = Annotated[int, typer.Option(help="Images per inference.")]
ThreadsOption = Annotated[Optional[int], typer.Option(help="Threads (default: the CPUs this process may use).")]
PrecisionOption = Annotated[str, typer.Option(help="auto (the runtime's choice), fp32 or bf16.")]
WarmupOption = Annotated[int, typer.Option(help="Untimed calls first.")]
MinTimeOption = Annotated[float, typer.Option("--min-time", help="Seconds of timed calls per model, at least.")]
MaxItersOption = Annotated[int, typer.Option(help="Timed calls per model, at most.")]
DataOption = Annotated[Optional[str], typer.Option("--data", help="Also score the model as the runtime computes it on "
                                                                  "this data set: top-1 and top-5, or pixel accuracy, "
                                                                  "class accuracy and mIoU on segmentation data.")]
SplitOption = Annotated[str, typer.Option(help="Split for --data.")]


RUNTIME_FLAGS = {"batch_sizes": "--batch-size", "min_time_s": "--min-time"}


@dataclass(frozen=True)
class Subject:
    """A model named on the command line: what to measure and how its inputs look."""

    model: Union[nn.Module, Path]
    label: str
    input_shape: tuple[int, ...] | None
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
    default_data: str | None
    task: str | None = None  # the zoo's word for its outputs; None for an ONNX file trimkit did not export


def resolve_subject(argument: str, weights: Path | None = None, trusted: bool = False) -> Subject:
    """A zoo name (with --weights), a trimkit .pt file or an .onnx file."""
    if not argument.endswith(".onnx"):
        loaded = resolve_model(argument, weights, trusted=trusted)
        return Subject(loaded.model, loaded.label, loaded.input_shape, loaded.normalization, loaded.default_data,
                       _zoo_task(loaded.label))
    path = Path(argument)
    if weights is not None:
        raise TrimkitError(f"{argument} is an ONNX file with its own weights; drop --weights")
    if not path.is_file():
        raise TrimkitError(f"model file {path} does not exist")
    recorded = export.read_metadata(export.read_onnx(path))
    normalization = recorded.get("normalization")
    return Subject(path, path.name, tuple(recorded["input_shape"]) if "input_shape" in recorded else None,
                   (tuple(normalization[0]), tuple(normalization[1])) if normalization else None,
                   _default_data(recorded.get("model")), _zoo_task(recorded.get("model")))


def _default_data(zoo_name: str | None) -> str | None:
    return models.spec(zoo_name).default_data if zoo_name in models.names() else None


def _zoo_task(zoo_name: str | None) -> str | None:
    return models.spec(zoo_name).task if zoo_name in models.names() else None


def load_subject_data(subject: Subject, name: str | None, split: str, data_dir: Path | None) -> datasets.ImageDataset:
    require_recorded_input(subject)
    dataset_name = name or subject.default_data
    if dataset_name is None:
        raise TrimkitError("no data set given; pass --data NAME (mnist5k, mnist, cifar10 or an image folder)")
    dataset = datasets.load(dataset_name, split, data_dir)
    check_fits(dataset, subject.input_shape, subject.label)
    return dataset.with_normalization(subject.normalization)


def subject_task(subject: Subject, name: str | None, split: str, data_dir: Path | None) -> Task:
    """The task ``subject`` is scored on: data set ``name`` (default: the model's own),
    classification or segmentation by what the data is; a model of another task is refused."""
    require_recorded_input(subject)
    dataset_name = name or subject.default_data
    segmentation = datasets.is_segmentation_data(dataset_name, data_dir)
    check_kind(subject, dataset_name, segmentation)
    if not segmentation:
        return ClassificationTask({split: load_subject_data(subject, name, split, data_dir)})
    # resized to the input the model is timed at: an exported model's height and width are fixed in its file
    dataset = datasets.load_segmentation(dataset_name, split, data_dir, image_size=input_shape(subject)[1:])
    check_segmentation_fit(subject, dataset, dataset_name)
    return SegmentationTask({split: dataset.with_normalization(subject.normalization)})


def check_kind(subject: Subject, dataset_name: str | None, segmentation: bool) -> None:
    """A segmentation model on segmentation data, a classifier on image data: else one line."""
    if segmentation and subject.task not in (None, "segmentation"):
        raise TrimkitError(f"{subject.label} is a {subject.task} model and {dataset_name} is segmentation data; "
                           "choose a segmentation model (trimkit models)")
    if not segmentation and subject.task == "segmentation":
        raise TrimkitError(f"{subject.label} is a segmentation model and {dataset_name} is not segmentation data; "
                           "give a CamVid- or VOC-format folder (or camvid / voc) as --data")
    if not segmentation and subject.task not in (None, "classification"):
        raise TrimkitError(f"{subject.label} is a {subject.task} model, which --data cannot score here; "
                           "score it with trimkit eval")


def check_segmentation_fit(subject: Subject, dataset: datasets.SegmentationDataset, name: str) -> None:
    """The model takes the data's channels and predicts its classes (where that is known)."""
    if subject.input_shape is not None and dataset.channels != subject.input_shape[0]:
        raise TrimkitError(f"{dataset.name} has {dataset.channels}-channel images but {subject.label} takes "
                           f"{subject.input_shape[0]}; choose matching data or model")
    classes = _output_classes(subject)
    if classes is not None and classes != dataset.num_classes:
        raise TrimkitError(f"{subject.label} predicts {classes} classes but {dataset.name} has {dataset.num_classes}; "
                           f"score a model trained on it (trimkit train MODEL --data {name})")


def input_shape(subject: Subject) -> tuple[int, ...] | None:
    """The input the model is timed at: an ONNX file's own height and width where fixed."""
    if subject.input_shape is None or not isinstance(subject.model, Path):
        return subject.input_shape
    return (subject.input_shape[0], *(onnx_spatial_size(subject.model) or subject.input_shape[1:]))


def _output_classes(subject: Subject) -> int | None:
    """How many classes a segmentation model predicts, where the zoo record or the file says."""
    if isinstance(subject.model, nn.Module):
        origin = models.origin(subject.model)
        classes = origin.kwargs.get("num_classes") if origin is not None else None
        return None if classes is None else int(classes)
    output = export.read_onnx(Path(subject.model)).graph.output[0].type.tensor_type.shape.dim
    return output[1].dim_value if len(output) > 1 and output[1].HasField("dim_value") else None


def bench_command(
    model: Annotated[str, typer.Argument(help="Zoo name, trimkit .pt file or .onnx file.")],
    weights: Annotated[Optional[Path], typer.Option(help="Checkpoint to load into a zoo model.")] = None,
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
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Latency percentiles, throughput and (--per-layer) the slowest layers on a runtime backend."""
    options = stage_options(MeasureOptions, RUNTIME_FLAGS, backend=backend, batch_sizes=[batch_size], threads=threads,
                            precision=precision, min_time_s=min_time)
    at_least("--warmup", warmup, 0)
    at_least("--max-iters", max_iters, 1)
    at_least("--top", top, 1)
    subject = resolve_subject(model, weights, trust_checkpoint)
    task = subject_task(subject, data, split, data_dir) if data else None
    scored = accuracy = None
    with tempfile.TemporaryDirectory(prefix="trimkit-bench-") as workdir:
        timed = _exported(subject, options.backend, Path(workdir))
        (result,) = measure.latencies([timed], labels=[subject.label], backend=options.backend, batch_size=batch_size,
                                      threads=options.threads, precision=options.precision, warmup=warmup,
                                      min_time_s=options.min_time_s, max_iters=max_iters, per_layer=per_layer)
        if task is not None:
            scored = measure.runtime_evaluation(timed, task, split, backend=options.backend,
                                                precision=options.precision, threads=result.threads)
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


def _exported(subject: Subject, backend: str, workdir: Path) -> Union[nn.Module, Path]:
    """What is timed and scored: a module exported once (parity checked) for an ONNX
    runtime, rather than once for the timing and again for the score."""
    if not isinstance(subject.model, nn.Module) or measure.get_backend(backend).model_format != "onnx":
        return subject.model
    example = torch.randn(2, *subject.input_shape, generator=torch.Generator().manual_seed(0))
    return export.onnx(subject.model, example, workdir / "model.onnx").path


def _scores_line(accuracy: dict, task: Task, split: str) -> str:
    if isinstance(task, SegmentationTask):
        height, width = task.dataset(split).images.shape[-2:]
        figures = (f"pixel accuracy {accuracy['pixel_accuracy']:.2f} %, mean class accuracy "
                   f"{accuracy['mean_class_accuracy']:.2f} %, mIoU {accuracy['miou']:.2f} %")
        images = f"{task.data_name(split)} {split} images ({height}x{width})"
    else:
        figures = f"top-1 {accuracy['top1']:.2f} %, top-5 {accuracy['top5']:.2f} %"
        images = f"{task.data_name(split)} {split} images"
    return (f"{figures} on {accuracy['n']:,} {images}, computed by {accuracy['backend']} in "
            f"{accuracy['precision']}")


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
                            threads=threads, precision=precision, min_time_s=min_time)
    at_least("--warmup", warmup, 0)
    at_least("--max-iters", max_iters, 1)
    subjects = [resolve_subject(argument) for argument in options.models]
    task = _shared_task(subjects, data, split, data_dir) if data else None
    result = measure.compare([subject.model for subject in subjects], labels=[subject.label for subject in subjects],
                             backend=options.backend, batch_size=batch_size, threads=options.threads,
                             precision=options.precision, warmup=warmup, min_time_s=options.min_time_s,
                             max_iters=max_iters, task=task, split=split)
    if as_json:
        print_json(result.to_dict())
        return
    print_comparison(result)


def _shared_task(subjects: list[Subject], data: str, split: str, data_dir: Path | None) -> Task:
    """One task that scores every model on the same images; each model is checked against it."""
    task = subject_task(subjects[0], data, split, data_dir)
    segmentation = isinstance(task, SegmentationTask)
    shape = tuple(task.example_inputs(1)[0].shape[1:])
    for subject in subjects[1:]:
        check_kind(subject, data, segmentation)
        if segmentation:
            check_segmentation_fit(subject, task.dataset(split), data)
        taken = input_shape(subject)
        if tuple(taken or ()) != shape or subject.normalization != subjects[0].normalization:
            shown = "x".join(map(str, taken or ())) or "an unknown shape"
            raise TrimkitError(f"--data scores every model on the same images, but {subject.label} takes {shown} "
                               f"inputs normalised its own way, unlike {subjects[0].label}; compare models of one "
                               "input, or drop --data")
    return task


def _measurement(subject: Subject, result: measure.Latency, scored: Evaluation | None) -> Measurement:
    """What ``bench --json`` measured, as the record: counts of a PyTorch model, the ONNX
    file's size, the latency, and the runtime's own metrics."""
    if isinstance(subject.model, nn.Module) and subject.input_shape is not None:
        record = measurement_of(subject.model, subject.label, subject.input_shape)
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
