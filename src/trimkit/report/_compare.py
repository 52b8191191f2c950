"""Comparisons (``details.comparisons`` of a compare stage): the CLI's side-by-side
table, each figure with its ratio to the first model, the task's metric (top-1, mIoU, ...)
headed by its name with its change against the first model, and a latency chart."""

from __future__ import annotations

from dataclasses import dataclass

from trimkit.report._markup import (MISSING, byte_count, count, difference, esc, figure, metric_format, millis,
                                    per_second, ratio, signed, table, text, times)
from trimkit.report._source import Ref, is_number
from trimkit.report._svg import Bar, bar_chart
from trimkit.record import metric_title

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
    scores = [_score(model, comparison) for model in models]
    # a column per metric the rows show: one, unless rows scored by different tasks were put together
    shown = list(dict.fromkeys(score.name for score in scores if score is not None))
    head = ["model"]
    for _, label, _ in COLUMNS:
        head += [label, "×"]
    for name in shown:
        head += [esc(metric_title(name)), "Δ"]
    rows = []
    for model, score in zip(models, scores):
        cells = [text(model.get("label"))]
        for key, _, fmt in COLUMNS:
            stored = model.at("ratios", key)
            shown_ratio = figure(stored, times) if stored is not None else ratio(_value(model, key), _value(first, key))
            cells += [figure(_value(model, key), fmt), shown_ratio]
        for name in shown:
            cells += _score_cells(score, scores[0], model, name)
        rows.append(cells)
    bars = [Bar(str(m.value.get("label", "?")), m.at("latency", "p50_ms"),
                tip=f"p90 {_plain(m.at('latency', 'p90_ms'))}, p99 {_plain(m.at('latency', 'p99_ms'))}")
            for m in models if m.at("latency", "p50_ms") is not None]
    chart = bar_chart(bars, title="p50 latency per model", fmt=millis, value_name="p50 latency")
    return (f'<div class="comparison"><h4>{title}</h4>'
            f'{table(head, rows, "l" + "r" * (len(head) - 1), "compare")}{chart}</div>')


@dataclass(frozen=True)
class _Score:
    """The metric a row shows, its value, and on how many samples of which split."""

    name: str
    value: Ref
    samples: Ref | None
    split: Ref | None


def _score(model: Ref, comparison: Ref) -> _Score | None:
    """The row's metric, read from its measurement record by the name the row (or the
    comparison) gives; a row written before comparisons named their metric has ``top1``."""
    named = model.get("metric") or comparison.get("metric")
    if named is not None and isinstance(named.value, str):
        listed = model.at("measurement", "metrics")
        matches = [m for m in (listed.children() if listed is not None else [])
                   if m.is_dict and m.value.get("name") == named.value and m.get("value") is not None]
        if matches:
            return _Score(named.value, matches[-1].get("value"), matches[-1].get("samples"), matches[-1].get("split"))
    top1 = model.get("top1")
    if top1 is not None and is_number(top1.value):
        return _Score("top1", top1, model.get("top1_samples"), model.get("top1_split"))
    return None


def _score_cells(score: _Score | None, baseline: _Score | None, model: Ref, name: str) -> list[str]:
    """The value (with its sample count and split) and its change against the first model."""
    if score is None or score.name != name:
        return [MISSING, MISSING]
    fmt = metric_format(name)
    shown = f"{figure(score.value, fmt)} <small>{figure(score.samples, count)} {text(score.split)}</small>"
    stored = model.get("change")
    if stored is not None and is_number(stored.value):
        change = figure(stored, signed(fmt))
    elif baseline is not None and baseline.name == name:
        change = difference(score.value, baseline.value, fmt)
    else:
        change = MISSING
    return [shown, change]


def _plain(ref: Ref | None) -> str:
    return millis(ref.value) if ref is not None and isinstance(ref.value, (int, float)) else "–"

