"""Number formats for weights and activations, and how a weight format is scaled.

A format is ``float32`` (not quantised), ``intN`` for 2 <= N <= 32 (symmetric,
narrow range for weights: -(2^(N-1)-1) .. 2^(N-1)-1), ``ternary`` ({-1, 0, +1} times
a scale, 2 bits stored) or ``binary`` ({-1, +1} times a scale, 1 bit stored).

A weight format may carry modifiers after colons, in any order:
``int4:tensor``, ``binary:learned:channel``.

- granularity: ``channel`` (one scale per output channel, the default) or ``tensor``;
- scale: ``stats`` (recomputed from the weights at every step: max |w| for integers,
  mean |w| for binary, 1.4 x mean |w| for ternary), ``learned`` (a parameter
  initialised from those statistics and trained by gradient descent), or ``const``
  (Brevitas' constant scale of 0.1, per tensor, binary and ternary only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trimkit.errors import TrimkitError

GRANULARITIES = ("channel", "tensor")
SCALINGS = ("stats", "learned", "const")
NAMED_FORMATS = ("float32", "int16", "int8", "int4", "int2", "ternary", "binary")
FORMAT_HELP = "float32, int2 ... int32 (e.g. int16, int8, int4), ternary, binary"
_INT = re.compile(r"int(\d+)")


@dataclass(frozen=True)
class Format:
    """A number format: ``kind`` is float, int, ternary or binary; ``bits`` per value stored."""

    name: str
    kind: str
    bits: int

    @property
    def quantized(self) -> bool:
        return self.kind != "float"

    def __str__(self) -> str:
        return self.name


FLOAT32 = Format("float32", "float", 32)


def parse_format(text: str, context: str = "") -> Format:
    """``"int4"`` -> Format("int4", "int", 4); a clear error for anything else."""
    name = text.strip().lower()
    where = f" in {context!r}" if context else ""
    if name in ("float32", "fp32", "float"):
        return FLOAT32
    if name == "ternary":
        return Format("ternary", "ternary", 2)
    if name == "binary":
        return Format("binary", "binary", 1)
    match = _INT.fullmatch(name)
    if match and 2 <= int(match.group(1)) <= 32:
        return Format(name, "int", int(match.group(1)))
    hint = "; for 1 bit use binary" if name == "int1" else ""
    raise TrimkitError(f"unknown format {text!r}{where}; formats: {FORMAT_HELP}{hint}")


@dataclass(frozen=True)
class WeightSpec:
    """How one layer's weights are quantised: format, scale granularity, scale kind."""

    format: Format = FLOAT32
    granularity: str = "channel"
    scaling: str = "stats"

    def __str__(self) -> str:
        text = self.format.name
        if self.format.quantized and self.granularity != "channel" and self.scaling != "const":
            text += f":{self.granularity}"
        if self.format.quantized and self.scaling != "stats":
            text += f":{self.scaling}"
        return text


def parse_weight_spec(text: str, granularity: str = "channel", context: str = "") -> WeightSpec:
    """``"binary:learned:tensor"`` -> WeightSpec; ``granularity`` is the default when unnamed."""
    name, *modifiers = text.strip().split(":")
    fmt = parse_format(name, context)
    scaling = "stats"
    for modifier in (m.strip().lower() for m in modifiers):
        if modifier in GRANULARITIES:
            granularity = modifier
        elif modifier in SCALINGS:
            scaling = modifier
        else:
            raise TrimkitError(
                f"unknown modifier {modifier!r} in {context or text!r}; modifiers: "
                f"{', '.join(GRANULARITIES)} (scale granularity), {', '.join(SCALINGS)} (how the scale is set)"
            )
    if scaling == "const" and fmt.kind not in ("binary", "ternary"):
        raise TrimkitError(f"{context or text!r}: a constant scale is for binary and ternary only; "
                           "use stats or learned")
    if scaling == "const" and granularity == "channel" and "channel" in modifiers:
        raise TrimkitError(f"{context or text!r}: a constant scale is one per tensor; drop ':channel'")
    if scaling == "const":
        granularity = "tensor"
    return WeightSpec(fmt, granularity, scaling)


def parse_granularity(text: str) -> str:
    value = text.strip().lower()
    if value not in GRANULARITIES:
        raise TrimkitError(f"unknown granularity {text!r}; choose one of: {', '.join(GRANULARITIES)}")
    return value
