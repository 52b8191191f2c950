"""Quantisation: per-layer precision policies with QAT (Brevitas), INT8 PTQ for CPUs
(ONNX Runtime's quantiser; NNCF for OpenVINO), honest sizes, packed files, QONNX and QCDQ ONNX export.

>>> from trimkit import quant
>>> policy = quant.Policy.parse("first=int16,hidden=binary,last=int8,act=int8")
>>> result = quant.qat(model, policy, train_data, val_data, epochs=3)      # doctest: +SKIP
>>> quant.size_report(result.model).analytic_bytes                         # doctest: +SKIP
>>> quant.save_packed(result.model, "model.tpk")                           # doctest: +SKIP
>>> quant.export_qonnx(result.model, "model.qonnx.onnx").parity.passed     # doctest: +SKIP
>>> quant.qonnx_parity(result.model, "model.qonnx.onnx", images).passed   # doctest: +SKIP
>>> quant.ptq_int8(model, calibration_data, out="model.int8.onnx")         # doctest: +SKIP
>>> quant.nncf_int8("model.fp32.onnx", calibration_data, out="model.nncf.xml")  # doctest: +SKIP
"""

from trimkit._lazy import attach

_NAMES = {
    "apply_plan": "trimkit.quant._convert",
    "plan_of": "trimkit.quant._convert",
    "Parity": "trimkit.quant._export",
    "QuantExport": "trimkit.quant._export",
    "check_parity": "trimkit.quant._export",
    "export_qcdq": "trimkit.quant._export",
    "export_qonnx": "trimkit.quant._export",
    "FORMAT_HELP": "trimkit.quant._formats",
    "Format": "trimkit.quant._formats",
    "NAMED_FORMATS": "trimkit.quant._formats",
    "WeightSpec": "trimkit.quant._formats",
    "parse_format": "trimkit.quant._formats",
    "NncfResult": "trimkit.quant._nncf",
    "nncf_available": "trimkit.quant._nncf",
    "nncf_int8": "trimkit.quant._nncf",
    "save_openvino_ir": "trimkit.quant._nncf",
    "load_packed": "trimkit.quant._packed",
    "packed_size": "trimkit.quant._packed",
    "save_packed": "trimkit.quant._packed",
    "LayerPlan": "trimkit.quant._plan",
    "QuantPlan": "trimkit.quant._plan",
    "plan": "trimkit.quant._plan",
    "KEYS": "trimkit.quant._policy",
    "KEYS_HELP": "trimkit.quant._policy",
    "Policy": "trimkit.quant._policy",
    "FORMAT_BY_BACKEND": "trimkit.quant._ptq",
    "PtqResult": "trimkit.quant._ptq",
    "QUANT_FORMATS": "trimkit.quant._ptq",
    "cpu_int8_warning": "trimkit.quant._ptq",
    "ptq_int8": "trimkit.quant._ptq",
    "QatResult": "trimkit.quant._qat",
    "qat": "trimkit.quant._qat",
    "quantize": "trimkit.quant._qat",
    "qonnx_parity": "trimkit.quant._qonnx",
    "qonnx_ready": "trimkit.quant._qonnx",
    "LayerSize": "trimkit.quant._size",
    "SizeReport": "trimkit.quant._size",
    "size_report": "trimkit.quant._size",
    "QuantizeReport": "trimkit.quant._workflow",
    "beside": "trimkit.quant._workflow",
    "qcdq_supported": "trimkit.quant._workflow",
    "run_ptq": "trimkit.quant._workflow",
    "run_qat": "trimkit.quant._workflow",
    "written_files": "trimkit.quant._workflow",
}
__getattr__, __dir__, __all__ = attach(__name__, names=_NAMES)
