"""Options objects: the one validation of every seam's settings.

Each seam declares its options once as a pydantic model derived from :class:`Options`
(a stage's options, a structured cut, a training run, a timed runtime); the Python API,
the command line and recipes all build that model, so each rule is checked in one place
and every error is worded the same way: ``path: what is wrong; the fix``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from trimkit._registry import closest
from trimkit.errors import TrimkitError

# pydantic puts the member of a union that failed into the location (``ratio.float``); not a key
_UNION_MEMBERS = ("float", "int", "str", "bool")
# a model's own check names the key it is about first: "policies[1]: overlaps 'cut' in epoch 2"
_NAMED_KEY = re.compile(r"([A-Za-z_]\w*)((?:\[\d+\]|\.[\w-]+)*): ")

OptionsT = TypeVar("OptionsT", bound="Options")


class Options(BaseModel):
    """Base of every options model: unknown keys are errors, values are checked, also
    when assigned later."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def of(cls: type[OptionsT], options: OptionsT | None = None, /, **values: Any) -> OptionsT:
        """``options`` (or the defaults, or a mapping of fields) with ``values`` set,
        validated, as a ``cls``; a bad value is a :class:`~trimkit.errors.TrimkitError`
        naming the key: ``ratio: 1.5 is not in [0, 1)``."""
        if options is not None and not values and type(options) is cls:
            return options
        if isinstance(options, Mapping):
            given = dict(options)
        else:  # a subclass's own keys (a stage's) are left out: ``cls`` is built from its fields
            given = {name: getattr(options, name) for name in cls.model_fields} if options is not None else {}
        data = {**given, **values}
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise TrimkitError(describe(error, "", cls)) from None


def describe(error: ValidationError, prefix: str, model: type[BaseModel]) -> str:
    """The first problem of a validation error as ``path: what is wrong; the fix``."""
    problems = error.errors()
    first = problems[0]
    loc = [part for part in first["loc"]
           if not (isinstance(part, str) and (("[" in part and "]" in part) or part in _UNION_MEMBERS))]
    path = prefix + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    named = _NAMED_KEY.match(message) if kind == "value_error" else None
    if named and named.group(1) in fields_at(model, loc):
        path += "." + named.group(0).removesuffix(": ")
        message = message[named.end():]
    path = path.lstrip(".") or "recipe"
    if kind == "extra_forbidden":
        choices = fields_at(model, loc[:-1])
        message = f"unknown key {loc[-1]!r}{closest(str(loc[-1]), choices)}"
        if choices:
            message += f"; valid keys: {', '.join(choices)}"
        path = path.rsplit(".", 1)[0] if "." in path else prefix or "recipe"
    elif kind == "missing":
        message = "missing; this key is required"
    elif kind not in ("value_error", "assertion_error") and "input" in first:
        message = f"{first['input']!r}: {message[0].lower()}{message[1:]}"
    more = len(problems) - 1
    return f"{path}: {message}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys the options model accepts at ``loc`` (a pydantic error location)."""
    current: Any = model
    key_next = False  # the part after a dict-valued field is a key of the dict (pruners.NAME)
    for part in loc:
        if isinstance(part, int) or key_next:
            key_next = False
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        key_next = get_origin(field.annotation) is dict
        current = _model_in(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()) or ():
        found = _model_in(argument)
        if found is not None:
            return found
    return None
