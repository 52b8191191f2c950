"""Inline SVG charts: lines with points, and horizontal bars.

Charts are drawn here, in Python, so the page shows them with scripting off; each point
and bar carries its figure (``data-value``, ``data-src``) and a ``<title>`` tooltip, and
the page's small script only adds a nicer tooltip and legend toggles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from trimkit.report._markup import Format, esc, general, source_attributes, sum_attributes, value_text
from trimkit.report._source import Ref, is_finite

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D1F", "#444444")
WIDTH, HEIGHT = 640, 300
RIGHT, TOP, BOTTOM = 18, 14, 46
CHAR_WIDTH = 6.4  # of an 11px tick label, to leave the y labels room


@dataclass(frozen=True)
class Axis:
    """An axis's label, the format of its figures in tooltips, ``scale`` for tick labels
    (100 where the values are fractions shown as percentages), and whether it counts
    (epochs: whole-number ticks only)."""

    label: str
    fmt: Format = general
    scale: float = 1.0
    integer: bool = False


@dataclass(frozen=True)
class Point:
    """``x`` (from the log where ``x_ref`` says so) and the figure ``y``."""

    x: float
    y: Ref
    x_ref: Ref | None = None
    label: str = ""


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)
    dashed: bool = False
    strong: bool = False


@dataclass(frozen=True)
class Mark:
    """A reference line: vertical at ``value`` on the x axis, or horizontal on y."""

    axis: str
    value: Ref
    label: str


@dataclass(frozen=True)
class Bar:
    """One bar: the figure ``value``, over a lighter bar of ``whole`` (the sum of
    figures) where given; ``tip`` adds to the tooltip."""

    label: str
    value: Ref
    whole: tuple[Ref, ...] = ()
    tip: str = ""


def ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 times a power of
    ten; whole numbers only where ``integer``)."""
    if high < low:
        low, high = high, low
    if high == low:
        pad = 1.0 if integer else (abs(low) * 0.1 or 1.0)
        low, high = low - pad, high + pad
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw * 0.999)
    if integer:
        step = max(1.0, round(step))
    start = math.floor(low / step + 1e-9) * step
    end = math.ceil(high / step - 1e-9) * step
    return [start + i * step for i in range(int(round((end - start) / step)) + 1)]


def tick_labels(values: Sequence[float], scale: float = 1.0) -> list[str]:
    """Labels for evenly spaced ticks: as many decimals as the step needs, thousands and
    millions shortened (20k, 1.5M), tiny steps in scientific notation."""
    shown = [value * scale for value in values]
    step = abs(shown[1] - shown[0]) if len(shown) > 1 else 1.0
    largest = max(abs(v) for v in shown)
    for threshold, size, prefix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if largest >= threshold:
            return [f"{v / size:.3g}{prefix}" if v else "0" for v in shown]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step else 0
    scaled = step * 10 ** decimals
    if abs(scaled - round(scaled)) > 1e-6:
        decimals += 1
    if decimals > 5:
        return [f"{v:.3g}" for v in shown]
    return [f"{v:,.{decimals}f}" for v in shown]


