"""Hybrid objectives written in the recipe: arithmetic on named measurement fields.

``top1 - 20 * latency_ms / baseline_latency_ms`` is parsed with :mod:`ast` and walked
here; nothing is handed to ``eval``. Allowed: numbers, the named fields, ``+ - * / **``,
unary minus, parentheses, and the functions ``min``, ``max``, ``abs``, ``log``, ``sqrt``.
Anything else (attributes, subscripts, other calls, strings, comprehensions, lambdas) is
refused when the recipe is read, with the offending piece named.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Collection, Mapping
from typing import Callable

from trimkit.errors import TrimkitError

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: math.pow(a, b),
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}
_FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs, "log": math.log, "sqrt": math.sqrt}


class Expression:
    """A checked arithmetic expression over named fields; call it with their values."""

    def __init__(self, text: str, fields: Collection[str]) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            raise TrimkitError(f"{text!r} is not an arithmetic expression ({error.msg}); write e.g. "
                               "'top1 - 20 * latency_ms / baseline_latency_ms'") from None
        self._tree = tree.body
        self.names = sorted(_check(self._tree, set(fields), text))

    def __call__(self, values: Mapping[str, float | None]) -> float:
        """The value; ``nan`` where a field is missing or the arithmetic fails (a zero
        division, an overflow), which Optuna records as a failed trial."""
        try:
            return float(_evaluate(self._tree, values))
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            return float("nan")


def _check(node: ast.AST, fields: set[str], text: str) -> set[str]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise TrimkitError(f"{text!r}: {node.value!r} is not a number; only numbers and measurement fields "
                               "are allowed")
        return set()
    if isinstance(node, ast.Name):
        if node.id not in fields:
            raise TrimkitError(f"{text!r}: no measurement named {node.id!r}; known: {', '.join(sorted(fields))}")
        return {node.id}
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _check(node.left, fields, text) | _check(node.right, fields, text)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(node.operand, fields, text)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords and node.args):
        return set().union(*(_check(argument, fields, text) for argument in node.args))
    piece = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
    raise TrimkitError(f"{text!r}: {piece!r} is not allowed; use numbers, measurement fields, + - * / **, "
                       f"parentheses and {', '.join(_FUNCTIONS)}")


def _evaluate(node: ast.AST, values: Mapping[str, float | None]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        value = values.get(node.id)
        if value is None:
            raise ValueError(node.id)
        return float(value)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _FUNCTIONS[node.func.id](*(_evaluate(argument, values) for argument in node.args))
