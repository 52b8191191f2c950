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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from trimkit._model_file import save
from trimkit.errors import TrimkitError
from trimkit.measure import runtime_evaluation
from trimkit.quant._export import QuantExport, export_qcdq, export_qonnx
from trimkit.quant._lower import MAX_QCDQ_BITS
from trimkit.quant._packed import save_packed
from trimkit.quant._policy import Policy, PolicyLike
from trimkit.quant._ptq import PtqResult, fp32_path_for, ptq_int8
from trimkit.quant._qat import qat
from trimkit.quant._size import SizeReport, size_report
from trimkit.record import Measurement, Metric
from trimkit.tasks import as_task, evaluate

PARITY_IMAGES = 64
ORT_ZERO_POINT_BITS = 8


@dataclass
class QuantizeReport:
    """What ``trimkit quantize --json`` prints: the task's primary ``metric`` before
    (PyTorch, fp32) and after (``after_by``: the fake-quantised model in PyTorch for QAT,
    the INT8 file in ONNX Runtime for PTQ), sizes and the files written."""

    policy: str
    mode: str
    metric: str
    before: float
    after: float
    after_by: str
    size: SizeReport
    exports: dict[str, QuantExport]
    ptq: PtqResult | None = None
    model_path: Path | None = None
    history: list[dict[str, float]] | None = None
    samples: int = 0
    split: str = ""
    data: str | None = None
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def measurement(self) -> Measurement:
        """The quantised model's figures: sizes by kind, and the metric as computed after."""
        sizes = {"analytic": self.size.analytic_bytes}
        if self.size.packed_bytes is not None:
            sizes["packed"] = self.size.packed_bytes
        if self.size.onnx_bytes is not None:
            sizes["int8_onnx" if self.mode == "ptq" else "onnx"] = self.size.onnx_bytes
        backend, precision = ("onnxruntime", "int8") if self.mode == "ptq" else ("pytorch", f"fake-quant {self.policy}")
        metric = Metric(self.metric, self.after, self.split, self.samples, precision, backend, self.data)
        label = str(self.model_path.name) if self.model_path is not None else self.mode
        return Measurement(label, size_bytes=sizes, metrics=[metric])

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy, "mode": self.mode, "metric": self.metric, f"{self.metric}_before": self.before,
            f"{self.metric}_after": self.after, f"{self.metric}_after_by": self.after_by,
            "size": self.size.to_dict(),
            "exports": {name: export.to_dict() for name, export in self.exports.items()},
            "ptq": None if self.ptq is None else self.ptq.to_dict(),
            "model_path": None if self.model_path is None else str(self.model_path),
            "history": self.history,
            "measurement": self.measurement.to_dict(),
        }


def run_qat(model: nn.Module, policy: PolicyLike, train: Any, val: Any = None, out: str | os.PathLike | None = None,
            *, epochs: int, save_model: bool = True, exports: Sequence[str] = ("qonnx", "qcdq"),
            **qat_options: Any) -> QuantizeReport:
    """QAT of ``model`` by ``policy`` on a task (or train and val data sets), scored on its
    evaluation split; the model (``out``, a ``.pt`` path, unless ``save_model`` is off),
    its packed file (``.tpk``) and the ONNX ``exports`` asked for (``qonnx``; ``qcdq``
    where the policy allows it) are written beside ``out``. The report's ``model`` is the
    fake-quantised model."""
    if out is None:
        raise TrimkitError("run_qat needs out=, the .pt path the files are written beside")
    policy = Policy.parse(policy)
    out = Path(out)
    task = as_task(train, val)
    split = task.eval_split()
    before = evaluate(model, task, split).values[task.primary_metric]
    result = qat(model, policy, task, epochs=epochs, **qat_options)
    after = evaluate(result.model, task, split).values[task.primary_metric]
    files = {}
    if save_model:
        save(result.model, out, metadata={"policy": str(policy), task.primary_metric: after,
                                          "data": task.data_name(split)})
        files[str(out)] = out.stat().st_size
    size = size_report(result.model)
    size.packed_bytes = save_packed(result.model, beside(out, ".tpk"))
    example = task.example_inputs(PARITY_IMAGES)
    example = example if len(example) > 1 else example[0]
    written: dict[str, QuantExport] = {}
    if "qonnx" in exports:
        written["qonnx"] = export_qonnx(result.model, beside(out, ".qonnx.onnx"), example, prediction=task.prediction)
    if "qcdq" in exports and qcdq_supported(policy):
        written["qcdq"] = export_qcdq(result.model, beside(out, ".qcdq.onnx"), example, prediction=task.prediction)
    if written:
        size.onnx_bytes = written.get("qcdq", written.get("qonnx")).size_bytes
    size.files = {**files, str(beside(out, ".tpk")): size.packed_bytes,
                  **{str(export.path): export.size_bytes for export in written.values()}}
    return QuantizeReport(str(policy), "qat", task.primary_metric, before, after, "pytorch (fake-quantised)", size,
                          written, model_path=out, history=result.fit.history, samples=task.size(split), split=split,
                          data=task.data_name(split), model=result.model)


def run_ptq(model: nn.Module, train: Any, val: Any = None, out: str | os.PathLike | None = None, *,
            policy: PolicyLike = "int8", calibration_samples: int | None = None, seed: int = 0,
            **ptq_options: Any) -> QuantizeReport:
    """INT8 PTQ of ``model`` calibrated on a task's training split (or a calibration data
    set, with ``val`` to score on), written to ``out`` (``.onnx``); the task's metric of
    the INT8 file measured by ONNX Runtime on the evaluation split.
    ``calibration_samples`` cuts the calibration split to a fixed subset first."""
    if out is None:
        raise TrimkitError("run_ptq needs out=, the .onnx file to write")
    policy = Policy.parse(policy)
    _check_int8(policy)
    task = as_task(train, val)
    split = task.eval_split()
    per_channel = policy.hidden.granularity == "channel"
    calibration = task.subset("train", calibration_samples, seed) if calibration_samples else task
    before = evaluate(model, task, split).values[task.primary_metric]
    result = ptq_int8(model, calibration, out=out, per_channel=per_channel, **ptq_options)
    after = runtime_evaluation(result.path, task, split, backend="onnxruntime").values[task.primary_metric]
    size = size_report(model, policy, example_inputs=task.example_inputs(8), zero_point_bits=ORT_ZERO_POINT_BITS)
    size.onnx_bytes = result.size_bytes
    size.files = {str(result.path): result.size_bytes, str(result.fp32_path): result.fp32_size_bytes}
    return QuantizeReport(str(policy), "ptq", task.primary_metric, before, after, "onnxruntime (int8 file)", size, {},
                          ptq=result, model_path=result.path, samples=task.size(split), split=split,
                          data=task.data_name(split))


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
        return [out, *(beside(out, suffix) for suffix in (".tpk", ".qonnx.onnx", ".qcdq.onnx"))]
    return [out, fp32_path_for(out)]


def beside(path: str | os.PathLike, suffix: str) -> Path:
    """The file beside ``path`` with ``suffix`` for its own: ``m.pt`` -> ``m.tpk``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(path.suffix) + suffix)
