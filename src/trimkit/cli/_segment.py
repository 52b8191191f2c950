"""`trimkit train` and `trimkit eval` on segmentation data: a CamVid- or VOC-format folder
(or ``camvid`` / ``voc`` under the data folders) given as ``--data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from torch import nn

import trimkit
from trimkit import data as datasets
from trimkit import models, tasks, train
from trimkit.cli._common import (LoadedModel, console, measurement_of, print_json, require_recorded_input,
                                 resolve_model)
from trimkit.errors import TrimkitError
from trimkit.record import Metric

ImageSizeOption = Annotated[Optional[str], typer.Option(
    "--image-size", help="HxW to resize segmentation images and masks to (e.g. 180x240 for CamVid at half size).")]


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """``"180x240"`` -> (180, 240); None stays None; anything else is a one-line error."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        height, width = (int(part) for part in parts)
    except ValueError:
        raise TrimkitError(f"--image-size {text!r}: give HEIGHTxWIDTH in pixels, e.g. 180x240") from None
    if height < 1 or width < 1:
        raise TrimkitError(f"--image-size {text!r}: height and width must be at least 1")
    return height, width


def segmentation_task(name: str, splits: tuple[str, ...], data_dir: Path | None, loaded: LoadedModel,
                      image_size: str | None) -> tasks.SegmentationTask:
    """The splits of segmentation data ``name``, normalised as ``loaded`` expects; the
    model's output classes must match the data's."""
    size = parse_image_size(image_size)
    loaded_splits = {split: datasets.load_segmentation(name, split, data_dir, image_size=size) for split in splits}
    task = tasks.SegmentationTask({split: data.with_normalization(loaded.normalization)
                                   for split, data in loaded_splits.items()})
    check_classes(loaded.model, task, loaded.label)
    return task


def check_classes(model: nn.Module, task: tasks.SegmentationTask, label: str) -> None:
    origin = models.origin(model)
    if origin is not None and models.spec(origin.name).task != "segmentation":
        raise TrimkitError(f"{label} is a {models.spec(origin.name).task} model and {task.data_name(task.splits[0])} "
                           "is segmentation data; choose a segmentation model (trimkit models)")
    classes = origin.kwargs.get("num_classes") if origin is not None else None
    if classes is not None and int(classes) != task.num_classes:
        raise TrimkitError(f"{label} predicts {classes} classes but {task.data_name(task.splits[0])} has "
                           f"{task.num_classes}; build the model with --num-classes {task.num_classes}")


def train_segmentation(model: str, out: Path, data: str, data_dir: Path | None, fit_kwargs: dict[str, Any], *,
                       seed: int, weights: Path | None, resume: bool, trusted: bool, as_json: bool,
                       image_size: str | None, teacher: nn.Module | None = None,
                       kd: dict[str, Any] | None = None) -> None:
    """Train a segmentation model on a folder's train split, judged on its val split."""
    train.seed_everything(seed)
    size = parse_image_size(image_size)
    splits = {split: datasets.load_segmentation(data, split, data_dir, image_size=size) for split in ("train", "val")}
    loaded = resolve_model(model, weights, num_classes=splits["train"].num_classes,
                           in_channels=splits["train"].channels, trusted=trusted)
    task = tasks.SegmentationTask({split: dataset.with_normalization(loaded.normalization)
                                   for split, dataset in splits.items()})
    check_classes(loaded.model, task, loaded.label)
    checkpoint = out.with_suffix(out.suffix + ".ckpt")
    if teacher is not None:
        from trimkit import distill

        result, _ = distill.distill(loaded.model, teacher, task, **(kd or {}), **fit_kwargs, seed=seed,
                                    checkpoint=checkpoint, resume=resume, progress=True)
    else:
        result = train.fit(loaded.model, task, **fit_kwargs, seed=seed, checkpoint=checkpoint, resume=resume,
                           progress=True)
    final = result.history[-1] if result.history else {}
    scores = {name.removeprefix("val_"): value for name, value in final.items() if name.startswith("val_")}
    trimkit.save(loaded.model, out, metadata={"data": data, "epochs": fit_kwargs.get("epochs"),
                                              "val_pixel_accuracy": scores.get("pixel_accuracy"),
                                              "val_miou": scores.get("miou")})
    metrics = [Metric(name, value, "val", task.size("val"), "fp32", "pytorch", task.data_name("val"))
               for name, value in scores.items()]
    record = {"out": str(out), "data": data, "epochs": fit_kwargs.get("epochs"), "precision": result.precision,
              **{f"val_{name}": value for name, value in scores.items()}, "history": result.history,
              "measurement": measurement_of(loaded.model, loaded.label, loaded.input_shape, metrics=metrics,
                                            files={"model_file": out}).to_dict()}
    if as_json:
        print_json(record)
    elif not result.history:
        console.print(f"saved {out}: no epochs trained")
    else:
        console.print(f"saved {out}: val pixel accuracy {scores.get('pixel_accuracy', float('nan')):.2f} %, "
                      f"mIoU {scores.get('miou', float('nan')):.2f} % ({result.precision})")


