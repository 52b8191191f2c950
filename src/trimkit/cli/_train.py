"""`trimkit train` (the train stage, with a teacher: distillation) and `trimkit eval`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import trimkit
from trimkit import models, pipeline, train
from trimkit._outputs import check_output
from trimkit.cli._common import resolve_model, resolve_subject
from trimkit.cli._console import console, err_console, print_json
from trimkit.cli._options import (DataDirOption, DataOption, ImageSizeOption, InChannelsOption, JsonOption,
                                  NumClassesOption, SamplesOption, TrainPrecisionOption, TrustOption, WeightsOption,
                                  at_least, parse_image_size, stage_options)
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.train import TrainOptions
from trimkit.record import Measurement
from trimkit.tasks import evaluate, metric_title


def train_command(
    model: Annotated[str, typer.Argument(help="Zoo name, or your own model as module:function (mynet:MyNet).")],
    out: Annotated[Path, typer.Option(help="Where to write the trained model (.pt).")],
    data: DataOption = None,
    data_dir: DataDirOption = None,
    epochs: Annotated[int, typer.Option(help="Epochs to train.")] = 10,
    batch_size: Annotated[str, typer.Option(
        help="Images per step, or auto: 128 for classification, 16 for segmentation and tracking.")] = "auto",
    optimizer: Annotated[str, typer.Option(help=f"auto (SGD for a model with normalisation layers, Adam without) "
                                                 f"or one of {', '.join(train.OPTIMIZERS)}.")] = "auto",
    lr: Annotated[str, typer.Option(help="Peak learning rate, or auto (0.05 for SGD, 0.001 for Adam).")] = "auto",
    momentum: Annotated[float, typer.Option(help="SGD momentum (Nesterov).")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 5e-4,
    schedule: Annotated[str, typer.Option(help=f"One of {', '.join(train.SCHEDULES)}.")] = "cosine",
    step_size: Annotated[int, typer.Option(help="Epochs between decays (step schedule).")] = 30,
    gamma: Annotated[float, typer.Option(help="Decay factor (step, exponential).")] = 0.1,
    precision: TrainPrecisionOption = "auto",
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and augmentation.")] = 0,
    weights: Annotated[Path | None, typer.Option(help="Start from these weights.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.ckpt if it exists.")] = False,
    teacher: Annotated[Path | None, typer.Option(help="Distil from this trimkit model file (knowledge "
                                                         "distillation).")] = None,
    kd_temperature: Annotated[float, typer.Option(help="Softmax temperature T of the soft targets.")] = 4.0,
    kd_alpha: Annotated[float, typer.Option(help="Weight of the distillation term; 1 - alpha weights the "
                                                 "cross-entropy on the labels.")] = 0.5,
    teacher_check: Annotated[str, typer.Option(help="warn, refuse or off: the teacher's val metric against the "
                                                    "student's and chance before distilling.")] = "warn",
    allow_failure: Annotated[bool, typer.Option(help="Save the model even where training failed (at chance, "
                                                     "loss not finite, much worse than it started).")] = False,
    hint: Annotated[list[str] | None, typer.Option(help="STUDENT_LAYER=TEACHER_LAYER: FitNets hint through a "
                                                           "1x1 adapter (repeatable).")] = None,
    image_size: ImageSizeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Train a zoo model; checkpoint every epoch to OUT.ckpt (--resume continues)."""
    check_output(out)
    batch = _auto(batch_size, int, "--batch-size", "a whole number of images")
    options = stage_options(TrainOptions, {"hints": "--hint"}, epochs=epochs, batch_size=batch,
                            optimizer=optimizer, lr=_auto(lr, float, "--lr", "a learning rate"), momentum=momentum,
                            weight_decay=weight_decay,
                            schedule=schedule, step_size=step_size, gamma=gamma, precision=precision,
                            teacher=str(teacher) if teacher is not None else None, kd_temperature=kd_temperature,
                            kd_alpha=kd_alpha, hints=_pairs(hint, "--hint"),
                            teacher_check=teacher_check, allow_failure=allow_failure)
    if not models.looks_like_factory(model):
        zoo = models.spec(model)  # a zoo name: trained from fresh weights for the data
        data = data or zoo.default_data
    if teacher is not None and not teacher.is_file():
        raise TrimkitError(f"--teacher {teacher}: no such file; give a trimkit model file (from trimkit train --out)")
    task = pipeline.command_task(None, data, data_dir, ("train", "val"), image_size=parse_image_size(image_size),
                                 seed=seed)
    subject = resolve_model(model, weights, **task.model_arguments(), trusted=trust_checkpoint)
    task = task.prepared_for(subject.model, subject.label)
    job = pipeline.run_job(subject.model, task, [("train", options)], seed=seed, measure_input=False,
                           checkpoint_file=out.with_suffix(out.suffix + ".ckpt"), resume=resume,
                           trusted=trust_checkpoint, say=err_console.print)
    trained = job.record("train")
    history = trained.details["history"]
    final = {name.removeprefix("val_"): value for name, value in (history[-1] if history else {}).items()
             if name.startswith("val_")}
    primary = task.primary_metric
    trimkit.save(job.model, out, metadata={"data": data, "epochs": epochs, f"val_{primary}": final.get(primary)})
    measurement = trained.measurement.renamed(subject.label)
    measurement.size_bytes["model_file"] = out.stat().st_size
    record = {"out": str(out), "data": data, "epochs": epochs, **{key: trained.details[key] for key in
                                                                  ("input_size", "precision", "channels_last",
                                                                   "images_per_second")},
              **{f"val_{name}": value for name, value in final.items()}, "history": history}
    if "distillation" in trained.details:
        record["distillation"] = trained.details["distillation"]
    record["measurement"] = measurement.to_dict()
    if as_json:
        print_json(record)
    elif not history:
        console.print(f"saved {out}: no epochs trained (--epochs {epochs})")
    else:
        console.print(f"saved {out}: val {metric_title(primary)} {final.get(primary, float('nan')):.2f} after "
                      f"{epochs} epochs at {', '.join(trained.details['input_size'])} ({trained.details['precision']}, "
                      f"{trained.details['images_per_second']:.0f} img/s)")


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        student, sep, teacher = value.partition("=")
        if not sep or not student.strip() or not teacher.strip():
            raise TrimkitError(f"{flag} {value!r}: give STUDENT_LAYER=TEACHER_LAYER, such as layer3=layer4")
        pairs[student.strip()] = teacher.strip()
    return pairs


