"""The built-in stages; importing this package registers them."""

from trimkit.pipeline.stages import (compare, deploy, distill, export, measure, prune, prune_unstructured, quantize,
                                     track, train)

__all__ = ["compare", "deploy", "distill", "export", "measure", "prune", "prune_unstructured", "quantize", "track",
           "train"]
