"""The summary: the baseline record beside the final one, figure by figure, as ratios."""

from __future__ import annotations

from dataclasses import dataclass

from trimkit.report._deploy import speed_block
from trimkit.report._environment import environments
from trimkit.report._folder import ReportRun
from trimkit.report._markup import (Format, byte_count, count, difference, esc, figure, metric_format, millis, note,
                                    per_second, ratio, section, table, text)
from trimkit.report._measurement import (COUNTS, latencies, latency_label, latency_table, metric_label, metrics,
                                         metrics_table, size_kinds)
from trimkit.report._source import Ref
from trimkit.runs import StageRecord


@dataclass(frozen=True)
class Ends:
    """The two records the summary sets side by side, and their positions in the log."""

    baseline: int
    final: int

    def label(self, run: ReportRun, position: int) -> str:
        record = run.records[position]
        return record.stage if record.index < 0 else f"{record.index}. {record.stage}"


def ends(run: ReportRun) -> Ends | None:
    """Baseline: the model compression starts from (:func:`trimkit.runs.baseline_position`).
    Final: the ``final`` record, or the last record of a run that did not finish."""
    baseline = run.baseline_position()
    if baseline is None:
        return None
    final = next((i for i, record in enumerate(run.records) if record.stage == "final"), len(run.records) - 1)
    return Ends(baseline, final)


def summary_section(run: ReportRun) -> str:
    chosen = ends(run)
    if chosen is None:
        return section("summary", "Summary", note("The log holds no records, so there is nothing to summarise."))
    before = run.ref(chosen.baseline).get("measurement")
    after = run.ref(chosen.final).get("measurement")
    base_label, final_label = chosen.label(run, chosen.baseline), chosen.label(run, chosen.final)
    lead = (f"Baseline: the <b>{esc(base_label)}</b> record ({esc(_model(run.records[chosen.baseline]))}); final: the "
            f"<b>{esc(final_label)}</b> record ({esc(_model(run.records[chosen.final]))}). "
            "Ratios are final ÷ baseline; below 1 is smaller or faster.")
    if run.records[chosen.final].stage != "final":
        lead += " <b>The run did not finish</b>: the final column is its last record."
    body = speed_block(run) + _cards(before, after) + _comparison_table(before, after)
    provenance = [(f"baseline ({base_label})", before), (f"final ({final_label})", after)]
    how_metrics = metrics_table(provenance)
    if how_metrics:
        body += "<h3>How the metrics were computed</h3>" + how_metrics
    how_latency = latency_table(provenance)
    if how_latency:
        body += "<h3>How latency was taken</h3>" + how_latency
    elif any(r.details.get("comparisons") for r in run.records):
        body += note("The baseline and final records carry no latency; the comparisons below time the models.")
    return section("summary", "Summary", body + _environment_line(run), lead)


def _environment_line(run: ReportRun) -> str:
    """Where the run's timings were taken, in a line; the Environment section has the rest."""
    found = environments(run)
    if not found:
        return ""
    env = found[0][1]
    timed = "; ".join(f"{figure(e.get('threads'), count)} thread(s) in {esc(where)}" for where, e in found)
    return (f'<p>Timings were taken on {text(env.get("cpu"))} ({figure(env.get("cpus_available"), count)} CPUs '
            f'available): {timed}. See <a href="#environment">Environment</a>.</p>')


def _model(record: StageRecord) -> str:
    return f"model “{record.measurement.model}”" if record.measurement.model else "unnamed model"


def _cards(before: Ref | None, after: Ref | None) -> str:
    cards = []
    for key, label in COUNTS[:2]:
        cards.append(_card(label, _at(after, key), _at(before, key), count))
    kinds = [k for k in size_kinds(after) if k in size_kinds(before)]
    if kinds:
        kind = kinds[0]
        cards.append(_card(f"size ({kind})", _at(after, "size_bytes", kind), _at(before, "size_bytes", kind),
                           byte_count))
    before_metrics, after_metrics = metrics(before), metrics(after)
    primary = next((k for k in after_metrics if k in before_metrics and "loss" not in k[0]), None)
    if primary is not None:
        fmt = metric_format(primary[0])
        after_value, before_value = after_metrics[primary].get("value"), before_metrics[primary].get("value")
        cards.append(f'<div class="card"><span class="label">{esc(metric_label(primary))}</span>'
                     f'<span class="big">{figure(after_value, fmt)}</span>'
                     f'<span class="small">from {figure(before_value, fmt)} '
                     f'({difference(after_value, before_value, fmt)})</span></div>')
    shared = [k for k in latencies(after) if k in latencies(before)]
    if shared:
        key = shared[0]
        cards.append(_card(f"p50 latency, {latency_label(key)}", latencies(after)[key].get("latency_ms"),
                           latencies(before)[key].get("latency_ms"), millis))
    return f'<div class="cards">{"".join(cards)}</div>'


def _card(label: str, after: Ref | None, before: Ref | None, fmt: Format) -> str:
    return (f'<div class="card"><span class="label">{esc(label)}</span><span class="big">{ratio(after, before)}</span>'
            f'<span class="small">{figure(before, fmt)} → {figure(after, fmt)}</span></div>')


def _at(measurement: Ref | None, *keys: str) -> Ref | None:
    return measurement.at(*keys) if measurement is not None else None


def _comparison_table(before: Ref | None, after: Ref | None) -> str:
    rows = []

    def row(label: str, a: Ref | None, b: Ref | None, fmt: Format) -> None:
        if (a is None or a.value is None) and (b is None or b.value is None):
            return
        rows.append((esc(label), figure(b, fmt), figure(a, fmt), ratio(a, b), difference(a, b, fmt)))

    for key, label in COUNTS:
        row(label, _at(after, key), _at(before, key), count)
    for kind in size_kinds(before, after):
        row(f"size ({kind})", _at(after, "size_bytes", kind), _at(before, "size_bytes", kind), byte_count)
    before_metrics, after_metrics = metrics(before), metrics(after)
    for key in list(before_metrics) + [k for k in after_metrics if k not in before_metrics]:
        fmt = metric_format(key[0])
        row(metric_label(key), _at(after_metrics.get(key), "value"), _at(before_metrics.get(key), "value"), fmt)
    before_latency, after_latency = latencies(before), latencies(after)
    for key in list(before_latency) + [k for k in after_latency if k not in before_latency]:
        a, b = after_latency.get(key), before_latency.get(key)
        row(f"p50 latency, {latency_label(key)}", _at(a, "latency_ms"), _at(b, "latency_ms"), millis)
        row(f"throughput, {latency_label(key)}", _at(a, "throughput"), _at(b, "throughput"), per_second)
    if not rows:
        return note("Neither record holds figures.")
    return table(["figure", "baseline", "final", "final ÷ baseline", "final − baseline"], rows, "lrrrr", "summary")

