"""trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trimkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from trimkit._model_file import load, load_weights, read_header, save
from trimkit.errors import TrimkitError

__all__ = ["TrimkitError", "__version__", "load", "load_weights", "read_header", "save"]
