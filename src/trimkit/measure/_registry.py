"""The latency backends by name."""

from __future__ import annotations

from trimkit._registry import Registry
from trimkit.measure._backend import Backend
from trimkit.measure._onnxruntime import OnnxRuntimeBackend
from trimkit.measure._openvino import OpenVinoBackend
from trimkit.measure._torch import TorchBackend

BACKENDS: Registry[type[Backend]] = Registry("backend")
for _backend in (OnnxRuntimeBackend, OpenVinoBackend, TorchBackend):
    BACKENDS.register(_backend.name, _backend)


def register_backend(backend: type[Backend], *, replace: bool = False) -> type[Backend]:
    """Make ``backend`` (a :class:`Backend` subclass) known by its ``name``."""
    return BACKENDS.register(backend.name, backend, replace=replace)


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)()
