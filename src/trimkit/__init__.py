"""trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("trimkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from trimkit.errors import TrimkitError

_MODEL_FILE_API = ("load", "load_weights", "read_header", "save")


def __getattr__(name: str) -> Any:
    """``trimkit.load`` and friends import torch on first use, so that ``import trimkit``
    (and ``trimkit --help``) stays fast."""
    if name in _MODEL_FILE_API:
        from trimkit import _model_file

        return getattr(_model_file, name)
    raise AttributeError(f"module 'trimkit' has no attribute {name!r}")


__all__ = ["TrimkitError", "__version__", "load", "load_weights", "read_header", "save"]
