"""A prune stage's details: channels per layer before and after the cut, and how the
cut was chosen (exploration's threshold functions, or sensitivity curves)."""

from __future__ import annotations

from trimkit.report._markup import (count, esc, figure, general, long_table, metric_format, note, percent_of_one, ratio,
                                    table, text, total)
from trimkit.report._source import Ref, is_number
from trimkit.report._svg import Axis, Bar, Mark, Point, Series, bar_chart, line_chart


def layers_block(details: Ref) -> str:
    """Channels (filters or neurons) per layer: kept, removed, and before (their sum)."""
    layers = details.get("layers")
    rows, bars = [], []
    for name, layer in layers.items() if layers is not None else []:
        kept, removed = layer.get("kept"), layer.get("removed")
        if kept is None or removed is None or not (is_number(kept.value) and is_number(removed.value)):
            continue
        rows.append((esc(name), total([kept, removed], count), figure(kept, count), figure(removed, count)))
        bars.append(Bar(str(name), kept, (kept, removed)))
    if not rows:
        return ""
    chart = bar_chart(bars, title="Channels per layer: kept of before", fmt=lambda v: f"{v:,}", value_name="kept",
                      whole_name="before the cut")
    listing = long_table(f"Table of the {len(rows)} layers", table(["layer", "before", "after", "removed"], rows,
                                                                   "lrrr"), len(rows))
    return f'<h4>Channels per layer</h4><div class="side">{listing}{chart}</div>'


def cut_block(details: Ref, measurement: Ref | None) -> str:
    """The cut in figures: before (from the stage's details) and after (its record)."""
    before = details.at("measurements", "before") or details.get("before")
    after = details.at("measurements", "after") or measurement
    if before is None or after is None:
        return ""
    rows = [(label, figure(before.get(key), count), figure(after.get(key), count),
             ratio(after.get(key), before.get(key)))
            for key, label in (("params", "params"), ("macs", "MACs"), ("flops", "FLOPs"))
            if before.get(key) is not None and before.get(key).value is not None]
    return table(["", "before the cut", "after", "×"], rows, "lrrr") if rows else ""


def chosen_block(details: Ref) -> str:
    chosen = details.get("chosen")
    if chosen is None or not chosen.is_dict:
        return ""
    by = chosen.value.get("by")
    if by == "explore":
        return _explore(chosen)
    if by == "sensitivity":
        return _sensitivity(chosen)
    return ""


def _explore(chosen: Ref) -> str:
    curves = chosen.get("curves")
    best = chosen.value.get("criterion")
    metric = f"metric ({chosen.value['metric']})" if isinstance(chosen.value.get("metric"), str) else "metric"
    by_threshold, by_filters, rows = [], [], []
    for name, curve in curves.items() if curves is not None else []:
        found = curve.get("points")
        points = [p for p in (found.children() if found is not None else []) if p.is_dict]
        by_threshold.append(_curve(str(name), points, "threshold", name == best))
        by_filters.append(_curve(str(name), points, "filters_pruned", name == best))
        rows.append((esc(name) + (' <span class="tag">chosen</span>' if name == best else ""),
                     figure(curve.get("auc"), lambda v: f"{v:.3f}"), figure(curve.get("baseline"), general)))
    threshold = chosen.get("threshold")
    x_marks = [Mark("x", threshold, "chosen threshold")] if threshold is not None and threshold.is_number else []
    baseline = curves.at(best, "baseline") if curves is not None and isinstance(best, str) else None
    y_marks = [Mark("y", baseline, "unpruned")] if baseline is not None and baseline.is_number else []
    y_axis = Axis(metric, metric_format("top1"))
    charts = (line_chart(by_threshold, title="Threshold functions: metric against threshold",
                         x_axis=Axis("threshold", lambda v: f"{v:.3f}"), y_axis=y_axis, marks=x_marks + y_marks,
                         caption="Each criterion's channels below the threshold are cut; the chosen criterion has "
                                 "the largest area under its curve.")
              + line_chart(by_filters, title="Metric against filters and neurons pruned",
                           x_axis=Axis("filters and neurons pruned (%)", percent_of_one, 100.0), y_axis=y_axis,
                           marks=y_marks))
    lead = (f"Chosen by exploration: criterion <b>{text(chosen.get('criterion'))}</b>, threshold "
            f"{figure(threshold, lambda v: f'{v:.4g}')}.")
    return (f"<h4>Exploration</h4><p>{lead}</p>" + table(["criterion", "AUC", "unpruned metric"], rows, "lrr")
            + f'<div class="charts">{charts}</div>')


def _curve(name: str, points: list[Ref], x_key: str, strong: bool) -> Series:
    """One criterion's threshold function: the metric against ``x_key`` of each point."""
    return Series(name, [Point(p.value[x_key], p.get("metric"), p.get(x_key), _point_label(p))
                         for p in points if _has(p, x_key)], strong=strong)


def _has(point: Ref, key: str) -> bool:
    return is_number(point.value.get(key)) and point.get("metric") is not None and is_number(point.value["metric"])


def _point_label(point: Ref) -> str:
    macs = point.value.get("macs")
    threshold = point.value.get("threshold")
    parts = [f"threshold {threshold:.4g}" if is_number(threshold) else "",
             f"MACs {macs:,}" if isinstance(macs, int) else ""]
    return ", ".join(p for p in parts if p)


def _sensitivity(chosen: Ref) -> str:
    found = chosen.get("metrics")
    groups = [(name, levels) for name, levels in (found.items() if found is not None else []) if levels.is_dict]
    sparsities: list[str] = []
    for _, levels in groups:
        sparsities += [k for k, v in levels.items() if k not in sparsities and _as_float(k) is not None]
    sparsities.sort(key=lambda k: _as_float(k))
    series = [Series(name, [Point(_as_float(k), v) for k, v in levels.items()
                            if _as_float(k) is not None and is_number(v.value)]) for name, levels in groups]
    baseline = chosen.get("baseline")
    marks = [Mark("y", baseline, "unpruned")] if baseline is not None and is_number(baseline.value) else []
    chart = line_chart(series, title="Sensitivity: metric against the share of a group's channels pruned",
                       x_axis=Axis("channels of the group pruned (%)", percent_of_one, 100.0),
                       y_axis=Axis("metric", metric_format("top1")), marks=marks,
                       caption="One line per channel group, each pruned alone.")
    group_ratios = chosen.get("group_ratios")
    rows = [(esc(name), figure(group_ratios.get(name) if group_ratios is not None else None, percent_of_one),
             *(figure(levels.get(k), metric_format("top1")) for k in sparsities)) for name, levels in groups]
    head = ["group", "chosen ratio", *(f"{100 * _as_float(k):g} %" for k in sparsities)]
    chosen_any = group_ratios is not None and group_ratios.is_dict and group_ratios.value
    remark = "" if chosen_any else note("No group could be pruned within the predicted drop: the cut removes nothing.")
    return (f"<h4>Sensitivity analysis</h4><p>Unpruned metric {figure(baseline, general)}; "
            "each group's chosen ratio removes the most MACs within the predicted drop.</p>" + remark
            + long_table(f"Table of the {len(rows)} groups", table(head, rows, "lr" + "r" * len(sparsities)),
                         len(rows))
            + f'<div class="charts">{chart}</div>')


def _as_float(key: object) -> float | None:
    try:
        return float(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
