"""`trimkit quantize` and `trimkit size`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

import trimkit
from trimkit import pipeline, quant, train
from trimkit._outputs import all_or_nothing, check_output
from trimkit.cli._common import resolve_model
from trimkit.cli._console import console, err_console, print_json
from trimkit.cli._options import DataDirOption, DataOption, JsonOption, TrustOption, WeightsOption, stage_options
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.quantize import QuantizeOptions
from trimkit.tasks import metric_title

PolicyOption = Annotated[str | None, typer.Option(
    help=f"Formats per layer, e.g. first=int16,hidden=int4,last=int8,act=int8 or int8. Keys: {quant.KEYS_HELP}. "
         f"Formats: {quant.FORMAT_HELP}.")]


def quantize_command(
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file.")],
    out: Annotated[Path, typer.Option(help="QAT: the trimkit .pt to write (packed .tpk, .qonnx.onnx and "
                                           ".qcdq.onnx go beside it). PTQ: the INT8 .onnx to write.")],
    policy: PolicyOption = None,
    mode: Annotated[str, typer.Option(help="qat (fine-tune with quantisation) or ptq (INT8 for CPUs).")] = "qat",
    weights: WeightsOption = None,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs.")] = 3,
    lr: Annotated[float, typer.Option(help="QAT peak learning rate.")] = 0.01,
    batch_size: Annotated[int, typer.Option(help="QAT images per step.")] = 128,
    optimizer: Annotated[str, typer.Option(help=f"QAT optimiser: {', '.join(train.OPTIMIZERS)}.")] = "sgd",
    weight_decay: Annotated[float, typer.Option(help="QAT weight decay.")] = 1e-4,
    precision: Annotated[str, typer.Option(help="QAT compute: auto, bf16 or fp32.")] = "auto",
    method: Annotated[str, typer.Option(help="PTQ calibration: minmax, entropy or percentile.")] = "minmax",
    calibration_images: Annotated[int, typer.Option(help="PTQ calibration images.")] = 512,
    int8_format: Annotated[str | None, typer.Option(help="PTQ: u8s8 or s8s8 (default: the fastest "
                                                            "measured for ONNX Runtime, u8s8).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for QAT.")] = 0,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Quantise by a per-layer policy (QAT) or to INT8 for CPUs (PTQ); write the files and measure them."""
    check_output(out, example="model.pt" if mode == "qat" else "model.int8.onnx")
    if mode == "qat" and policy is None:
        raise TrimkitError("QAT needs --policy, e.g. --policy first=int16,hidden=int4,last=int8,act=int8")
    options = stage_options(QuantizeOptions, {"calibration_samples": "--calibration-images"}, mode=mode,
                            policy=policy, epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
                            weight_decay=weight_decay, precision=precision, method=method, int8_format=int8_format,
                            calibration_samples=calibration_images, exports=["qonnx", "qcdq"])
    subject = resolve_model(model, weights, trusted=trust_checkpoint)
    task = pipeline.command_task(subject, data, data_dir, ("train", "val"))
    with all_or_nothing(*quant.written_files(out, options.mode)):
        job = pipeline.run_job(subject.model, task, [("quantize", options)], seed=seed, measure_input=False,
                               output=out, say=err_console.print)
        if options.mode == "qat":
            trimkit.save(job.model, out, metadata={"policy": options.policy, "data": task.data_name("val")})
    details = job.record("quantize").details
    report = {key: details[key] for key in _REPORT_KEYS(details)}
    if options.mode == "qat":
        report["size"]["files"] = {str(out): out.stat().st_size, **report["size"]["files"]}
    report["measurement"] = details["int8"] if options.mode == "ptq" else _qat_measurement(job, out)
    if as_json:
        print_json(report)
        return
    print_size(quant.SizeReport.from_dict(report["size"]), f"{subject.label}, {report['policy']} ({mode})")
    metric = report["metric"]
    console.print(f"{metric_title(metric)} on {task.data_name('val')} val: {report[f'{metric}_before']:.2f} before, "
                  f"{report[f'{metric}_after']:.2f} after, measured by {report[f'{metric}_after_by']}")
    for name, export in report["exports"].items():
        parity = export["parity"]
        console.print(f"{name}: {export['path']} ({export['size_bytes']:,} B), parity with PyTorch "
                      f"{'passed' if parity['passed'] else 'FAILED'}: mean relative difference "
                      f"{parity['mean_relative_diff']:.2e}, prediction agreement {parity['agreement']:.1f} %")
    ptq = report["ptq"]
    if ptq is not None:
        console.print(f"INT8 {ptq['int8_format'].upper()} QDQ, {ptq['method']} calibration on "
                      f"{ptq['calibration_images']} images: {ptq['path']}")
        if ptq["cpu_warning"]:
            console.print(f"[yellow]warning:[/] {ptq['cpu_warning']}")


