"""The latency backends by name."""

from __future__ import annotations

import difflib

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
        close = difflib.get_close_matches(name, list(BACKENDS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TrimkitError(f"unknown backend {name!r}{hint}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]()
