"""What a command names as MODEL, and the task it is judged on.

A *subject* is a zoo model, a trimkit model file or an ONNX file, with what its inputs
look like (shape, normalisation) and which task kind its outputs belong to. The task
comes from ``--data`` by the task-kind registry (segmentation data is recognised as
such; the default kind takes the rest), built by the kind's builder and checked against
the subject. Commands never ask which kind a model or data set is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from trimkit import export, models, tasks
from trimkit.errors import TrimkitError
from trimkit.measure import measure_model
from trimkit.models import ModelOrigin
from trimkit.record import Measurement, Metric
from trimkit.tasks import Task, TaskKind

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class Subject:
    """A model named on the command line: what to run, how its inputs look, and the zoo
    name and arguments it was built from (``origin``; None where unknown)."""

    model: nn.Module | Path
    label: str
    origin: ModelOrigin | None
    input_shape: tuple[int, ...] | None
    normalization: Normalization | None

    @property
    def default_data(self) -> str | None:
        return self.origin.default_data if self.origin is not None else None

    @property
    def kind(self) -> str | None:
        """The task kind of the model's outputs, where the zoo records it."""
        return self.origin.task if self.origin is not None else None


def module_subject(model: nn.Module, label: str | None = None) -> Subject:
    """A subject of a built module (its zoo origin, where it has one)."""
    origin = models.origin(model)
    return Subject(model, label or (origin.label if origin else type(model).__name__), origin,
                   origin.input_shape() if origin else None, origin.normalization() if origin else None)


def onnx_subject(path: Path) -> Subject:
    """A subject of an ONNX file: what trimkit recorded in it when it exported it (zoo
    name, input shape, normalisation), its fixed height and width, and its classes."""
    if not path.is_file():
        raise TrimkitError(f"model file {path} does not exist")
    proto = export.read_onnx(path)
    recorded = export.read_metadata(proto)
    normalization = recorded.get("normalization")
    shape = tuple(recorded["input_shape"]) if "input_shape" in recorded else None
    spatial = onnx_spatial_size(proto)
    if shape is not None and spatial is not None:
        shape = (shape[0], *spatial)
    origin = None
    classes = _output_classes(proto)
    if recorded.get("model") in models.names():
        arguments: dict[str, Any] = {} if shape is None else {"in_channels": shape[0]}
        if classes is not None:
            arguments["num_classes"] = classes
        origin = ModelOrigin(recorded["model"], arguments)
    elif recorded.get("factory"):
        arguments = {**(recorded.get("kwargs") or {}), **({"num_classes": classes} if classes is not None else {})}
        origin = ModelOrigin(factory=recorded["factory"], kwargs=arguments, shape=shape,
                             mean_std=None if normalization is None else (tuple(normalization[0]),
                                                                          tuple(normalization[1])))
    return Subject(path, path.name, origin, shape,
                   (tuple(normalization[0]), tuple(normalization[1])) if normalization else None)


def onnx_spatial_size(proto: Any) -> tuple[int, int] | None:
    """The fixed height and width of an ONNX model's first input, or None when dynamic."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    sizes = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims[-2:]]
    return (sizes[0], sizes[1]) if len(sizes) == 2 and None not in sizes else None


def _output_classes(proto: Any) -> int | None:
    output = proto.graph.output[0].type.tensor_type.shape.dim
    return output[1].dim_value if len(output) > 1 and output[1].HasField("dim_value") else None


def data_kind(subject: Subject | None, data: str | None, data_dir: Any = None) -> TaskKind:
    """The task kind a command judges on: the kind of ``--data`` where given (its kind
    claims it, or the default kind), else the subject's own kind."""
    if data is not None or subject is None or subject.kind is None:
        return tasks.kind_of_data(data, data_dir)
    return tasks.kind(subject.kind)