def eval_segmentation(loaded: LoadedModel, data: str, split: str, data_dir: Path | None, *, precision: str,
                      batch_size: int, samples: int | None, image_size: str | None, as_json: bool) -> None:
    """Pixel accuracy, mean class accuracy, mIoU and per-class IoU of a model on a split."""
    task = segmentation_task(data, (split,), data_dir, loaded, image_size)
    if samples:
        task = task.subset(split, samples)
    scored = tasks.evaluate(loaded.model, task, split, batch_size=batch_size, precision=precision, progress=True)
    values = scored.values
    if as_json:
        per_class = {name.removeprefix("iou_"): value for name, value in values.items() if name.startswith("iou_")}
        print_json({**values, "per_class_iou": per_class,
                    "measurement": measurement_of(loaded.model, loaded.label, loaded.input_shape,
                                                  metrics=scored.metrics()).to_dict()})
        return
    table = Table(title=f"{loaded.label} on {task.data_name(split)} ({split}, {precision}, {values['n']:,} images)")
    for column in ("pixel acc %", "class acc %", "mIoU %", "loss"):
        table.add_column(column, justify="right")
    table.add_row(f"{values['pixel_accuracy']:.2f}", f"{values['mean_class_accuracy']:.2f}", f"{values['miou']:.2f}",
                  f"{values['loss']:.4f}")
    console.print(table)
    classes = Table(title="IoU per class")
    classes.add_column("class")
    classes.add_column("IoU %", justify="right")
    for name, value in values.items():
        if name.startswith("iou_"):
            classes.add_row(name.removeprefix("iou_"), f"{value:.2f}")
    console.print(classes)


def eval_segmentation_onnx(subject: Any, data: str, split: str, data_dir: Path | None, *, batch_size: int,
                           samples: int | None, as_json: bool) -> None:
    """An ONNX segmentation model scored by ONNX Runtime; images are resized to the input
    size it was exported at (its spatial size is fixed in the file)."""
    from trimkit.measure import runtime_evaluation
    from trimkit.record import Measurement

    require_recorded_input(subject)
    size = onnx_spatial_size(Path(subject.model)) or tuple(subject.input_shape[1:])
    dataset = datasets.load_segmentation(data, split, data_dir, image_size=size).with_normalization(
        subject.normalization)
    task = tasks.SegmentationTask({split: dataset})
    if samples:
        task = task.subset(split, samples)
    scored = runtime_evaluation(subject.model, task, split, backend="onnxruntime", batch_size=batch_size)
    values = {**scored.values, "precision": scored.precision, "backend": scored.backend}
    if as_json:
        per_class = {name.removeprefix("iou_"): value for name, value in values.items() if name.startswith("iou_")}
        print_json({**values, "per_class_iou": per_class,
                    "measurement": Measurement(subject.label, size_bytes={"onnx": Path(subject.model).stat().st_size},
                                               metrics=scored.metrics()).to_dict()})
        return
    console.print(f"{subject.label} on {dataset.name} ({split}, {size[0]}x{size[1]}), computed by ONNX Runtime: "
                  f"pixel accuracy {values['pixel_accuracy']:.2f} %, mIoU {values['miou']:.2f} %, "
                  f"{values['n']:,} images")


def onnx_spatial_size(path: Path) -> tuple[int, int] | None:
    """The fixed height and width of an ONNX file's first input, or None when dynamic."""
    from trimkit import export

    dims = export.read_onnx(path).graph.input[0].type.tensor_type.shape.dim
    sizes = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims[-2:]]
    return (sizes[0], sizes[1]) if len(sizes) == 2 and None not in sizes else None
