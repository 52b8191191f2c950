"""Per-layer latency: the runtime profiler's time per layer that measure stages logged
with ``per_layer`` (``details.per_layer``), before (the first such stage) and after
(the last), side by side by layer name."""

from __future__ import annotations

from dataclasses import dataclass

from trimkit.report._folder import ReportRun
from trimkit.report._markup import MISSING, esc, figure, long_table, millis, ratio, section, table
from trimkit.report._source import Ref, is_finite
from trimkit.report._stages import anchor
from trimkit.report._svg import Bar, bar_chart


@dataclass(frozen=True)
class Profile:
    """One profiled model at one batch size: its rows by layer name, in the log's order."""

    position: int
    label: str
    batch: str
    rows: dict[str, Ref]


def profiles(run: ReportRun) -> list[Profile]:
    """Every per-layer profile in the log, in log order. ``per_layer`` maps a batch size to
    rows for the current model, or a model's name to such a map for a named one."""
    found = []
    for position, record in enumerate(run.records):
        per_layer = run.ref(position).at("details", "per_layer")
        if per_layer is None or not per_layer.is_dict:
            continue
        stage = f"{record.index}. {record.stage}"
        for key, child in per_layer.items():
            if child.is_list:
                found.append(Profile(position, stage, str(key), _rows(child)))
            elif child.is_dict:
                found += [Profile(position, f"{stage}: {key}", str(batch), _rows(rows))
                          for batch, rows in child.items() if rows.is_list]
    return [profile for profile in found if profile.rows]


def _rows(rows: Ref) -> dict[str, Ref]:
    named: dict[str, Ref] = {}
    for row in rows.children():
        if row.is_dict and isinstance(row.value.get("name"), str) and is_finite(row.value.get("ms")):
            named.setdefault(row.value["name"], row)
    return named


def _before_after(found: list[Profile]) -> list[Profile]:
    before = found[0]
    last = [p for p in found if p.position == found[-1].position]
    if last[0].position == before.position:
        return [before]
    after = next((p for p in last if p.batch == before.batch), last[0])
    return [before, after]


def per_layer_section(run: ReportRun) -> str:
    found = profiles(run)
    if not found:
        return ""
    shown = _before_after(found)
    names = list(shown[0].rows)
    for profile in shown[1:]:
        names += [name for name in profile.rows if name not in names]
    rows = []
    for name in names:
        cells = [esc(name), esc(next((p.rows[name].value.get("op", "") for p in shown if name in p.rows), ""))]
        for profile in shown:
            row = profile.rows.get(name)
            cells += [figure(row.get("ms") if row else None, millis),
                      figure(row.get("percent") if row else None, lambda v: f"{v:.1f} %")]
        if len(shown) == 2:
            before, after = (p.rows.get(name) for p in shown)
            cells.append(ratio(after.get("ms"), before.get("ms")) if before and after else MISSING)
        rows.append(cells)
    head = ["layer", "op"]
    for profile in shown:
        head += [f"{esc(profile.label)}, batch {esc(profile.batch)}: ms", "%"]
    align = "ll" + "rr" * len(shown)
    if len(shown) == 2:
        head.append("× (after / before)")
        align += "r"
    listing = long_table(f"Table of the {len(rows)} layers", table(head, rows, align), len(rows))
    which = ["before", "after"] if len(shown) == 2 else [""]
    bars = [Bar(f"{name} · {tag}" if tag else name, profile.rows[name].get("ms"), tip=f"{profile.label}, batch "
                f"{profile.batch}") for name in names for tag, profile in zip(which, shown) if name in profile.rows]
    chart = bar_chart(bars, title="Time per layer under the runtime's profiler", fmt=millis, value_name="time")
    links = ", ".join(f'<a href="#{anchor(p.position)}">{esc(p.label)}</a> (batch {esc(p.batch)})' for p in shown)
    lead = ("The runtime profiler's time per layer (graph nodes mapped back to layer names; fused ops count with "
            f"their layer), in a separate profiled session: {links}."
            + (" Before: the first measure stage with per-layer times; after: the last." if len(shown) == 2 else ""))
    return section("per-layer", "Per-layer latency", f'<div class="side">{listing}{chart}</div>', lead)
