"""Stage ``quantize``: QAT by a per-layer policy (the model goes on fake-quantised, with
its packed file and, as asked, its QONNX and QCDQ exports), or INT8 PTQ for CPUs (an INT8
ONNX file is written and scored by ONNX Runtime itself; the model goes on unchanged, and
later stages can name the file ``int8_onnx``). Both log what :class:`~trimkit.quant.
QuantizeReport` holds: the task's metric before and after, the analytic size of each
weight layer under the policy, and the files written."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from trimkit import quant
from trimkit.errors import TrimkitError
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage


class QuantizeOptions(StageOptions):
    mode: Literal["qat", "ptq"]
    policy: str = "int8"
    epochs: int = Field(default=0, ge=0)
    lr: float = Field(default=0.01, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    weight_decay: float = Field(default=1e-4, ge=0.0)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    exports: list[Literal["qonnx", "qcdq"]] = Field(default_factory=list)
    calibration_samples: int = Field(default=1000, ge=1)
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    int8_format: Literal["u8s8", "s8s8"] | None = None
    backend: Literal["onnxruntime", "openvino"] = "onnxruntime"
    quant_format: Literal["qdq", "qoperator"] = "qdq"
    float_first_layer: bool = False

    @field_validator("policy")
    @classmethod
    def _policy_parses(cls, value: str) -> str:
        try:
            quant.Policy.parse(value)
        except TrimkitError as error:
            raise ValueError(str(error)) from None
        return value

    def needs(self) -> frozenset[str]:
        return frozenset({"runtime_scoring"}) if self.mode == "ptq" else frozenset()


@register_stage("quantize", QuantizeOptions, "QAT by per-layer policy, or INT8 PTQ to an ONNX file")
def quantize_stage(model, ctx: Context, options: QuantizeOptions):
    task = ctx.require_task("quantisation")
    if options.mode == "qat":
        checkpoint = ctx.checkpoint()
        out = ctx.output or ctx.path("model.pt")
        report = quant.run_qat(model, options.policy, task, out=out, save_model=False, epochs=options.epochs,
                               lr=options.lr, batch_size=options.batch_size, optimizer=options.optimizer,
                               weight_decay=options.weight_decay, precision=options.precision, seed=ctx.seed,
                               progress=ctx.progress, checkpoint=checkpoint, exports=options.exports,
                               resume=ctx.resume and checkpoint is not None and checkpoint.exists())
        model = report.model
        ctx.artifacts["packed"] = str(quant.beside(out, ".tpk"))
        ctx.artifacts.update({name: str(export.path) for name, export in report.exports.items()})
        ctx.say(f"   QAT {options.policy}: analytic {report.size.analytic_bytes:,} B, packed "
                f"{report.size.packed_bytes:,} B")
    else:
        out = ctx.output or ctx.path("model.int8.onnx")
        report = quant.run_ptq(model, task, out=out, policy=options.policy, backend=options.backend,
                               method=options.method, int8_format=options.int8_format,
                               calibration_samples=options.calibration_samples, seed=ctx.seed,
                               quant_format=options.quant_format, float_first_layer=options.float_first_layer)
        ctx.artifacts["int8_onnx"] = str(out)
        ctx.models["int8"] = str(out)
        ctx.say(f"   {out}: {report.size.onnx_bytes:,} bytes; analytic weights + scales "
                f"{report.size.analytic_bytes:,} bytes; {report.metric} {report.after:.2f} in ONNX Runtime")
        ctx.keep_model()
    details = report.to_dict()
    measurement = details.pop("measurement")
    if options.mode == "ptq":
        ctx.add(int8=measurement, **details)
    else:
        ctx.add(report.measurement, **details)
    return model
