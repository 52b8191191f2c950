"""``Policy``: which number format each layer's weights and activations get.

A policy is written as comma-separated entries, or given as a dict of the same keys:

- ``first=F``, ``hidden=F``, ``last=F``: weights of the first weight layer(s), of the
  layers in between, and of the last weight layer(s), in execution order (see
  :func:`trimkit.quant.plan`);
- ``act=F``: activations, i.e. the input of every quantised weight layer except the
  first, wherever the activation was computed (an ``nn.ReLU`` module or ``F.relu``);
- ``input=F``: the model input as the first layers see it; by default it follows
  ``act`` when that has 8 bits or more, is ``int8`` for narrower activation formats
  (an image quantised to 1 or 2 bits loses the task), and float32 when ``act`` is;
- ``granularity=channel|tensor``: default scale granularity of weight formats;
- ``PATTERN=F``: weights of the layers whose name matches a glob pattern
  (``layer3.*=int8``); patterns override the roles, and a later pattern wins;
- a bare format (``int8``) sets ``first``, ``hidden``, ``last`` and ``act`` at once;
  other entries override it.

Unnamed roles stay float32. Weight formats take modifiers (``binary:learned:tensor``,
see :mod:`trimkit.quant._formats`); activation formats do not.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trimkit.errors import TrimkitError
from trimkit.quant._formats import (FLOAT32, FORMAT_HELP, Format, WeightSpec, parse_format, parse_granularity,
                                    parse_weight_spec)

ROLES = ("first", "hidden", "last")
KEYS = (*ROLES, "act", "input", "granularity")
KEYS_HELP = f"{', '.join(KEYS)}, or a glob pattern over layer names (layer3.*=int8)"
_PATTERN_CHARACTERS = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+")
_FLOAT_WEIGHTS = WeightSpec()  # frozen: one default shared by every role


@dataclass(frozen=True)
class Policy:
    """Per-layer number formats; build with :meth:`parse` from a string or a dict."""

    first: WeightSpec = _FLOAT_WEIGHTS
    hidden: WeightSpec = _FLOAT_WEIGHTS
    last: WeightSpec = _FLOAT_WEIGHTS
    act: Format = FLOAT32
    input: Format | None = None
    patterns: tuple[tuple[str, WeightSpec], ...] = field(default=())

    @classmethod
    def parse(cls, value: PolicyLike) -> Policy:
        """A Policy from ``"first=int16,hidden=int4,last=int8,act=int8"``, ``"int8"``,
        a dict of the same keys (patterns may sit under ``"layers"``), or a Policy."""
        if isinstance(value, Policy):
            return value
        if isinstance(value, str):
            entries = _split(value)
        elif isinstance(value, Mapping):
            entries = _dict_entries(value)
        else:
            raise TrimkitError(f"a policy is a string or a dict, got {type(value).__name__}")
        return _build(entries, source=str(value))

    @property
    def input_format(self) -> Format:
        if self.input is not None:
            return self.input
        if not self.act.quantized:
            return FLOAT32
        if self.act.kind == "int" and self.act.bits >= 8:
            return self.act
        return parse_format("int8")

    def weight_spec(self, layer_name: str, role: str) -> WeightSpec:
        """The format for one layer: the last matching pattern, else its role's."""
        spec = getattr(self, role)
        for pattern, pattern_spec in self.patterns:
            if fnmatch.fnmatchcase(layer_name, pattern):
                spec = pattern_spec
        return spec

    @property
    def quantizes_anything(self) -> bool:
        specs = (self.first, self.hidden, self.last, *(spec for _, spec in self.patterns))
        return self.act.quantized or any(spec.format.quantized for spec in specs)

    def max_bits(self) -> int:
        """The widest quantised format used (0 when nothing is quantised)."""
        specs = (self.first, self.hidden, self.last, *(spec for _, spec in self.patterns))
        formats = [spec.format for spec in specs] + [self.act, self.input_format]
        return max((f.bits for f in formats if f.quantized), default=0)

    def __str__(self) -> str:
        roles = [str(self.first), str(self.hidden), str(self.last)]
        if len(set(roles)) == 1 and roles[0] == self.act.name and ":" not in roles[0]:
            parts = [roles[0]]
        else:
            parts = [f"{role}={text}" for role, text in zip(ROLES, roles)] + [f"act={self.act}"]
        if self.input is not None:
            parts.append(f"input={self.input}")
        parts += [f"{pattern}={spec}" for pattern, spec in self.patterns]
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {role: str(getattr(self, role)) for role in ROLES}
        record["act"] = str(self.act)
        record["input"] = str(self.input_format)
        record["layers"] = {pattern: str(spec) for pattern, spec in self.patterns}
        return record


