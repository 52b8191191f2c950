"""Quantise, write every file, and measure what it bought: the work of
``trimkit quantize``, callable from Python (and from the demo).

``run_qat`` writes the QAT model (trimkit ``.pt``), its packed file (``.tpk``), QONNX
and, for policies of at most 8 bits without binary activations, QCDQ ONNX; ``run_ptq``
writes the FP32 and INT8 ONNX files. Both score the model before (PyTorch, FP32) and
after: the fake-quantised model in PyTorch for QAT, the INT8 file in ONNX Runtime for
PTQ, so the INT8 accuracy is the runtime's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from trimkit import measure, train
from trimkit._model_file import save
from trimkit.data import ImageDataset
from trimkit.errors import TrimkitError
from trimkit.record import Measurement, Metric
from trimkit.quant._export import QuantExport, export_qcdq, export_qonnx
from trimkit.quant._lower import MAX_QCDQ_BITS
from trimkit.quant._packed import save_packed
from trimkit.quant._policy import Policy, PolicyLike
from trimkit.quant._ptq import PtqResult, fp32_path_for, ptq_int8
from trimkit.quant._qat import qat
from trimkit.quant._size import SizeReport, size_report

PARITY_IMAGES = 64
ORT_ZERO_POINT_BITS = 8


@dataclass
class QuantizeReport:
    """What ``trimkit quantize --json`` prints."""

    policy: str
    mode: str
    top1_before: float
    top1_after: float
    top1_after_by: str
    size: SizeReport
    exports: dict[str, QuantExport]
    ptq: PtqResult | None = None
    model_path: Path | None = None
    history: list[dict[str, float]] | None = None
    samples: int = 0
    split: str = ""

    @property
    def measurement(self) -> Measurement:
        """The quantised model's figures: sizes by kind, and the metric as computed after."""
        sizes = {"analytic": self.size.analytic_bytes}
        if self.size.packed_bytes is not None:
            sizes["packed"] = self.size.packed_bytes
        if self.size.onnx_bytes is not None:
            sizes["int8_onnx" if self.mode == "ptq" else "onnx"] = self.size.onnx_bytes
        backend, precision = ("onnxruntime", "int8") if self.mode == "ptq" else ("pytorch", f"fake-quant {self.policy}")
        metric = Metric("top1", self.top1_after, self.split, self.samples, precision, backend)
        label = str(self.model_path.name) if self.model_path is not None else self.mode
        return Measurement(label, size_bytes=sizes, metrics=[metric])

    def to_dict(self) -> dict[str, Any]:
        size = self.size.to_dict()
        return {
            "policy": self.policy, "mode": self.mode, "top1_before": self.top1_before, "top1_after": self.top1_after,
            "top1_after_by": self.top1_after_by,
            "size": {key: size[key] for key in ("analytic_bytes", "packed_bytes", "onnx_bytes", "conv_param_bytes",
                                               "layers", "analytic_bits", "other_bytes", "float32_bytes",
                                               "float32_conv_param_bytes", "files")},
            "exports": {name: export.to_dict() for name, export in self.exports.items()},
            "ptq": None if self.ptq is None else self.ptq.to_dict(),
            "model_path": None if self.model_path is None else str(self.model_path),
            "history": self.history,
            "measurement": self.measurement.to_dict(),
        }


