"""Stage ``export``: the model to ONNX, parity-checked against PyTorch (a quantised model
to QCDQ ONNX where its formats allow, else QONNX)."""

from __future__ import annotations

from pydantic import Field, field_validator
from torch import nn

from trimkit import export
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.record import Measurement


class ExportOptions(StageOptions):
    name: str = "onnx"
    opset: int | None = None
    dynamic_batch: bool = True
    parity_samples: int = Field(default=8, ge=1)

    @field_validator("opset")
    @classmethod
    def _supported_opset(cls, value: int | None) -> int | None:
        if value is not None and not export.MIN_OPSET <= value <= export.MAX_OPSET:
            raise ValueError(f"opset {value} is not supported; choose {export.MIN_OPSET} to {export.MAX_OPSET}, "
                             "or leave it out")
        return value


def export_model(model: nn.Module, ctx: Context, path, *, opset: int | None = None, dynamic_batch: bool = True,
                 parity_samples: int = 8) -> tuple[str, int, dict]:
    """Write ``model`` to ``path`` (ONNX; QCDQ or QONNX for a quantised model); return the
    path written, its size and the parity record."""
    example = ctx.example_inputs(parity_samples)
    if getattr(model, "trimkit_quant_plan", None) is not None:
        from trimkit import quant

        qcdq = quant.qcdq_supported(model.trimkit_quant_plan.policy)
        target = path.with_name(path.stem + (".qcdq.onnx" if qcdq else ".qonnx.onnx"))
        exporter = quant.export_qcdq if qcdq else quant.export_qonnx
        written = exporter(model, target, example, prediction=ctx.task.prediction)
        return str(written.path), written.size_bytes, {"format": written.format,
                                                       "parity": written.parity.to_dict() if written.parity else None}
    written = export.onnx(model, example if len(example) > 1 else example[0], path, opset=opset,
                          dynamic_batch=dynamic_batch)
    return str(written.path), written.size_bytes, {"format": "onnx", "max_abs_err": written.max_abs_err,
                                                   "max_rel_err": written.max_rel_err, "opset": written.opset}


@register_stage("export", ExportOptions, "export to ONNX with parity against PyTorch")
def export_stage(model: nn.Module, ctx: Context, options: ExportOptions) -> nn.Module:
    path, size, parity = export_model(model, ctx, ctx.output or ctx.path("model.onnx"), opset=options.opset,
                                      dynamic_batch=options.dynamic_batch, parity_samples=options.parity_samples)
    ctx.artifacts[options.name] = path
    ctx.add(Measurement("exported", size_bytes={"onnx": size}), path=path, **parity)
    ctx.say(f"   {path}: {size:,} bytes, checked against PyTorch")
    ctx.keep_model()
    return model