def _REPORT_KEYS(details: dict) -> list[str]:
    """The keys of the stage's details that are the quantisation report (not the run's)."""
    return [key for key in details if key not in ("artifacts", "save_as", "named_files", "int8")]


def _qat_measurement(job, out: Path) -> dict:
    """The QAT model's record: the stage's figures (sizes, the metric as computed after) and its file."""
    record = job.record("quantize").measurement
    record.size_bytes["model_file"] = out.stat().st_size
    return record.to_dict()


def size_command(
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file (a quantised one needs no --policy).")],
    policy: PolicyOption = None,
    weights: WeightsOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Sizes under a policy, without training: analytic bits per layer, packed file bytes, convolution memory."""
    loaded = resolve_model(model, weights, trusted=trust_checkpoint)
    if policy is None and quant.plan_of(loaded.model) is None:
        raise TrimkitError(f"{model} is a float model; give --policy, e.g. --policy int8")
    if policy is not None and quant.plan_of(loaded.model) is not None:
        raise TrimkitError(f"{model} is quantised already ({quant.plan_of(loaded.model).policy}); drop --policy")
    report = quant.size_report(loaded.model, policy)
    report.packed_bytes = quant.packed_size(loaded.model, policy)
    if as_json:
        print_json(report.to_dict())
        return
    print_size(report, f"{loaded.label}, {report.policy}")


def print_size(report: quant.SizeReport, title: str) -> None:
    table = Table(title=f"{title}: sizes", box=box.SIMPLE, padding=(0, 1))
    for column in ("layer", "type", "role", "weights", "act", "params", "bits", "bytes"):
        table.add_column(column, justify="right" if column in ("params", "bits", "bytes") else "left",
                         no_wrap=column not in ("weights", "act"))
    for row in report.layers:
        table.add_row(row.name, row.type.removesuffix("2d"), row.role, row.weight_format, row.act_format,
                      f"{row.weights:,}", f"{row.analytic_bits:,}", f"{row.analytic_bytes:,}")
    table.add_section()
    table.add_row("(other)", "", "", "float32", "", "", f"{report.other_bits:,}", f"{report.other_bytes:,}")
    table.add_row("total", "", "", "", "", "", f"{report.analytic_bits:,}", f"{report.analytic_bytes:,}")
    console.print(table)
    ratio = report.analytic_bytes / max(report.float32_bytes, 1)
    conv_ratio = report.conv_param_bytes / max(report.float32_conv_param_bytes, 1)
    console.print(f"analytic {report.analytic_bytes:,} B ({ratio:.3f} of float32 {report.float32_bytes:,} B); "
                  f"convolution parameters {report.conv_param_bytes:,} B ({conv_ratio:.3f} of "
                  f"{report.float32_conv_param_bytes:,} B)")
    files = [f"packed {report.packed_bytes:,} B" if report.packed_bytes is not None else "packed: not written",
             f"ONNX {report.onnx_bytes:,} B" if report.onnx_bytes is not None else "ONNX: not exported"]
    console.print("files: " + "; ".join(files))