PolicyLike = str | Mapping[str, Any] | Policy


def _split(text: str) -> list[tuple[str | None, str]]:
    if not text.strip():
        raise TrimkitError(f"empty policy; write e.g. 'int8' or 'first=int16,hidden=int4,last=int8,act=int8' "
                           f"(keys: {KEYS_HELP}; formats: {FORMAT_HELP})")
    entries: list[tuple[str | None, str]] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            raise TrimkitError(f"empty entry in policy {text!r}; separate entries by single commas")
        key, sep, value = entry.partition("=")
        if sep and not value.strip():
            raise TrimkitError(f"policy entry {entry!r} has no format; formats: {FORMAT_HELP}")
        entries.append((key.strip(), value.strip()) if sep else (None, entry))
    return entries


def _dict_entries(mapping: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    entries: list[tuple[str | None, str]] = []
    for key, value in mapping.items():
        if key == "layers" and isinstance(value, Mapping):
            entries += [(str(k), str(v)) for k, v in value.items()]
        elif key in ("default", "all"):
            entries.append((None, str(value)))
        else:
            entries.append((str(key), str(value)))
    return entries


def _build(entries: list[tuple[str | None, str]], source: str) -> Policy:
    bare = [value for key, value in entries if key is None]
    if len(bare) > 1:
        raise TrimkitError(f"policy {source!r} has {len(bare)} bare formats ({', '.join(bare)}); give at most one")
    keys = [key for key, _ in entries if key is not None]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise TrimkitError(f"policy {source!r} gives {', '.join(repeated)} more than once; give each key once")
    granularity = "channel"
    for key, value in entries:
        if key == "granularity":
            granularity = parse_granularity(value)
    policy = Policy()
    if bare:
        spec = parse_weight_spec(bare[0], granularity, bare[0])
        policy = Policy(first=spec, hidden=spec, last=spec, act=spec.format)
    patterns: list[tuple[str, WeightSpec]] = []
    for key, value in entries:
        context = f"{key}={value}"
        if key is None or key == "granularity":
            continue
        if key in ROLES:
            policy = replace(policy, **{key: parse_weight_spec(value, granularity, context)})
        elif key in ("act", "input"):
            policy = replace(policy, **{key: _activation_format(value, key, context)})
        elif _PATTERN_CHARACTERS.fullmatch(key) and not _looks_like_a_typo(key):
            patterns.append((key, parse_weight_spec(value, granularity, context)))
        else:
            raise TrimkitError(f"bad policy key {key!r}; keys: {KEYS_HELP}")
    return replace(policy, patterns=tuple(patterns))


def _looks_like_a_typo(key: str) -> bool:
    """``frist`` or ``hiden`` is a misspelt key, not a layer name; names with dots or
    glob characters are always patterns."""
    return not re.search(r"[.*?\[]", key) and bool(difflib.get_close_matches(key, KEYS, n=1, cutoff=0.75))


def _activation_format(value: str, key: str, context: str) -> Format:
    if ":" in value:
        raise TrimkitError(f"{context!r}: activation formats take no modifiers (one scale per tensor, set by "
                           "calibration and learned in QAT)")
    fmt = parse_format(value, context)
    if key == "input" and fmt.kind in ("binary", "ternary"):
        raise TrimkitError(f"{context!r}: the model input must be float32 or an integer format")
    return fmt


def check_patterns(policy: Policy, layer_names: list[str], model_label: str) -> None:
    """Every pattern must match a weight layer: a typo such as ``frist=int8`` is an error."""
    for pattern, _ in policy.patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in layer_names):
            shown = ", ".join(layer_names[:8]) + (", ..." if len(layer_names) > 8 else "")
            raise TrimkitError(
                f"policy key {pattern!r} is neither a known key nor a pattern matching a weight layer of "
                f"{model_label}; keys: {', '.join(KEYS)}; layers: {shown}"
            )
