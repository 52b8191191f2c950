"""`trimkit deploy`: the fastest runtime, precision and threads that keep the metric,
chosen by measurement, written as a deployment folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from trimkit import deploy, pipeline
from trimkit.cli._common import resolve_subject
from trimkit.cli._console import console, err_console, print_json
from trimkit.cli._options import (DataDirOption, InputShapeOption, JsonOption, SamplesOption, TrustOption,
                                  parse_input_shape, stage_options)
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.deploy import DeployStageOptions
from trimkit.record import metric_title

FLAGS = {"min_time_s": "--min-time", "int8_recipes": "--int8-recipes", "device_name": "--device-name",
         "remote_timeout_s": "--remote-timeout"}


def deploy_command(
    model: Annotated[str, typer.Argument(help="Zoo name (with --weights), trimkit .pt file, your own model as "
                                              "module:function, or an fp32 .onnx file trimkit exported.")],
    out: Annotated[Path, typer.Option(help="The deployment folder to write (new, empty, or an earlier deployment, "
                                           "which is replaced).")],
    data: Annotated[str | None, typer.Option(
        "--data", help="Validation data to score every candidate on (its val or test split; INT8 calibrates on its "
                       "train split); default: the model's own data.")] = None,
    data_dir: DataDirOption = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to load into a zoo model.")] = None,
    max_drop: Annotated[float, typer.Option(
        help="Points of the task's metric a candidate may lose against ONNX Runtime fp32.")] = deploy.DEFAULT_MAX_DROP,
    batch_size: Annotated[int, typer.Option(help="Images per call the deployment is chosen (and timed) for.")] = 1,
    threads: Annotated[str | None, typer.Option(
        help="Thread counts to try, e.g. 1,2 (default: 1, half and all of the CPUs).")] = None,
    backends: Annotated[str | None, typer.Option(
        help="Runtimes to try: onnxruntime,openvino (default: every one installed).")] = None,
    precisions: Annotated[str | None, typer.Option(
        help="Precisions to try: fp32,bf16,int8 (default: all this CPU runs natively).")] = None,
    int8_recipes: Annotated[str | None, typer.Option(
        help=f"INT8 recipes to try, from {', '.join(deploy.INT8_RECIPES)} (default: every one of each runtime).")]
    = None,
    samples: SamplesOption = None,
    calibration_samples: Annotated[int, typer.Option(help="Training images that calibrate INT8.")] = 300,
    min_time: Annotated[float, typer.Option("--min-time", help="Seconds of timed calls per candidate, at least.")]
    = 1.0,
    warmup: Annotated[int, typer.Option(help="Untimed calls first, per candidate.")] = 10,
    queue: Annotated[str | None, typer.Option(
        help="Time on another device: the PostgreSQL URL of its benchmark queue (see trimkit bench-worker).")] = None,
    device_name: Annotated[str | None, typer.Option(help="That device's queue name.")] = None,
    input_shape: InputShapeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Choose the fastest runtime, precision and threads that keep the metric, by measurement; write the deployment."""
    options = stage_options(DeployStageOptions, FLAGS, max_drop=max_drop, batch_size=batch_size,
                            threads=_numbers("--threads", threads), backends=_names(backends),
                            precisions=_names(precisions), int8_recipes=_names(int8_recipes), samples=samples,
                            calibration_samples=calibration_samples, min_time_s=min_time, warmup=warmup, queue=queue,
                            device_name=device_name)
    deploy.check_deployment_output(out)
    subject = resolve_subject(model, weights, trust_checkpoint, parse_input_shape(input_shape))
    task = pipeline.command_task(subject, data, data_dir, ("train", "val"), at_input_size=True)
    say = (lambda text: None) if as_json else (lambda text: err_console.print(escape(text)))
    found = deploy.choose(subject.model, task=task, options=deploy.DeployOptions.of(options), out=out,
                          progress=True, say=say)
    if as_json:
        print_json({"folder": str(found.folder), "manifest": found.manifest})
        return
    print_table(found.decision, found.manifest)
    for line in deploy.summary_lines(found):
        console.print(escape(line))
    files = ", ".join(sorted(path.name for path in found.folder.iterdir()))
    console.print(f"written: {found.folder}/ ({files}); in Python: from trimkit import deploy; "
                  f"run = deploy.load({str(found.folder)!r}); outputs = run(images)")


def print_table(decision: deploy.Decision, manifest: dict) -> None:
    """Every candidate, fastest first; the chosen one starred."""
    scored = manifest["metric"]
    images = " ".join(str(part) for part in (f"{scored['samples']:,}", scored["data"], scored["split"]) if part)
    table = Table(title=f"{len(decision.rows)} candidates at batch {manifest['batch_size']}, timed interleaved; "
                        f"{metric_title(decision.metric)} on {images} images as each computes it; drop against ONNX "
                        "Runtime fp32 "
                        f"({decision.reference:.2f})", box=box.SIMPLE, padding=(0, 1))
    for index, column in enumerate(deploy.TABLE_HEAD):
        table.add_column(column, justify="left" if index in (0, 1, len(deploy.TABLE_HEAD) - 1) else "right")
    for row, cells in zip(decision.rows, deploy.table_rows(decision), strict=True):
        table.add_row(*(escape(cell) for cell in cells), style="bold" if row.chosen else None)
    console.print(table)
    machine = manifest["machine"]
    console.print(f"{machine['cpu']} ({machine['cpus_available']} CPUs; {', '.join(machine['flags']) or 'no'} "
                  f"relevant flags); load average {_number(machine['load_average_1m'])} at the start; "
                  f"{machine['device']}")
    for note in manifest["notes"]:
        console.print(f"note: {escape(note)}")


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return names or None


def _numbers(flag: str, text: str | None) -> list[int] | None:
    names = _names(text)
    if names is None:
        return None
    try:
        return [int(name) for name in names]
    except ValueError:
        raise TrimkitError(f"{flag} {text!r}: give whole numbers separated by commas, e.g. 1,2") from None
