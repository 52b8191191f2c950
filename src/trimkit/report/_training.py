"""Training curves (``details.history``: one record per epoch, as ``train.fit`` and QAT
log it), what a training stage trained at and how its health and teacher were judged,
and the pruning steps a schedule fired during training."""

from __future__ import annotations

from trimkit.report._markup import count, esc, figure, general, percent_of_one, ratio, table, text
from trimkit.report._source import Ref, is_number
from trimkit.report._svg import Axis, Point, Series, line_chart

NOT_CURVES = ("epoch", "images", "seconds", "lr")


def training_block(details: Ref) -> str:
    """The input size trained at, the metric before training against chance and the
    failure found (if any), and the teacher check's figures and verdict."""
    lines = []
    size = details.get("input_size")
    if size is not None and size.is_list and size.children():
        lines.append(f"Trained at <b>{esc(', '.join(str(item.value) for item in size.children()))}</b> "
                     "(each input, without the batch).")
    health = details.get("training")
    if health is not None and health.is_dict:
        lines.append(f"Before training {figure(health.get('start'))}, chance {figure(health.get('chance'))}"
                     f"{'; ' + text(health.get('problem')) if health.get('problem') is not None else '.'}")
        if health.get("warning") is not None:
            lines.append(f"Warning: {text(health.get('warning'))}")
    check = details.at("distillation", "teacher_check")
    if check is not None and check.is_dict:
        verdict = ("weak: at or below the student before or chance + margin" if check.value.get("weak")
                   else "above the student before and chance + margin")
        lines.append(f"Teacher check (val {text(check.get('metric'))}): teacher {figure(check.get('teacher'))}, "
                     f"student before {figure(check.get('student_start'))}, chance {figure(check.get('chance'))} "
                     f"+ margin {figure(check.get('margin'))}: <b>{esc(verdict)}</b>.")
    if not lines:
        return ""
    return "<h4>Training</h4>" + "".join(f"<p>{line}</p>" for line in lines)


def history_block(details: Ref) -> str:
    """Loss and metric curves per epoch, the learning rate, and the figures as a table."""
    history = details.get("history")
    epochs = [item for item in (history.children() if history is not None and history.is_list else []) if item.is_dict]
    if not epochs:
        return ""
    names: list[str] = []
    for item in epochs:
        names += [k for k, v in item.value.items() if is_number(v) and k not in names]
    curves = [n for n in names if n not in NOT_CURVES]
    losses = [n for n in curves if "loss" in n]
    scores = [n for n in curves if "loss" not in n]
    x_axis = Axis("epoch", lambda v: f"{v:g}", integer=True)
    charts = [line_chart(_series(epochs, losses), title="Loss per epoch", x_axis=x_axis, y_axis=Axis("loss"))
              if losses else "",
              line_chart(_series(epochs, scores), title="Metrics per epoch", x_axis=x_axis, y_axis=Axis("value"))
              if scores else "",
              line_chart(_series(epochs, ["lr"]), title="Learning rate", x_axis=x_axis, y_axis=Axis("lr"))
              if "lr" in names and len(epochs) > 1 else ""]
    shown = [n for n in names if n != "epoch"]
    rows = [[figure(item.get("epoch"), count), *(figure(item.get(n), general) for n in shown)] for item in epochs]
    listing = (f'<details><summary>Figures per epoch ({len(epochs)})</summary>'
               f'{table(["epoch", *map(esc, shown)], rows, "r" * (len(shown) + 1))}</details>')
    return f'<div class="charts">{"".join(charts)}</div>{listing}'


def _series(epochs: list[Ref], names: list[str]) -> list[Series]:
    series = []
    for name in names:
        points = []
        for position, item in enumerate(epochs, 1):
            value, epoch = item.get(name), item.get("epoch")
            if epoch is not None and not epoch.is_number:
                epoch = None
            if value is not None and value.is_number:
                points.append(Point(epoch.value if epoch is not None else position, value, epoch))
        series.append(Series(name, points, dashed=name.startswith("train")))
    return series


def pruning_steps_block(details: Ref) -> str:
    """The cuts a training schedule made, epoch by epoch."""
    steps = details.get("pruning_steps")
    items = [s for s in (steps.children() if steps is not None and steps.is_list else []) if s.is_dict]
    if not items:
        return ""
    rows = [(figure(s.get("epoch"), count), text(s.get("pruner")), figure(s.get("ratio"), percent_of_one),
             figure(s.get("target_sparsity"), percent_of_one), figure(s.get("filters_pruned"), percent_of_one),
             figure(s.get("macs_before"), count), figure(s.get("macs_after"), count),
             ratio(s.get("macs_after"), s.get("macs_before")), figure(s.get("frozen"), count)) for s in items]
    return ("<h4>Pruning steps during training</h4>"
            + table(["epoch", "pruner", "ratio", "target sparsity", "filters pruned", "MACs before", "MACs after",
                     "×", "frozen"], rows, "rlrrrrrrr"))
