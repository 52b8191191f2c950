"""The latency backends by name."""

from __future__ import annotations

from trimkit.errors import TrimkitError
from trimkit.measure._backend import Backend
from trimkit.measure._onnxruntime import OnnxRuntimeBackend
from trimkit.measure._openvino import OpenVinoBackend
from trimkit.measure._torch import TorchBackend

BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (OnnxRuntimeBackend, OpenVinoBackend, TorchBackend)
}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise TrimkitError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]()
