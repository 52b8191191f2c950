"""One registry helper for every registry trimkit keeps: stages, pruning criteria, zoo
models, latency backends, model-file sections and task kinds.

A registry maps names to registered objects; what callers need to know about an entry
lives on the object itself (a criterion says whether it needs data, a stage which task
kinds it supports, a backend what model format it runs), never in a side table. All of
them treat a name the same way: registering a second, different object under a taken
name is an error unless ``replace=True``, and looking up an unknown name is one line
naming the closest known one and all of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from trimkit.errors import TrimkitError

T = TypeVar("T")


def closest(name: object, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order.

    ``kind`` words the errors ("unknown stage 'prnue' (did you mean 'prune'?)"); ``load``
    is called once, before the first lookup, to register the built-in entries where their
    modules are heavy to import.
    """

    def __init__(self, kind: str, plural: str | None = None, *, load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, T] = {}
        self._load = load

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name`` and return it. The same object again is a no-op
        (a module imported twice); another object under a taken name needs ``replace``."""
        existing = self._entries.get(name)
        if existing is not None and existing is not entry and not replace:
            raise TrimkitError(f"a {self.kind} named {name!r} is registered already; choose another name, or "
                               "pass replace=True to replace it")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self._ensure_loaded()
        if name not in self._entries:
            raise TrimkitError(f"unknown {self.kind} {name!r}{closest(name, self._entries)}; {self.plural}: "
                               f"{', '.join(self._entries) or 'none'}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        self._ensure_loaded()
        return tuple(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._ensure_loaded()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _ensure_loaded(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            load()
