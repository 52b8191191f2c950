"""trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought.

``import trimkit`` imports neither torch nor any subpackage; ``trimkit.models``,
``trimkit.prune``, ... and ``trimkit.load`` load what they need on first use.
"""

from importlib.metadata import PackageNotFoundError, version

from trimkit._lazy import attach
from trimkit.errors import TrimkitError

try:
    __version__ = version("trimkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

SUBPACKAGES = ("data", "deploy", "distill", "export", "measure", "models", "pipeline", "prune", "quant", "record",
               "report", "runs", "search", "tasks", "tracking", "train")
_MODEL_FILE_API = dict.fromkeys(("load", "load_weights", "read_header", "save"), "trimkit._model_file")

__getattr__, __dir__, _lazy_names = attach(__name__, SUBPACKAGES, _MODEL_FILE_API)
__all__ = ["TrimkitError", "__version__", *_lazy_names]
