"""A deploy stage's details (``details.deployment``): the speed at the top of the summary
(the chosen deployment's latency, its speed-up over the starting point and over ONNX
Runtime fp32 of the same model, the metric's change), and in its stage card the table of
every candidate with why it was or was not chosen, and a chart of their latencies."""

from __future__ import annotations

from trimkit.report._folder import ReportRun
from trimkit.report._markup import (MISSING, difference, esc, figure, metric_format, millis, per_second, ratio, signed,
                                    table, text, times)
from trimkit.report._source import Ref
from trimkit.report._svg import Bar, bar_chart
from trimkit.record import metric_title


def last_deployment(run: ReportRun) -> Ref | None:
    """The ``deployment`` details of the run's last deploy stage, or None."""
    for position in reversed(range(len(run.records))):
        found = run.ref(position).at("details", "deployment")
        if found is not None and found.is_dict and found.get("chosen") is not None:
            return found
    return None


def speed_block(run: ReportRun) -> str:
    """Cards at the top of the summary: what was deployed, its p50, its speed-up over the
    starting point and over ONNX Runtime fp32 of the final model (each a ratio of two p50
    latencies of one interleaved run), and the metric against the starting point."""
    found = last_deployment(run)
    if found is None:
        return _comparison_speed(run)
    chosen, base, reference = found.get("chosen"), found.get("baseline"), found.get("onnxruntime_fp32")
    batch = found.get("batch_size")
    cards = [f'<div class="card"><span class="label">deployed</span><span class="big">'
             f'{text(chosen.get("runtime"))} {text(chosen.get("precision"))}</span><span class="small">'
             f'{text(chosen.get("label"))}, batch {figure(batch)}</span></div>',
             f'<div class="card"><span class="label">p50 latency, batch {figure(batch)}</span><span class="big">'
             f'{figure(chosen.get("p50_ms"), millis)}</span><span class="small">p90 '
             f'{figure(chosen.get("p90_ms"), millis)}, {figure(chosen.get("throughput"), per_second)} images'
             "</span></div>"]
    if base is not None and base.is_dict:
        cards.append(_speed_card("speed-up over the starting point", base, chosen,
                                 f"{text(base.get('label'))}, fp32 on ONNX Runtime"))
    if reference is not None and reference.is_dict:
        cards.append(_speed_card("speed-up over ONNX Runtime fp32", reference, chosen, "the same model"))
    name = str(found.at("metric", "name").value) if found.at("metric", "name") is not None else "metric"
    fmt = metric_format(name)
    start = base.get("metric") if base is not None and base.is_dict else found.at("metric", "reference")
    cards.append(f'<div class="card"><span class="label">{esc(metric_title(name))}, as deployed</span>'
                 f'<span class="big">{figure(chosen.get("metric"), fmt)}</span><span class="small">from '
                 f'{figure(start, fmt)} ({difference(chosen.get("metric"), start, fmt)} points)</span></div>')
    lead = ("<p><b>Deployment</b>, chosen by measurement: every candidate timed interleaved in one run and scored in "
            "its own runtime and precision; speed-ups are ratios of p50 latencies from that run (above 1: faster). "
            'See the <a href="#stages">deploy stage</a> for every candidate.</p>')
    return lead + f'<div class="cards">{"".join(cards)}</div>'


def _comparison_speed(run: ReportRun) -> str:
    """Without a deployment: the last comparison's first and last models, at its largest
    batch: each one's p50 and the speed-up of the last over the first."""
    for position in reversed(range(len(run.records))):
        found = run.ref(position).at("details", "comparisons")
        comparisons = [c for c in (found.children() if found is not None and found.is_list else []) if c.is_dict]
        if not comparisons:
            continue
        models = [m for m in (comparisons[-1].get("models").children() if comparisons[-1].get("models") else [])
                  if m.is_dict]
        if len(models) < 2:
            continue
        first, last = models[0], models[-1]
        where = (f"{text(first.at('latency', 'backend'))}, batch {figure(first.at('latency', 'batch_size'))}, "
                 f"{text(first.at('latency', 'precision'))}")
        card = (f'<div class="card"><span class="label">speed-up of {text(last.get("label"))} over '
                f'{text(first.get("label"))}</span><span class="big">'
                f'{ratio(first.at("latency", "p50_ms"), last.at("latency", "p50_ms"), times)}</span>'
                f'<span class="small">{where}: {figure(first.at("latency", "p50_ms"), millis)} → '
                f'{figure(last.at("latency", "p50_ms"), millis)}</span></div>')
        return ("<p>Latency, from the last comparison (timed interleaved; above 1: faster):</p>"
                f'<div class="cards">{card}</div>')
    return ""


def _speed_card(label: str, slow: Ref, fast: Ref, what: str) -> str:
    return (f'<div class="card"><span class="label">{esc(label)}</span><span class="big">'
            f'{ratio(slow.get("p50_ms"), fast.get("p50_ms"), times)}</span><span class="small">{what}: '
            f'{figure(slow.get("p50_ms"), millis)} → {figure(fast.get("p50_ms"), millis)}</span></div>')


COLUMNS = ("candidate", "computes in", "p50", "p90", "throughput", "× ORT fp32", "metric", "drop", "why")


def deployment_block(details: Ref) -> str:
    """The stage card's table of every candidate, fastest first, and their p50 chart."""
    found = details.get("deployment")
    if found is None or not found.is_dict:
        return ""
    rows_found = found.get("candidates")
    rows = [row for row in (rows_found.children() if rows_found is not None else []) if row.is_dict]
    name = str(found.at("metric", "name").value) if found.at("metric", "name") is not None else "metric"
    fmt = metric_format(name)
    cells = []
    for row in rows:
        chosen = row.value.get("chosen") is True
        label = ("<b>" if chosen else "") + text(row.get("label")) + (" ★</b>" if chosen else "")
        computes = text(row.get("precision_reported"))
        if row.value.get("precision") == "int8":
            computes = f"int8 + {computes}"
        cells.append((label, computes, figure(row.get("p50_ms"), millis), figure(row.get("p90_ms"), millis),
                      figure(row.get("throughput"), per_second), figure(row.get("speedup"), times),
                      figure(row.get("metric"), fmt), figure(row.get("drop"), signed(fmt)), text(row.get("reason"))))
    metric = found.get("metric")
    lead = (f"<p>{len(rows)} candidates at batch {figure(found.get('batch_size'))}, timed interleaved; "
            f"{esc(metric_title(name))} on {figure(metric.get('samples') if metric else None)} "
            f"{text(metric.get('split') if metric else None)} samples as each computes it; drop against ONNX Runtime "
            f"fp32 ({figure(metric.get('reference') if metric else None, fmt)}), at most "
            f"{figure(metric.get('max_drop') if metric else None)} allowed.</p>")
    notes = found.get("notes")
    listed = "".join(f"<li>{text(note)}</li>" for note in (notes.children() if notes is not None else []))
    bars = [Bar(str(row.value.get("label", "?")), row.get("p50_ms")) for row in rows if row.get("p50_ms") is not None]
    chart = bar_chart(bars, title="p50 latency per candidate", fmt=millis, value_name="p50 latency")
    head = list(COLUMNS)
    return ("<h4>Deployment: every candidate</h4>" + lead + table(head, cells, "llrrrrrrl", "deploy")
            + (f"<ul>{listed}</ul>" if listed else "") + chart) if cells else MISSING
