"""The built-in stages; importing this package registers them."""

from trimkit.pipeline.stages import compare, export, measure, prune, prune_unstructured, quantize, train

__all__ = ["compare", "export", "measure", "prune", "prune_unstructured", "quantize", "train"]