class _Frame:
    """Maps data to pixels for one chart and draws its grid and axes."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], x_axis: Axis, y_axis: Axis) -> None:
        self.x_ticks = ticks(min(xs), max(xs), integer=x_axis.integer)
        self.y_ticks = ticks(min(ys), max(ys), integer=y_axis.integer)
        self.x_axis, self.y_axis = x_axis, y_axis
        self.y_labels = tick_labels(self.y_ticks, y_axis.scale)
        self.left = 32 + CHAR_WIDTH * max(len(label) for label in self.y_labels)

    def x(self, value: float) -> float:
        low, high = self.x_ticks[0], self.x_ticks[-1]
        return self.left + (value - low) / (high - low) * (WIDTH - self.left - RIGHT)

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        return HEIGHT - BOTTOM - (value - low) / (high - low) * (HEIGHT - TOP - BOTTOM)

    def grid(self) -> str:
        parts = []
        for value, label in zip(self.y_ticks, self.y_labels):
            y = self.y(value)
            parts.append(f'<line class="grid" x1="{self.left:.1f}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                         f'<text class="tick" x="{self.left - 6:.1f}" y="{y + 3.5:.1f}" text-anchor="end">'
                         f'{esc(label)}</text>')
        for value, label in zip(self.x_ticks, tick_labels(self.x_ticks, self.x_axis.scale)):
            x = self.x(value)
            parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
                         f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle">'
                         f'{esc(label)}</text>')
        middle_y = (TOP + HEIGHT - BOTTOM) / 2
        parts.append(f'<text class="axis" x="{(self.left + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}" '
                     f'text-anchor="middle">{esc(self.x_axis.label)}</text>'
                     f'<text class="axis" transform="translate(14 {middle_y:.1f}) rotate(-90)" '
                     f'text-anchor="middle">{esc(self.y_axis.label)}</text>')
        return "".join(parts)


def line_chart(series: Sequence[Series], *, title: str, x_axis: Axis, y_axis: Axis, marks: Sequence[Mark] = (),
               caption: str = "") -> str:
    """Lines with a point at each figure, a legend that toggles lines, and reference marks."""
    drawn = [Series(s.name, [p for p in s.points if is_finite(p.x) and is_finite(p.y.value)], s.dashed, s.strong)
             for s in series]
    drawn = [s for s in drawn if s.points]
    if not drawn:
        return ""
    xs = [p.x for s in drawn for p in s.points] + [m.value.value for m in marks if m.axis == "x"]
    ys = [p.y.value for s in drawn for p in s.points] + [m.value.value for m in marks if m.axis == "y"]
    frame = _Frame(xs, ys, x_axis, y_axis)
    body = [frame.grid()]
    for mark in marks:
        body.append(_mark(frame, mark))
    legend = []
    for index, item in enumerate(drawn):
        colour = PALETTE[index % len(PALETTE)]
        body.append(_series(frame, item, colour, x_axis, y_axis))
        legend.append(f'<li data-series="{esc(item.name)}" tabindex="0"><i style="background:{colour}"></i>'
                      f'{esc(item.name)}</li>')
    return _figure(title, "chart-line", "".join(body), HEIGHT, "".join(legend), caption)


def _series(frame: _Frame, series: Series, colour: str, x_axis: Axis, y_axis: Axis) -> str:
    points = sorted(series.points, key=lambda p: p.x)
    path = " ".join(f"{frame.x(p.x):.1f},{frame.y(p.y.value):.1f}" for p in points)
    style = " dashed" if series.dashed else ""
    style += " strong" if series.strong else ""
    radius = 3.5 if len(points) <= 40 else 2.0
    circles = []
    for point in points:
        tip = (f"{series.name}: {x_axis.label} {x_axis.fmt(point.x)}, {y_axis.label} {y_axis.fmt(point.y.value)}"
               + (f"; {point.label}" if point.label else ""))
        x_source = f" {source_attributes(point.x_ref, 'x-')}" if point.x_ref is not None else ""
        circles.append(f'<circle class="pt" cx="{frame.x(point.x):.1f}" cy="{frame.y(point.y.value):.1f}" '
                       f'r="{radius}" {source_attributes(point.y)}{x_source} data-tip="{esc(tip)}">'
                       f'<title>{esc(tip)}</title></circle>')
    return (f'<g class="series{style}" data-series="{esc(series.name)}" style="--c:{colour}">'
            f'<polyline points="{path}"/>{"".join(circles)}</g>')


def _mark(frame: _Frame, mark: Mark) -> str:
    tip = f"{mark.label}: {value_text(mark.value.value)}"
    attributes = f'{source_attributes(mark.value)} data-tip="{esc(tip)}"'
    if mark.axis == "x":
        x = frame.x(mark.value.value)
        right_half = x > (frame.left + WIDTH - RIGHT) / 2
        label = (f'<text x="{x - 4:.1f}" y="{TOP + 10}" text-anchor="end">' if right_half
                 else f'<text x="{x + 4:.1f}" y="{TOP + 10}">')
        return (f'<g class="mark"><line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" {attributes}>'
                f'<title>{esc(tip)}</title></line>{label}{esc(mark.label)}</text></g>')
    y = frame.y(mark.value.value)
    return (f'<g class="mark"><line x1="{frame.left:.1f}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" {attributes}>'
            f'<title>{esc(tip)}</title></line><text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">'
            f'{esc(mark.label)}</text></g>')


def bar_chart(bars: Sequence[Bar], *, title: str, fmt: Format, value_name: str, whole_name: str = "",
              caption: str = "") -> str:
    """Horizontal bars, one row each; a lighter bar behind shows ``whole`` where given."""
    shown = [b for b in bars if is_finite(b.value.value) and all(is_finite(w.value) for w in b.whole)]
    if not shown:
        return ""
    row, label_width = 24, min(230, 16 + 6.6 * max(len(b.label) for b in shown))
    left, right, top = label_width, 96, 8
    height = top + row * len(shown) + 8
    largest = max([b.value.value for b in shown] + [sum(w.value for w in b.whole) for b in shown if b.whole])
    scale = (WIDTH - left - right) / largest if largest > 0 else 0.0
    parts = []
    for index, bar in enumerate(shown):
        y = top + index * row
        name = bar.label if len(bar.label) <= 34 else bar.label[:15] + "…" + bar.label[-16:]
        parts.append(f'<text class="tick" x="{left - 8:.1f}" y="{y + 15}" text-anchor="end">{esc(name)}'
                     f'<title>{esc(bar.label)}</title></text>')
        value = bar.value.value
        tip = f"{bar.label}: {value_name} {fmt(value)}"
        end_text = fmt(value)
        if bar.whole:
            whole = sum(w.value for w in bar.whole)
            tip += f" of {fmt(whole)} {whole_name}".rstrip()
            end_text = f"{fmt(value)} / {fmt(whole)}"
            parts.append(f'<rect class="whole" x="{left:.1f}" y="{y + 3}" width="{max(whole * scale, 1):.1f}" '
                         f'height="{row - 6}" {sum_attributes(bar.whole)} data-tip="{esc(tip)}">'
                         f'<title>{esc(tip)}</title></rect>')
        if bar.tip:
            tip += f" ({bar.tip})"
        parts.append(f'<rect class="bar" x="{left:.1f}" y="{y + 3}" width="{max(value * scale, 1):.1f}" '
                     f'height="{row - 6}" {source_attributes(bar.value)} data-tip="{esc(tip)}">'
                     f'<title>{esc(tip)}</title></rect>')
        end = left + max(value, sum(w.value for w in bar.whole)) * scale
        parts.append(f'<text class="tick" x="{end + 6:.1f}" y="{y + 15}">{esc(end_text)}</text>')
    legend = ""
    if whole_name:
        legend = (f'<li class="static"><i class="bar-key"></i>{esc(value_name)}</li>'
                  f'<li class="static"><i class="whole-key"></i>{esc(whole_name)}</li>')
    return _figure(title, "chart-bar", "".join(parts), height, legend, caption)


def _figure(title: str, kind: str, body: str, height: float, legend: str, caption: str) -> str:
    note = f"<p>{caption}</p>" if caption else ""
    return (f'<figure class="chart"><figcaption><b>{esc(title)}</b>{note}</figcaption>'
            f'<svg class="{kind}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{esc(title)}">'
            f'{body}</svg>{f"<ul class=legend>{legend}</ul>" if legend else ""}</figure>')
