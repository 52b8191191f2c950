"""A deployment in words and as a table: what was chosen, how much faster or slower it
is than ONNX Runtime fp32 and the baseline (as measured; a slower model is never called
an improvement), what it cost in the metric, and every candidate's row."""

from __future__ import annotations

from trimkit.deploy._choose import Deployment
from trimkit.deploy._decide import Decision
from trimkit.record import metric_title

TABLE_HEAD = ("candidate", "computes in", "p50 ms", "p90 ms", "img/s", "× ORT fp32", "metric", "drop", "why")


def speed(ratio: float) -> str:
    """A measured latency ratio (reference over this) in words: ``2.10x faster`` or
    ``1.25x slower``."""
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def computes_in(precision: str, reported: str | None) -> str:
    """What a candidate computes in: the precision the runtime reports for float layers,
    and for INT8 that the quantised layers run in int8 beside them."""
    reported = reported or "?"
    return f"int8 + {reported}" if precision == "int8" else reported


def summary_lines(found: Deployment) -> list[str]:
    """What was chosen, its speed against ONNX Runtime fp32 of the same model and against
    the baseline (if one was timed), and the metric's change."""
    decision = found.decision
    chosen = decision.chosen
    latency = chosen.outcome.latency
    computes = computes_in(chosen.candidate.precision, latency.precision)
    lines = [f"chosen: {chosen.candidate.label} (computes in {computes}), p50 {latency.latency_ms:.3f} ms at "
             f"batch {latency.batch_size}, {figure(decision.metric, chosen.outcome.metric)} (drop "
             f"{chosen.drop:+.2f} points against ONNX Runtime fp32; {decision.max_drop:g} allowed)"]
    if chosen.speedup is not None:
        reference = decision.reference_latency
        lines.append(f"against ONNX Runtime fp32 of the same model ({_threads(reference.threads)}, p50 "
                     f"{reference.latency_ms:.3f} ms): {speed(chosen.speedup)}")
    if found.baseline is not None:
        base = found.baseline
        lines.append(f"against {base.label} (ONNX Runtime fp32, {_threads(base.latency.threads)}, p50 "
                     f"{base.latency.latency_ms:.3f} ms): {speed(base.speedup)}; "
                     f"{figure(decision.metric, base.metric)} -> {figure(decision.metric, chosen.outcome.metric)} "
                     f"({base.change:+.2f} points)")
    return lines


def figure(metric: str, value: float) -> str:
    """``top-1 81.20 %``: a metric by its title, the unit after the value."""
    title = metric_title(metric)
    return f"{title.removesuffix(' %')} {value:.2f} %" if title.endswith(" %") else f"{title} {value:.4g}"


def _threads(count: int) -> str:
    return f"{count} thread{'' if count == 1 else 's'}"


def table_rows(decision: Decision) -> list[tuple[str, ...]]:
    """The candidates' rows as text, in :data:`TABLE_HEAD`'s columns, fastest first."""
    rows = []
    for row in decision.rows:
        latency = row.outcome.latency
        cells = (("* " if row.chosen else "") + row.candidate.label,
                 "-" if latency is None else computes_in(row.candidate.precision, latency.precision),
                 "-" if latency is None else f"{latency.latency_ms:.3f}",
                 "-" if latency is None else f"{latency.p90_ms:.3f}",
                 "-" if latency is None else f"{latency.throughput:,.0f}",
                 "-" if row.speedup is None else f"{row.speedup:.2f}",
                 "-" if row.outcome.metric is None else f"{row.outcome.metric:.2f}",
                 "-" if row.drop is None else f"{row.drop:+.2f}",
                 row.reason)
        rows.append(cells)
    return rows


def text_table(decision: Decision) -> list[str]:
    """:func:`table_rows` as lines of aligned plain text (for logs and the stage)."""
    rows = [TABLE_HEAD, *table_rows(decision)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEAD) - 1)]
    return ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths))) + "  " + row[-1] for row in rows]
