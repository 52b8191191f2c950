"""`trimkit train` and `trimkit eval`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.table import Table

import trimkit
from trimkit import data as datasets
from trimkit import models, train
from trimkit.cli._common import (check_fits, console, err_console, load_data, measurement_of, print_json,
                                resolve_model)
from trimkit.cli._options import (DataDirOption, DataOption, InChannelsOption, JsonOption, NumClassesOption,
                                  SamplesOption, TrainPrecisionOption, TrustOption, WeightsOption, at_least,
                                  stage_options)
from trimkit.cli._segment import ImageSizeOption, eval_segmentation, train_segmentation
from trimkit._outputs import check_output
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.train import TrainOptions
from trimkit.record import Measurement, Metric
from trimkit.tasks import ClassificationTask, evaluate


def train_command(
    model: Annotated[str, typer.Argument(help="Zoo name.")],
    out: Annotated[Path, typer.Option(help="Where to write the trained model (.pt).")],
    data: DataOption = None,
    data_dir: DataDirOption = None,
    epochs: Annotated[int, typer.Option(help="Epochs to train.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 128,
    optimizer: Annotated[str, typer.Option(help=f"One of {', '.join(train.OPTIMIZERS)}.")] = "sgd",
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 0.05,
    momentum: Annotated[float, typer.Option(help="SGD momentum (Nesterov).")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 5e-4,
    schedule: Annotated[str, typer.Option(help=f"One of {', '.join(train.SCHEDULES)}.")] = "cosine",
    step_size: Annotated[int, typer.Option(help="Epochs between decays (step schedule).")] = 30,
    gamma: Annotated[float, typer.Option(help="Decay factor (step, exponential).")] = 0.1,
    precision: TrainPrecisionOption = "auto",
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and augmentation.")] = 0,
    weights: Annotated[Optional[Path], typer.Option(help="Start from these weights.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.ckpt if it exists.")] = False,
    teacher: Annotated[Optional[Path], typer.Option(help="Distil from this trimkit model file (knowledge "
                                                         "distillation).")] = None,
    kd_temperature: Annotated[float, typer.Option(help="Softmax temperature T of the soft targets.")] = 4.0,
    kd_alpha: Annotated[float, typer.Option(help="Weight of the distillation term; 1 - alpha weights the "
                                                 "cross-entropy on the labels.")] = 0.9,
    hint: Annotated[Optional[list[str]], typer.Option(help="STUDENT_LAYER=TEACHER_LAYER: FitNets hint through a "
                                                           "1x1 adapter (repeatable).")] = None,
    image_size: ImageSizeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Train a zoo model; checkpoint every epoch to OUT.ckpt (--resume continues)."""
    check_output(out)
    options = stage_options(TrainOptions, {"hints": "--hint"}, epochs=epochs, batch_size=batch_size,
                            optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            schedule=schedule, step_size=step_size, gamma=gamma, precision=precision,
                            teacher=str(teacher) if teacher is not None else None, kd_temperature=kd_temperature,
                            kd_alpha=kd_alpha, hints=_pairs(hint, "--hint"))
    teacher_model = _load_teacher(teacher, trust_checkpoint) if teacher is not None else None
    spec = models.spec(model)
    dataset_name = data or spec.default_data
    if datasets.is_segmentation_data(dataset_name, data_dir):
        kd = {"temperature": kd_temperature, "alpha": kd_alpha, "hints": options.hints or None}
        train_segmentation(model, out, dataset_name, data_dir, options.fit_kwargs(), seed=seed, weights=weights,
                           resume=resume, trusted=trust_checkpoint, as_json=as_json, image_size=image_size,
                           teacher=teacher_model, kd=kd)
        return
    train_set = datasets.load(dataset_name, "train", data_dir)
    val_set = datasets.load(dataset_name, "val", data_dir)
    train.seed_everything(seed)
    loaded = resolve_model(model, weights, num_classes=train_set.num_classes, in_channels=train_set.channels,
                           trusted=trust_checkpoint)
    check_fits(train_set, loaded.input_shape, loaded.label)
    train_set = train_set.with_normalization(loaded.normalization)
    val_set = val_set.with_normalization(loaded.normalization)
    with _distiller(teacher_model, options, ClassificationTask.of(train_set, val_set), loaded.model) as distiller:
        result = train.fit(loaded.model, train_set, val_set, **options.fit_kwargs(), seed=seed,
                           checkpoint=out.with_suffix(out.suffix + ".ckpt"), resume=resume, progress=True,
                           loss_fn=distiller, extra_modules=[distiller.adapters] if distiller else ())
    final = result.history[-1] if result.history else {}
    trimkit.save(loaded.model, out, metadata={"data": dataset_name, "epochs": epochs, "val_top1": final.get("val_top1")})
    record = {"out": str(out), "data": dataset_name, "epochs": epochs, "precision": result.precision,
              "channels_last": result.channels_last, "images_per_second": result.images_per_second,
              "val_top1": final.get("val_top1"), "val_loss": final.get("val_loss"), "history": result.history}
    if distiller is not None:
        record["distillation"] = {"teacher": str(teacher), "temperature": kd_temperature, "alpha": kd_alpha,
                                  "teacher_precision": distiller.precision.as_dict(), "hints": options.hints}
    metrics = [Metric(name.removeprefix("val_"), value, "val", len(val_set), "fp32", "pytorch", dataset_name)
               for name, value in final.items() if name.startswith("val_")]
    record["measurement"] = measurement_of(loaded.model, loaded.label, loaded.input_shape, metrics=metrics,
                                           files={"model_file": out}).to_dict()
    if as_json:
        print_json(record)
    else:
        if not result.history:
            console.print(f"saved {out}: no epochs trained (--epochs {epochs})")
            return
        console.print(f"saved {out}: val top-1 {final.get('val_top1', float('nan')):.2f}% after {epochs} epochs "
                      f"({result.precision}, {result.images_per_second:.0f} img/s)")


