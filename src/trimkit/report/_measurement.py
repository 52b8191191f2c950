"""One measurement record (``record.Measurement`` as the log holds it) as tables:
its figures, and how each metric and latency was taken."""

from __future__ import annotations

from typing import Sequence

from trimkit.record import SIZE_KINDS
from trimkit.report._markup import (byte_count, count, esc, figure, general, metric_format, millis, per_second, table,
                                    text)
from trimkit.report._source import Ref

COUNTS = (("params", "params"), ("macs", "MACs"), ("flops", "FLOPs"))


def metric_key(metric: Ref) -> tuple[str, str, str]:
    """(name, backend, split): one figure per key, as ``Measurement.metric`` finds it."""
    value = metric.value if isinstance(metric.value, dict) else {}
    return (str(value.get("name", "?")), str(value.get("backend", "pytorch")), str(value.get("split", "")))


def metric_label(key: tuple[str, str, str]) -> str:
    name, backend, split = key
    return name + ("" if backend == "pytorch" else f"@{backend}") + (f" ({split})" if split else "")


def metrics(measurement: Ref | None) -> dict[tuple[str, str, str], Ref]:
    """The record's metrics by key; where a key repeats, the later figure (as ``merge`` keeps)."""
    found = measurement.get("metrics") if measurement is not None else None
    return {metric_key(item): item for item in (found.children() if found is not None else []) if item.is_dict}


def latency_key(record: Ref) -> tuple[str, str, str, str]:
    value = record.value if isinstance(record.value, dict) else {}
    return tuple(str(value.get(k, "?")) for k in ("backend", "precision_requested", "threads", "batch_size"))


def latency_label(key: tuple[str, str, str, str]) -> str:
    backend, requested, threads, batch = key
    return f"{backend}, batch {batch}, {threads} thread{'' if threads == '1' else 's'}, {requested}"


def latencies(measurement: Ref | None) -> dict[tuple[str, str, str, str], Ref]:
    found = measurement.get("latency") if measurement is not None else None
    return {latency_key(item): item for item in (found.children() if found is not None else []) if item.is_dict}


def size_kinds(*measurements: Ref | None) -> list[str]:
    """Size kinds any of the records has, in the record's canonical order."""
    kinds: list[str] = []
    for measurement in measurements:
        sizes = measurement.get("size_bytes") if measurement is not None else None
        kinds += [k for k, _ in (sizes.items() if sizes is not None else []) if k not in kinds]
    return sorted(kinds, key=lambda k: (SIZE_KINDS.index(k) if k in SIZE_KINDS else len(SIZE_KINDS), k))


def figures_table(measurement: Ref) -> str:
    """Counts, sizes, metrics and latency of one record, a row each."""
    rows = []
    for key, label in COUNTS:
        if measurement.get(key) is not None and measurement.get(key).value is not None:
            rows.append((label, figure(measurement.get(key), count)))
    for kind in size_kinds(measurement):
        rows.append((f"size ({kind})", figure(measurement.at("size_bytes", kind), byte_count)))
    for key, item in metrics(measurement).items():
        where = ", ".join(str(item.value.get(k)) for k in ("precision", "backend") if item.value.get(k))
        shown = figure(item.get("value"), metric_format(key[0]))
        samples = item.get("samples")
        rows.append((esc(metric_label(key)), f"{shown} <small>{figure(samples, count)} samples, {esc(where)}</small>"))
    for key, item in latencies(measurement).items():
        rows.append((esc(f"p50 latency: {latency_label(key)}"),
                     f"{figure(item.get('latency_ms'), millis)} <small>{figure(item.get('throughput'), per_second)}"
                     f", runs in {text(item.get('precision'))}</small>"))
    if not rows:
        return '<p class="none">no figures in this record</p>'
    return table(["figure", "value"], rows, "lr", "figures")


def metrics_table(records: Sequence[tuple[str, Ref | None]]) -> str:
    """How each metric of each record was computed: split, samples, precision, backend, data."""
    rows = []
    for label, measurement in records:
        for key, item in metrics(measurement).items():
            rows.append((esc(label), esc(key[0]), figure(item.get("value"), metric_format(key[0])),
                         text(item.get("split")), figure(item.get("samples"), count), text(item.get("precision")),
                         text(item.get("backend")), text(item.get("data"))))
    if not rows:
        return ""
    return table(["record", "metric", "value", "split", "samples", "precision", "backend", "data"], rows,
                 "llrrrlll")


def latency_table(records: Sequence[tuple[str, Ref | None]]) -> str:
    """Each latency figure with where and how it was taken."""
    rows = []
    for label, measurement in records:
        for item in latencies(measurement).values():
            precision = text(item.get("precision"))
            requested = item.get("precision_requested")
            if requested is not None and requested.value != (item.get("precision") or requested).value:
                precision += f" <small>(asked {text(requested)})</small>"
            rows.append((esc(label), text(item.get("backend")), precision, figure(item.get("threads"), count),
                         figure(item.get("batch_size"), count), figure(item.get("latency_ms"), millis),
                         figure(item.get("p90_ms"), millis), figure(item.get("p99_ms"), millis),
                         figure(item.get("cv"), general), figure(item.get("throughput"), per_second),
                         figure(item.get("iterations"), count)))
    if not rows:
        return ""
    return table(["record", "backend", "precision", "threads", "batch", "p50", "p90", "p99", "cv", "throughput",
                  "runs"], rows, "lllrrrrrrrr")

