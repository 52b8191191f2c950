"""The stages: an overview table and wall-time chart, then one card per record with its
options from the recipe, its measurement, and what the stage put in ``details``."""

from __future__ import annotations

import yaml

from trimkit.report._deploy import deployment_block
from trimkit.report._folder import ReportRun
from trimkit.report._markup import (MISSING, byte_count, count, esc, figure, general, metric_format, seconds, section,
                                    table, text)
from trimkit.report._measurement import figures_table, metrics, size_kinds
from trimkit.report._prune import chosen_block, cut_block, layers_block
from trimkit.report._quant import quant_block
from trimkit.report._source import Ref, is_number
from trimkit.report._svg import Bar, bar_chart
from trimkit.report._training import history_block, pruning_steps_block, training_block

# details drawn by their own blocks, or bookkeeping for resume; the rest are listed as they are
DRAWN = {"history", "layers", "chosen", "comparisons", "int8", "before", "measurements", "artifacts", "named_files",
         "environment", "measured", "pruning_steps", "per_layer", "deployment", "input_size", "training"}


def anchor(position: int) -> str:
    return f"record-{position}"


def stages_section(run: ReportRun) -> str:
    if not run.records:
        return ""
    rows = []
    for position, record in enumerate(run.records):
        ref = run.ref(position)
        measurement = ref.get("measurement")
        top = next((item for key, item in metrics(measurement).items() if key[1] == "pytorch"
                    and "loss" not in key[0]), None)
        sizes = "<br>".join(f"{esc(kind)} {figure(measurement.at('size_bytes', kind), byte_count)}"
                            for kind in size_kinds(measurement)) or MISSING
        number = "" if record.index < 0 else figure(ref.get("index"), count)
        rows.append((f'<a href="#{anchor(position)}">{number}</a>',
                     f'<a href="#{anchor(position)}">{esc(record.stage)}</a>', text(measurement.get("model")),
                     figure(measurement.get("params"), count), figure(measurement.get("macs"), count),
                     _metric_cell(top), sizes, figure(ref.get("seconds"), seconds)))
    overview = table(["#", "stage", "model", "params", "MACs", "metric", "sizes", "wall time"], rows, "rllrrrlr",
                     "stages")
    bars = [Bar(f"{r.index}. {r.stage}" if r.index >= 0 else r.stage, run.ref(i).get("seconds"))
            for i, r in enumerate(run.records) if is_number(r.seconds)]
    chart = bar_chart(bars, title="Wall time per stage", fmt=seconds, value_name="wall time")
    cards = "".join(_card(run, position) for position in range(len(run.records)))
    return section("stages", "Stages", overview + chart + cards,
                   "Each stage's record as the log holds it: the model's figures after the stage, and its details.")


def _metric_cell(metric: Ref | None) -> str:
    if metric is None:
        return MISSING
    name = str(metric.value.get("name", ""))
    return f"{figure(metric.get('value'), metric_format(name))} <small>{esc(name)}</small>"


def _card(run: ReportRun, position: int) -> str:
    record = run.records[position]
    ref = run.ref(position)
    details = ref.get("details") or Ref({}, ref.path + ("details",))
    measurement = ref.get("measurement")
    number = "" if record.index < 0 else f"{record.index}. "
    head = (f'<h3>{esc(number + record.stage)} <small>model “{text(measurement.get("model"))}”, '
            f'{figure(ref.get("seconds"), seconds)}</small></h3>')
    parts = [head, _options(run, record.index)]
    figures = "<h4>Figures after the stage</h4>" + figures_table(measurement)
    if position > 0 and _same_figures(run.ref(position - 1).get("measurement"), measurement):
        figures = (f'<details class="figures"><summary>Figures: as in the record before (the stage kept the model)'
                   f"</summary>{figures_table(measurement)}</details>")
    parts.append(f'<div class="side"><div>{figures}</div>{_details_table(details)}</div>')
    parts += [training_block(details), history_block(details), pruning_steps_block(details)]
    if record.stage == "prune" or details.get("layers") is not None:
        parts += [cut_block(details, measurement), layers_block(details), chosen_block(details)]
    parts += [quant_block(details, measurement), _measured(details), deployment_block(details)]
    if details.get("comparisons") is not None:
        parts.append('<p>Its comparisons are under <a href="#comparisons">Comparisons</a>.</p>')
    return f'<article class="stage" id="{anchor(position)}">{"".join(p for p in parts if p)}</article>'


def _options(run: ReportRun, index: int) -> str:
    entry = run.recipe_stage(index)
    if entry is None:
        return ""
    shown = yaml.safe_dump(entry, sort_keys=False, default_flow_style=None).strip()
    return f'<details class="options"><summary>Options from the recipe</summary><pre>{esc(shown)}</pre></details>'


def _same_figures(before: Ref | None, after: Ref | None) -> bool:
    """Whether two records hold the same figures (their model labels aside)."""
    if before is None or after is None or not (before.is_dict and after.is_dict):
        return False
    return {**before.value, "model": None} == {**after.value, "model": None}


def _details_table(details: Ref) -> str:
    rows = []
    for key, child in details.items():
        if key in DRAWN:
            continue
        if child.is_dict:
            rows += [(f"{key}.{sub}", _scalar(item)) for sub, item in child.items()
                     if not (item.is_dict or item.is_list) and item.value is not None]
        elif child.value is not None and child.value != []:
            rows.append((str(key), _scalar(child)))
    if not rows:
        return ""
    listing = table(["detail", "value"], [(esc(k), v) for k, v in rows], "ll", "details")
    return f"<div><h4>Details</h4>{listing}</div>"


def _scalar(ref: Ref) -> str:
    if is_number(ref.value):
        return figure(ref, general)
    if ref.is_list:
        items = ref.children()
        if all(is_number(i.value) for i in items):
            return ", ".join(figure(i, general) for i in items)
        if all(not (i.is_dict or i.is_list) for i in items):
            return esc(", ".join(str(i.value) for i in items))
        return f"<small>{len(items)} entries</small>"
    if ref.is_dict:
        return f"<small>{len(ref.value)} entries</small>"
    return text(ref)


def _measured(details: Ref) -> str:
    """Records a measure stage took of a named model (not the current one)."""
    measured = details.get("measured")
    if measured is None or not measured.is_dict:
        return ""
    return "".join(f"<h4>Measured: {esc(name)}</h4>{figures_table(record)}" for name, record in measured.items()
                   if record.is_dict)
