"""Export: ``onnx`` writes a model as ONNX, parity-checked against PyTorch."""

from trimkit._lazy import attach

_NAMES = {
    "ExportResult": "trimkit.export._onnx",
    "MAX_OPSET": "trimkit.export._onnx",
    "MIN_OPSET": "trimkit.export._onnx",
    "ParityError": "trimkit.export._onnx",
    "read_metadata": "trimkit.export._onnx",
    "read_onnx": "trimkit.export._onnx",
    "onnx": "trimkit.export._onnx:export_onnx",
    "PARITY_RTOL": "trimkit.export._parity",
    "Parity": "trimkit.export._parity",
    "parity": "trimkit.export._parity",
}
__getattr__, __dir__, __all__ = attach(__name__, names=_NAMES)
