"""Quantisation: per-layer precision policies with QAT (Brevitas), INT8 PTQ for CPUs
(ONNX Runtime), honest sizes, packed files, QONNX and QCDQ ONNX export.

>>> from trimkit import quant
>>> policy = quant.Policy.parse("first=int16,hidden=binary,last=int8,act=int8")
>>> result = quant.qat(model, policy, train_data, val_data, epochs=3)      # doctest: +SKIP
>>> quant.size_report(result.model).analytic_bytes                         # doctest: +SKIP
>>> quant.save_packed(result.model, "model.tpk")                           # doctest: +SKIP
>>> quant.export_qonnx(result.model, "model.qonnx.onnx").parity.passed     # doctest: +SKIP
>>> quant.qonnx_parity(result.model, "model.qonnx.onnx", images).passed   # doctest: +SKIP
>>> quant.ptq_int8(model, calibration_data, out="model.int8.onnx")         # doctest: +SKIP
"""

from trimkit.quant import _section  # noqa: F401  (registers the "quantization" header section)
from trimkit.quant._convert import apply_plan, plan_of
from trimkit.quant._export import Parity, QuantExport, check_parity, export_qcdq, export_qonnx
from trimkit.quant._formats import FORMAT_HELP, NAMED_FORMATS, Format, WeightSpec, parse_format
from trimkit.quant._packed import load_packed, packed_size, save_packed
from trimkit.quant._plan import LayerPlan, QuantPlan, plan
from trimkit.quant._policy import KEYS, KEYS_HELP, Policy
from trimkit.quant._qonnx import qonnx_parity, qonnx_ready
from trimkit.quant._ptq import FORMAT_BY_BACKEND, PtqResult, cpu_int8_warning, ptq_int8
from trimkit.quant._qat import QatResult, qat, quantize
from trimkit.quant._size import LayerSize, SizeReport, size_report
from trimkit.quant._workflow import QuantizeReport, beside, qcdq_supported, run_ptq, run_qat, written_files

__all__ = [
    "FORMAT_BY_BACKEND",
    "FORMAT_HELP",
    "KEYS",
    "KEYS_HELP",
    "NAMED_FORMATS",
    "Format",
    "LayerPlan",
    "LayerSize",
    "Parity",
    "Policy",
    "PtqResult",
    "QatResult",
    "QuantExport",
    "QuantPlan",
    "QuantizeReport",
    "SizeReport",
    "WeightSpec",
    "apply_plan",
    "beside",
    "check_parity",
    "cpu_int8_warning",
    "export_qcdq",
    "export_qonnx",
    "load_packed",
    "packed_size",
    "parse_format",
    "plan",
    "plan_of",
    "ptq_int8",
    "qat",
    "qonnx_parity",
    "qonnx_ready",
    "quantize",
    "run_ptq",
    "qcdq_supported",
    "run_qat",
    "written_files",
    "save_packed",
    "size_report",
]