def eval_command(
    model: Annotated[str, typer.Argument(help="Zoo name, your own model (module:function), trimkit model file or "
                                              ".onnx file.")],
    weights: WeightsOption = None,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    num_classes: NumClassesOption = 10,
    in_channels: InChannelsOption = None,
    precision: Annotated[str, typer.Option(help="fp32 or bf16.")] = "fp32",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 128,
    samples: SamplesOption = None,
    image_size: ImageSizeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Top-1, top-5 and loss of a model on a data split (an .onnx file is scored by ONNX Runtime)."""
    at_least("--batch-size", batch_size, 1)
    at_least("--samples", samples, 1)
    if precision not in ("fp32", "bf16"):
        raise TrimkitError(f"--precision {precision!r}: choose fp32 or bf16")
    if model.endswith(".onnx"):
        subject = resolve_subject(model, weights)
    else:
        subject = resolve_model(model, weights, num_classes=num_classes, in_channels=in_channels,
                                trusted=trust_checkpoint)
    if "sequences" in pipeline.data_kind(subject, data, data_dir).capabilities:
        from trimkit.cli._track import eval_tracking

        eval_tracking(subject, data, data_dir, as_json=as_json)
        return
    task = pipeline.command_task(subject, data, data_dir, (split,), image_size=parse_image_size(image_size),
                                 samples=samples)
    if isinstance(subject.model, Path):
        from trimkit.measure import runtime_evaluation

        scored = runtime_evaluation(subject.model, task, split, backend="onnxruntime", batch_size=batch_size)
        record = Measurement(subject.label, size_bytes={"onnx": subject.model.stat().st_size},
                             metrics=scored.metrics())
    else:
        scored = evaluate(subject.model, task, split, batch_size=batch_size, precision=precision, progress=True)
        record = pipeline.measurement_of(subject, scored.metrics())
    values = scored.values
    if as_json:
        per_class = {name.removeprefix("iou_"): value for name, value in values.items() if name.startswith("iou_")}
        extra = {"per_class_iou": per_class} if per_class else {}
        runtime = {"precision": scored.precision, "backend": scored.backend} if isinstance(subject.model, Path) else {}
        print_json({**values, **runtime, **extra, "measurement": record.to_dict()})
        return
    by = f"computed by {scored.backend} in {scored.precision}" if isinstance(subject.model, Path) else precision
    table = Table(title=f"{subject.label} on {task.data_name(split)} ({split}, {by}, {values['n']:,} samples)")
    shown = [name for name in task.metric_names if name in values]
    for name in shown:
        table.add_column(metric_title(name), justify="right")
    table.add_row(*(f"{values[name]:.4f}" if name in task.minimised_metrics else f"{values[name]:.2f}"
                    for name in shown))
    console.print(table)
    per_class = [(name.removeprefix("iou_"), value) for name, value in values.items() if name.startswith("iou_")]
    if per_class:
        classes = Table(title="IoU per class")
        classes.add_column("class")
        classes.add_column("IoU %", justify="right")
        for name, value in per_class:
            classes.add_row(name, f"{value:.2f}")
        console.print(classes)


def _auto(value: str, parse: Callable[[str], Any], flag: str, what: str) -> Any:
    """``auto``, or ``value`` parsed; one line naming ``flag`` where it is neither."""
    if value == "auto":
        return value
    try:
        return parse(value)
    except ValueError:
        raise TrimkitError(f"{flag} {value!r} is neither {what} nor auto") from None