def run_qat(model: nn.Module, policy: PolicyLike, train_data: ImageDataset, eval_data: ImageDataset,
            out: str | os.PathLike, *, epochs: int, **qat_options: Any) -> QuantizeReport:
    """QAT of ``model`` by ``policy`` on ``train_data``; scored on ``eval_data``; files
    written beside ``out`` (a ``.pt`` path)."""
    policy = Policy.parse(policy)
    out = Path(out)
    top1_before = train.evaluate(model, eval_data)["top1"]
    result = qat(model, policy, train_data, eval_data, epochs=epochs, **qat_options)
    top1_after = train.evaluate(result.model, eval_data)["top1"]
    save(result.model, out, metadata={"policy": str(policy), "top1": top1_after, "data": eval_data.name})
    size = size_report(result.model)
    size.packed_bytes = save_packed(result.model, _beside(out, ".tpk"))
    example = eval_data.example_inputs(PARITY_IMAGES)
    exports = {"qonnx": export_qonnx(result.model, _beside(out, ".qonnx.onnx"), example)}
    if qcdq_supported(policy):
        exports["qcdq"] = export_qcdq(result.model, _beside(out, ".qcdq.onnx"), example)
    size.onnx_bytes = exports.get("qcdq", exports["qonnx"]).size_bytes
    size.files = {str(out): out.stat().st_size, str(_beside(out, ".tpk")): size.packed_bytes,
                  **{str(export.path): export.size_bytes for export in exports.values()}}
    return QuantizeReport(str(policy), "qat", top1_before, top1_after, "pytorch (fake-quantised)", size, exports,
                          model_path=out, history=result.fit.history, samples=len(eval_data), split=eval_data.split)


def run_ptq(model: nn.Module, calibration_data: ImageDataset, eval_data: ImageDataset, out: str | os.PathLike, *,
            policy: PolicyLike = "int8", **ptq_options: Any) -> QuantizeReport:
    """INT8 PTQ of ``model`` calibrated on ``calibration_data``, written to ``out``
    (``.onnx``); accuracy of the INT8 file measured by ONNX Runtime on ``eval_data``."""
    policy = Policy.parse(policy)
    _check_int8(policy)
    per_channel = policy.hidden.granularity == "channel"
    top1_before = train.evaluate(model, eval_data)["top1"]
    result = ptq_int8(model, calibration_data, out=out, per_channel=per_channel, **ptq_options)
    top1_after = measure.runtime_accuracy(result.path, eval_data, backend="onnxruntime")["top1"]
    size = size_report(model, policy, example_inputs=eval_data.example_inputs(8), zero_point_bits=ORT_ZERO_POINT_BITS)
    size.onnx_bytes = result.size_bytes
    size.files = {str(result.path): result.size_bytes, str(result.fp32_path): result.fp32_size_bytes}
    return QuantizeReport(str(policy), "ptq", top1_before, top1_after, "onnxruntime (int8 file)", size, {},
                          ptq=result, model_path=result.path, samples=len(eval_data), split=eval_data.split)


def _check_int8(policy: Policy) -> None:
    specs = [policy.first, policy.hidden, policy.last, *(spec for _, spec in policy.patterns)]
    if any(spec.format.name != "int8" for spec in specs) or policy.act.name != "int8":
        raise TrimkitError(f"PTQ makes INT8 models for CPUs; policy {policy} is not int8 throughout: use --policy "
                           "int8 (int8:tensor for per-tensor weight scales), or --mode qat for other formats")
    if len({spec.granularity for spec in specs}) > 1:
        raise TrimkitError("PTQ uses one weight-scale granularity for all layers: channel or tensor, not both")


def qcdq_supported(policy: PolicyLike) -> bool:
    """Whether a model quantised by ``policy`` exports to QCDQ ONNX (which ONNX Runtime
    runs): formats of at most 8 bits, and activations that are not binary."""
    policy = Policy.parse(policy)
    return policy.max_bits() <= MAX_QCDQ_BITS and policy.act.kind != "binary"


def written_files(out: str | os.PathLike, mode: str) -> list[Path]:
    """Every file ``run_qat`` (mode ``qat``) or ``run_ptq`` (``ptq``) may write for ``out``."""
    out = Path(out)
    if mode == "qat":
        return [out, *(_beside(out, suffix) for suffix in (".tpk", ".qonnx.onnx", ".qcdq.onnx"))]
    return [out, fp32_path_for(out)]


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.removesuffix(path.suffix) + suffix)
