"""Fast, repeatable evaluation for exploration lives with the tasks; pruning re-exports it."""

from trimkit.tasks import CachedEvaluation

__all__ = ["CachedEvaluation"]
