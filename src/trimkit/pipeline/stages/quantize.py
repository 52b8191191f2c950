"""Stage ``quantize``: QAT by a per-layer policy (the model goes on fake-quantised), or
INT8 PTQ for CPUs (an INT8 ONNX file is written and scored by ONNX Runtime itself; the
model goes on unchanged, and later stages can name the file ``int8_onnx``). Both log the
analytic size of each weight layer under its policy (``details.layers``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from torch import nn

from trimkit import quant
from trimkit.errors import TrimkitError
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.record import Measurement
from trimkit.tasks import ClassificationTask


class QuantizeOptions(StageOptions):
    mode: Literal["qat", "ptq"]
    policy: str = "int8"
    epochs: int = Field(default=0, ge=0)
    lr: float = Field(default=0.01, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    calibration_samples: int = Field(default=1000, ge=1)
    backend: Literal["onnxruntime", "openvino"] = "onnxruntime"

    @field_validator("policy")
    @classmethod
    def _policy_parses(cls, value: str) -> str:
        try:
            quant.Policy.parse(value)
        except TrimkitError as error:
            raise ValueError(str(error)) from None
        return value


@register_stage("quantize", QuantizeOptions, "QAT by per-layer policy, or INT8 PTQ to an ONNX file")
def quantize_stage(model: nn.Module, ctx: Context, options: QuantizeOptions) -> nn.Module:
    if options.mode == "qat":
        return _qat(model, ctx, options)
    return _ptq(model, ctx, options)


def _qat(model: nn.Module, ctx: Context, options: QuantizeOptions) -> nn.Module:
    checkpoint = ctx.checkpoint()
    result = quant.qat(model, options.policy, ctx.task, epochs=options.epochs, lr=options.lr,
                       batch_size=options.batch_size, seed=ctx.seed, progress=ctx.progress, checkpoint=checkpoint,
                       resume=ctx.resume and checkpoint is not None and checkpoint.exists())
    packed = ctx.path("model.tpk")
    report = quant.size_report(result.model)
    sizes = {"analytic": report.analytic_bytes, "packed": quant.save_packed(result.model, packed)}
    ctx.artifacts["packed"] = str(packed)
    ctx.add(Measurement("quantized", size_bytes=sizes), policy=options.policy, mode="qat",
            history=result.fit.history, size=dict(sizes), layers=report.to_dict()["layers"])
    ctx.say(f"   QAT {options.policy}: analytic {sizes['analytic']:,} B, packed {sizes['packed']:,} B")
    return result.model


def _ptq(model: nn.Module, ctx: Context, options: QuantizeOptions) -> nn.Module:
    if not isinstance(ctx.task, ClassificationTask):
        raise TrimkitError("INT8 PTQ calibrates on image batches of a classification task for now; use mode: qat")
    out = ctx.path("model.int8.onnx")
    report = quant.run_ptq(model, ctx.task.dataset("train").subset(options.calibration_samples, ctx.seed),
                           ctx.task.dataset(ctx.task.eval_split()), out, policy=options.policy,
                           backend=options.backend)
    ctx.artifacts["int8_onnx"] = str(out)
    ctx.models["int8"] = str(out)
    ctx.add(int8=report.measurement.to_dict(), policy=options.policy, mode="ptq",
            int8_format=report.ptq.int8_format if report.ptq else None, layers=report.size.to_dict()["layers"])
    ctx.say(f"   {out}: {report.size.onnx_bytes:,} bytes; analytic weights + scales {report.size.analytic_bytes:,} "
            f"bytes; top-1 {report.top1_after:.2f} % in ONNX Runtime")
    ctx.keep_model()
    return model

