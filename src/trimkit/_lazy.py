"""Lazy package attributes, as SciPy loads its subpackages: ``import trimkit`` is cheap,
and ``trimkit.prune`` (or ``quant.qat``) imports what it needs on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def attach(package: str, submodules: Iterable[str] = (), names: Mapping[str, str] | None = None
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``: each of ``submodules``
    is imported when first read, and each name of ``names`` (name -> ``module``, or
    ``module:attribute`` for a name its module calls otherwise) is read from its module
    when first used."""
    submodules = tuple(submodules)
    names = dict(names or {})
    public = sorted({*submodules, *names})

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            module, _, attribute = names[name].partition(":")
            return getattr(importlib.import_module(module, package), attribute or name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public
