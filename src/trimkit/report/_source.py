"""A value from the run log together with where it sits in the log.

Every figure the report shows is drawn from a :class:`Ref`, so the page can carry the
figure's path (record position, then keys) beside it, and a reader (or a test) can look
the figure up in ``log.jsonl`` and find the same number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Ref:
    """``value`` found at ``path`` in the log: ``(record position, key, key, ...)``."""

    value: Any
    path: Path

    def get(self, key: Any) -> Ref | None:
        """The child at ``key`` (a dict key or a list index); None where there is none."""
        if isinstance(self.value, dict) and key in self.value:
            return Ref(self.value[key], self.path + (key,))
        if isinstance(self.value, list) and isinstance(key, int) and -len(self.value) <= key < len(self.value):
            return Ref(self.value[key], self.path + (key % len(self.value),))
        return None

    def at(self, *keys: Any) -> Ref | None:
        """The descendant along ``keys``; None where any step is missing."""
        node: Ref | None = self
        for key in keys:
            if node is None:
                return None
            node = node.get(key)
        return node

    def items(self) -> Iterator[tuple[Any, Ref]]:
        """(key, child) of a dict, (index, child) of a list; nothing for a scalar."""
        if isinstance(self.value, dict):
            for key in self.value:
                yield key, Ref(self.value[key], self.path + (key,))
        elif isinstance(self.value, list):
            for index, item in enumerate(self.value):
                yield index, Ref(item, self.path + (index,))

    def children(self) -> list[Ref]:
        return [child for _, child in self.items()]

    @property
    def is_number(self) -> bool:
        return is_number(self.value)

    @property
    def is_dict(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)


def is_number(value: Any) -> bool:
    """An int or float figure (a bool is not a figure)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)

