"""Export: ``onnx`` writes a model as ONNX, parity-checked against PyTorch."""

from trimkit.export._onnx import MAX_OPSET, MIN_OPSET, ExportResult, ParityError, read_metadata, read_onnx
from trimkit.export._onnx import export_onnx as onnx
from trimkit.export._parity import PARITY_RTOL, Parity, parity

__all__ = ["MAX_OPSET", "MIN_OPSET", "PARITY_RTOL", "ExportResult", "Parity", "ParityError", "onnx", "parity",
           "read_metadata", "read_onnx"]
