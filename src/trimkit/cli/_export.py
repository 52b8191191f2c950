"""`trimkit export`: a model to ONNX, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from trimkit import export
from trimkit.cli._common import console, measurement_of, print_json, resolve_model
from trimkit.cli._options import (InChannelsOption, JsonOption, NumClassesOption, TrustOption, WeightsOption,
                                  stage_options)
from trimkit._outputs import check_output
from trimkit.pipeline.stages.export import ExportOptions

PARITY_BATCH = 2


def export_command(
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file.")],
    out: Annotated[Path, typer.Option(help="Where to write the .onnx file.")],
    weights: WeightsOption = None,
    opset: Annotated[Optional[int], typer.Option(help=f"ONNX opset, {export.MIN_OPSET} to {export.MAX_OPSET} "
                                                      "(default: the exporter's).")] = None,
    static_batch: Annotated[bool, typer.Option(help=f"Fix the batch size at {PARITY_BATCH} instead of leaving "
                                                    "it dynamic.")] = False,
    num_classes: NumClassesOption = 10,
    in_channels: InChannelsOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export to ONNX; ONNX Runtime must match PyTorch within 1e-4 relative, or nothing is written."""
    check_output(out, example="model.onnx")
    options = stage_options(ExportOptions, opset=opset, dynamic_batch=not static_batch)
    loaded = resolve_model(model, weights, num_classes=num_classes, in_channels=in_channels, trusted=trust_checkpoint)
    example = torch.randn(PARITY_BATCH, *loaded.input_shape, generator=torch.Generator().manual_seed(0))
    result = export.onnx(loaded.model, example, out, opset=options.opset, dynamic_batch=options.dynamic_batch)
    if as_json:
        print_json({**result.to_dict(), "measurement": measurement_of(loaded.model, loaded.label, loaded.input_shape,
                                                                       files={"onnx": result.path}).to_dict()})
        return
    batch = f"batch fixed at {PARITY_BATCH}" if static_batch else "dynamic batch"
    console.print(f"wrote {result.path} ({result.size_bytes:,} bytes, opset {result.opset}, {batch}); parity with "
                  f"PyTorch: max abs error {result.max_abs_err:.2e}, max rel error {result.max_rel_err:.2e}")