def _pairs(values: Optional[list[str]], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        student, sep, teacher = value.partition("=")
        if not sep or not student.strip() or not teacher.strip():
            raise TrimkitError(f"{flag} {value!r}: give STUDENT_LAYER=TEACHER_LAYER, such as layer3=layer4")
        pairs[student.strip()] = teacher.strip()
    return pairs


def _load_teacher(path: Path, trusted: bool):
    if not path.is_file():
        raise TrimkitError(f"--teacher {path}: no such file; give a trimkit model file (from trimkit train --out)")
    return trimkit.load(path, trusted=trusted)


@contextlib.contextmanager
def _distiller(teacher_model, options: TrainOptions, task: ClassificationTask, student) -> Iterator:
    """The distiller for --teacher (checked against the student before any epoch), or None."""
    if teacher_model is None:
        yield None
        return
    from trimkit.distill import Distiller, parse_links
    from trimkit.distill._run import example_batch

    distiller = Distiller(teacher_model, temperature=options.kd_temperature, alpha=options.kd_alpha,
                          links=parse_links(options.hints), teacher_precision=options.teacher_precision)
    with distiller.prepare(student, example_batch(task), task.loss):
        err_console.print(f"distilling from {options.teacher} (T={options.kd_temperature}, "
                          f"alpha={options.kd_alpha}); the teacher runs in {distiller.precision.precision}: "
                          f"{distiller.precision.reason}")
        yield distiller


def eval_command(
    model: Annotated[str, typer.Argument(help="Zoo name, trimkit model file or .onnx file.")],
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
        _eval_onnx(model, weights, data, data_dir, split, batch_size, samples, as_json)
        return
    loaded = resolve_model(model, weights, num_classes=num_classes, in_channels=in_channels, trusted=trust_checkpoint)
    if (data or "").startswith("tracking:") or loaded.default_data == "tracking":
        from trimkit.cli._track import eval_tracking

        eval_tracking(loaded, data, data_dir, as_json=as_json)
        return
    if datasets.is_segmentation_data(data or loaded.default_data, data_dir):
        eval_segmentation(loaded, data or loaded.default_data, split, data_dir, precision=precision,
                          batch_size=batch_size, samples=samples, image_size=image_size, as_json=as_json)
        return
    dataset = load_data(data, split, data_dir, loaded)
    if samples:
        dataset = dataset.subset(samples)
    scored = evaluate(loaded.model, ClassificationTask({split: dataset}), split, batch_size=batch_size,
                      precision=precision, progress=True)
    metrics = scored.values
    if as_json:
        print_json({**metrics, "measurement": measurement_of(loaded.model, loaded.label, loaded.input_shape,
                                                             metrics=scored.metrics()).to_dict()})
        return
    table = Table(title=f"{loaded.label} on {dataset.name} ({split}, {precision})")
    for column in ("top-1 %", "top-5 %", "loss", "images"):
        table.add_column(column, justify="right")
    table.add_row(f"{metrics['top1']:.2f}", f"{metrics['top5']:.2f}", f"{metrics['loss']:.4f}", f"{metrics['n']:,}")
    console.print(table)


def _eval_onnx(path: str, weights: Optional[Path], data: Optional[str], data_dir: Optional[Path], split: str,
               batch_size: int, samples: Optional[int], as_json: bool) -> None:
    """An ONNX file (an INT8 one from `trimkit quantize --mode ptq`, say) scored by ONNX
    Runtime itself, in the precision it computes in."""
    from trimkit.cli._bench import load_subject_data, resolve_subject
    from trimkit.measure import runtime_evaluation

    subject = resolve_subject(path, weights)
    if datasets.is_segmentation_data(data or subject.default_data, data_dir):
        from trimkit.cli._segment import eval_segmentation_onnx

        eval_segmentation_onnx(subject, data or subject.default_data, split, data_dir, batch_size=batch_size,
                               samples=samples, as_json=as_json)
        return
    dataset = load_subject_data(subject, data, split, data_dir)
    if samples:
        dataset = dataset.subset(samples)
    scored = runtime_evaluation(subject.model, ClassificationTask({split: dataset}), split, backend="onnxruntime",
                                batch_size=batch_size)
    metrics = {**scored.values, "precision": scored.precision, "backend": scored.backend}
    if as_json:
        size = {"onnx": Path(subject.model).stat().st_size}
        print_json({**metrics, "measurement": Measurement(subject.label, size_bytes=size,
                                                          metrics=scored.metrics()).to_dict()})
        return
    console.print(f"{subject.label} on {dataset.name} ({split}), computed by ONNX Runtime: top-1 "
                  f"{metrics['top1']:.2f} %, top-5 {metrics['top5']:.2f} %, loss {metrics['loss']:.4f}, "
                  f"{metrics['n']:,} images")