def command_task(subject: Subject | None, data: str | None, data_dir: Any, splits: Sequence[str], *,
                 image_size: tuple[int, int] | None = None, samples: int | None = None, seed: int = 0,
                 at_input_size: bool = False) -> Task:
    """The task of ``--data`` (default: the subject's own data), with ``splits``, built by
    its kind and prepared for the subject (normalisation; a model of another task, input
    or class count is one line). Without a subject (a model to be built for the data), the
    data comes as it is. Data whose kind takes a size is resized to ``image_size``, or,
    with ``at_input_size`` (a model timed at its input) or for an ONNX file (whose height
    and width are fixed), to the subject's input size."""
    name = data or (subject.default_data if subject is not None else None)
    if name is None:
        raise TrimkitError("no data set given; pass --data NAME (mnist5k, mnist, cifar10, an image folder, or a "
                           "segmentation folder)")
    kind = data_kind(subject, data, data_dir)
    values: dict[str, Any] = {"kind": kind.name, "data": name, "data_dir": None if data_dir is None else str(data_dir)}
    resizes = "image_size" in kind.spec.model_fields
    if image_size is not None:
        if not resizes:
            raise TrimkitError(f"--image-size resizes the images of data that takes a size; {name} is {kind.name} "
                               "data, whose size is the model's; drop --image-size")
        values["image_size"] = image_size
    elif resizes and subject is not None and subject.input_shape is not None and (
            at_input_size or isinstance(subject.model, Path)):
        values["image_size"] = subject.input_shape[1:]
    if subject is not None and isinstance(subject.model, Path) and subject.normalization is None:
        raise TrimkitError(f"{subject.label} does not record its input normalisation (not exported by trimkit); "
                           "give the trimkit .pt model to score it on --data")
    task = kind.build(kind.parse_spec(values, "--data"), None, seed, tuple(splits))
    if subject is not None:
        task = _prepared(task, subject, name)
        if isinstance(subject.model, nn.Module):
            record_task_input(subject.model, task)
    if samples:
        for split in splits:
            task = task.subset(split, samples)
    return task


def shared_task(subjects: Sequence[Subject], data: str, data_dir: Any, split: str) -> Task:
    """One task that scores every subject on the same inputs; each is checked against it."""
    task = command_task(subjects[0], data, data_dir, (split,), at_input_size=True)
    shape = tuple(task.example_inputs(1)[0].shape[1:])
    for subject in subjects[1:]:
        _prepared(task, subject, data)  # the kind, classes and channels fit
        if tuple(subject.input_shape or ()) != shape or subject.normalization != subjects[0].normalization:
            shown = "x".join(map(str, subject.input_shape or ())) or "an unknown shape"
            raise TrimkitError(f"--data scores every model on the same images, but {subject.label} takes {shown} "
                               f"inputs normalised its own way, unlike {subjects[0].label}; compare models of one "
                               "input, or drop --data")
    return task


def _fit_of(subject: Subject) -> Any:
    """What a task checks a subject against: the module, or an ONNX file's recorded origin."""
    return subject.origin if isinstance(subject.model, Path) else subject.model


def measurement_of(subject: Subject, metrics: Sequence[Metric] = (), files: dict[str, Path] | None = None
                   ) -> Measurement:
    """The record a command's ``--json`` carries for a module: counts from one profile at
    its input shape, the metrics the command computed, and the sizes of the files it
    wrote (by kind)."""
    import torch

    record = measure_model(subject.model, label=subject.label, example_inputs=torch.zeros(1, *subject.input_shape))
    record.metrics.extend(metrics)
    for kind, path in (files or {}).items():
        record.size_bytes[kind] = Path(path).stat().st_size
    return record


def _prepared(task: Task, subject: Subject, data: str) -> Task:
    try:
        return task.prepared_for(_fit_of(subject), subject.label)
    except TrimkitError as error:
        raise TrimkitError(f"--data {data}: {error}") from None


def record_task_input(model: nn.Module, task: Task) -> None:
    """What a model outside the zoo is fed, from ``task``, where its origin does not say."""
    examples = task.example_inputs(1)
    models.record_input(model, tuple(examples[0].shape[1:]) if len(examples) == 1 else None,
                        task.input_normalization())
