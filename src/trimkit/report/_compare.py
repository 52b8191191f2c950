"""Comparisons (``details.comparisons`` of a compare stage): the CLI's side-by-side
table, each figure with its ratio to the first model, and a latency chart."""

from __future__ import annotations

from trimkit.report._markup import (byte_count, count, figure, metric_format, millis, per_second, ratio, table,
                                    text, times)
from trimkit.report._source import Ref
from trimkit.report._svg import Bar, bar_chart

COLUMNS = (("params", "params", count), ("macs", "MACs", count), ("size_bytes", "ONNX file", byte_count),
           ("p50_ms", "p50", millis), ("throughput", "throughput", per_second))


def comparisons_block(details: Ref) -> str:
    found = details.get("comparisons")
    if found is None or not found.is_list:
        return ""
    return "".join(_comparison(item) for item in found.children() if item.is_dict)


def _value(model: Ref, key: str) -> Ref | None:
    return model.at("latency", key) if key in ("p50_ms", "throughput") else model.get(key)


def _comparison(comparison: Ref) -> str:
    found = comparison.get("models")
    models = [m for m in (found.children() if found is not None else []) if m.is_dict]
    if not models:
        return ""
    first = models[0]
    latency = first.get("latency") or Ref({}, first.path + ("latency",))
    threads = latency.get("threads")
    title = (f"{text(latency.get('backend'))}, batch {figure(latency.get('batch_size'), count)}, "
             f"{figure(threads, count)} thread{'' if threads is not None and threads.value == 1 else 's'}, "
             f"{text(latency.get('precision'))}; ratios against {text(first.get('label'))}")
    with_top1 = any(m.get("top1") is not None and m.get("top1").value is not None for m in models)
    head = ["model"]
    for _, label, _ in COLUMNS:
        head += [label, "×"]
    head += ["top-1 %"] if with_top1 else []
    rows = []
    for model in models:
        cells = [text(model.get("label"))]
        for key, _, fmt in COLUMNS:
            stored = model.at("ratios", key)
            shown = figure(stored, times) if stored is not None else ratio(_value(model, key), _value(first, key))
            cells += [figure(_value(model, key), fmt), shown]
        if with_top1:
            top1 = model.get("top1")
            shown = figure(top1, metric_format("top1"))
            if top1 is not None and top1.value is not None:
                shown += f" <small>{figure(model.get('top1_samples'), count)} {text(model.get('top1_split'))}</small>"
            cells.append(shown)
        rows.append(cells)
    bars = [Bar(str(m.value.get("label", "?")), m.at("latency", "p50_ms"),
                tip=f"p90 {_plain(m.at('latency', 'p90_ms'))}, p99 {_plain(m.at('latency', 'p99_ms'))}")
            for m in models if m.at("latency", "p50_ms") is not None]
    chart = bar_chart(bars, title="p50 latency per model", fmt=millis, value_name="p50 latency")
    return (f'<div class="comparison"><h4>{title}</h4>'
            f'{table(head, rows, "l" + "r" * (len(head) - 1), "compare")}{chart}</div>')


def _plain(ref: Ref | None) -> str:
    return millis(ref.value) if ref is not None and isinstance(ref.value, (int, float)) else "–"

