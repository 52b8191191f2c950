"""`trimkit export`: the export stage on the command's model, to --out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trimkit import export, pipeline
from trimkit._outputs import check_output
from trimkit.cli._common import example_batch, resolve_model
from trimkit.cli._console import console, print_json
from trimkit.cli._options import (InChannelsOption, InputShapeOption, JsonOption, ModelArgument, NumClassesOption,
                                  TrustOption, WeightsOption, parse_input_shape, stage_options)
from trimkit.pipeline.stages.export import ExportOptions

PARITY_BATCH = 2


def export_command(
    model: ModelArgument,
    out: Annotated[Path, typer.Option(help="Where to write the .onnx file.")],
    weights: WeightsOption = None,
    opset: Annotated[int | None, typer.Option(help=f"ONNX opset, {export.MIN_OPSET} to {export.MAX_OPSET} "
                                                      "(default: the exporter's).")] = None,
    static_batch: Annotated[bool, typer.Option(help=f"Fix the batch size at {PARITY_BATCH} instead of leaving "
                                                    "it dynamic.")] = False,
    num_classes: NumClassesOption = 10,
    in_channels: InChannelsOption = None,
    input_shape: InputShapeOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export to ONNX; ONNX Runtime must match PyTorch within 1e-4 relative, or nothing is written."""
    check_output(out, example="model.onnx")
    options = stage_options(ExportOptions, opset=opset, dynamic_batch=not static_batch, parity_samples=PARITY_BATCH)
    subject = resolve_model(model, weights, num_classes=num_classes, in_channels=in_channels, trusted=trust_checkpoint,
                            input_shape=parse_input_shape(input_shape))
    job = pipeline.run_job(subject.model, None, [("export", options)], measure_input=False, output=out,
                           examples=(example_batch(subject, PARITY_BATCH),))
    exported = job.record("export")
    details = exported.details
    record = {"path": details["path"], "size_bytes": exported.measurement.size_bytes["onnx"],
              **{key: details[key] for key in ("opset", "max_abs_err", "max_rel_err")}}
    if as_json:
        measurement = pipeline.measurement_of(subject, files={"onnx": out})
        print_json({**record, "measurement": measurement.to_dict()})
        return
    batch = f"batch fixed at {PARITY_BATCH}" if static_batch else "dynamic batch"
    console.print(f"wrote {record['path']} ({record['size_bytes']:,} bytes, opset {record['opset']}, {batch}); parity "
                  f"with PyTorch: max abs error {record['max_abs_err']:.2e}, max rel error {record['max_rel_err']:.2e}")
