"""HTML pieces the sections share: figures that carry their source, tables, sections.

A figure is a ``<span class="num">`` whose text is formatted for reading and whose
``data-value`` holds the number at full precision, with where it came from:
``data-src`` (a path into the log), or ``data-ratio`` / ``data-diff`` / ``data-sum``
(two or more paths) for the few figures the report derives.
"""

from __future__ import annotations

import html
import json
import math
from typing import Callable, Iterable, Sequence

from trimkit.report._source import Ref, is_finite, is_number

Format = Callable[[float], str]
MISSING = '<span class="none" title="not in the log">–</span>'


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def value_text(value: float) -> str:
    """The number as the log holds it: ``repr`` round-trips a float exactly."""
    return str(value) if isinstance(value, int) else repr(float(value))


def count(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def byte_count(value: float) -> str:
    return f"{count(value)} B"


def millis(value: float) -> str:
    return f"{value:.3f} ms" if abs(value) >= 0.01 else f"{value:.3g} ms"


def seconds(value: float) -> str:
    return f"{value:.1f} s" if abs(value) >= 1 else f"{value:.2f} s"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def times(value: float) -> str:
    return f"×{value:.2f}" if abs(value) >= 0.1 else f"×{value:.3g}"


def percent_of_one(value: float) -> str:
    """A fraction (0.59) shown as a percentage (59.0 %)."""
    return f"{100 * value:.1f} %"


def general(value: float) -> str:
    return count(value) if isinstance(value, int) else f"{value:.4g}"


def metric_format(name: str) -> Format:
    """Losses keep four decimals; accuracies and other scores two, as the CLI prints them."""
    return (lambda v: f"{v:.4f}") if "loss" in name else (lambda v: f"{v:.2f}")


def signed(fmt: Format) -> Format:
    return lambda value: ("+" if value > 0 else "") + fmt(value)


def _span(value: float, shown: str, source: tuple[str, str], title: str, cls: str = "") -> str:
    attribute, data = source
    if not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("∞" if value > 0 else "−∞")
    return (f'<span class="num{" " + cls if cls else ""}" data-value="{esc(value_text(value))}" '
            f'{attribute}="{esc(data)}" title="{esc(title)}">{esc(shown)}</span>')


def _paths(*refs: Ref) -> str:
    return json.dumps([list(ref.path) for ref in refs])


def figure(ref: Ref | None, fmt: Format = general, cls: str = "") -> str:
    """The figure at ``ref``, or a dash where the log has none."""
    if ref is None or not is_number(ref.value):
        return MISSING
    return _span(ref.value, fmt(ref.value), ("data-src", json.dumps(list(ref.path))), value_text(ref.value), cls)


def ratio(after: Ref | None, before: Ref | None, fmt: Format = times) -> str:
    """after / before, where both are figures and before is not zero."""
    if after is None or before is None or not is_finite(after.value) or not is_finite(before.value) \
            or before.value == 0:
        return MISSING
    value = after.value / before.value
    title = f"{value_text(after.value)} / {value_text(before.value)} = {value_text(value)}"
    return _span(value, fmt(value), ("data-ratio", _paths(after, before)), title, "ratio")


def difference(after: Ref | None, before: Ref | None, fmt: Format = general) -> str:
    """after − before, where both are figures."""
    if after is None or before is None or not is_finite(after.value) or not is_finite(before.value):
        return MISSING
    value = after.value - before.value
    title = f"{value_text(after.value)} − {value_text(before.value)} = {value_text(value)}"
    return _span(value, signed(fmt)(value), ("data-diff", _paths(after, before)), title, "diff")


def total(refs: Sequence[Ref], fmt: Format = general) -> str:
    """The sum of figures (a layer's channels before a cut: kept + removed)."""
    if not refs or not all(is_finite(ref.value) for ref in refs):
        return MISSING
    value = sum(ref.value for ref in refs)
    return _span(value, fmt(value), ("data-sum", _paths(*refs)), " + ".join(value_text(r.value) for r in refs))


def source_attributes(ref: Ref, prefix: str = "") -> str:
    """``data-value``/``data-src`` for an element that is not a span (a chart's point)."""
    return (f'data-{prefix}value="{esc(value_text(ref.value))}" '
            f'data-{prefix}src="{esc(json.dumps(list(ref.path)))}"')


def sum_attributes(refs: Sequence[Ref]) -> str:
    """``data-value``/``data-sum`` for an element showing the sum of figures."""
    value = sum(ref.value for ref in refs)
    return f'data-value="{esc(value_text(value))}" data-sum="{esc(_paths(*refs))}"'


def text(ref: Ref | None) -> str:
    """A word from the log (a backend, a split): escaped, or a dash."""
    if ref is None or ref.value is None or isinstance(ref.value, (dict, list)):
        return MISSING
    if isinstance(ref.value, bool):
        return "yes" if ref.value else "no"
    return esc(ref.value)


def table(head: Sequence[str], rows: Iterable[Sequence[str]], align: str = "", cls: str = "") -> str:
    """A table of HTML cells; ``align`` gives each column's alignment (``l`` or ``r``)."""
    def cell(tag: str, index: int, content: str) -> str:
        right = index < len(align) and align[index] == "r"
        return f'<{tag}{" class=r" if right else ""}>{content}</{tag}>'

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="{esc(cls)}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def long_table(summary: str, listing: str, rows: int, limit: int = 24) -> str:
    """A table shown as is, or folded away under ``summary`` where it has more than
    ``limit`` rows (its chart beside it says the same at a glance)."""
    return listing if rows <= limit else f"<details><summary>{esc(summary)}</summary>{listing}</details>"


def section(anchor: str, title: str, body: str, lead: str = "") -> str:
    intro = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{intro}{body}</section>'


def note(content: str, kind: str = "note") -> str:
    """A short remark; ``kind`` is ``note`` or ``warn``."""
    return f'<p class="{esc(kind)}">{content}</p>'

