"""`trimkit explore` (threshold functions, criterion choice) and `trimkit sensitivity`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trimkit import pipeline, prune
from trimkit._atomic import write_text_atomic
from trimkit._outputs import check_folder_output
from trimkit.cli._common import resolve_model
from trimkit.cli._console import console, print_json
from trimkit.cli._options import DataDirOption, JsonOption, TrustOption, WeightsOption, at_least
from trimkit.errors import TrimkitError
from trimkit.pipeline import Subject
from trimkit.prune._options import LAYER_KINDS
from trimkit.report import plot_macs_vs_metric, plot_sensitivity, plot_threshold_functions

EXAMPLE_BATCH = 4
DataOption = Annotated[str | None, typer.Option("--data", help="Data set to evaluate on (validation split).")]
SamplesOption = Annotated[int | None, typer.Option(help="Evaluate on this many validation images (fixed subset).")]


def _setup(model: str, weights: Path | None, data: str | None, data_dir: Path | None,
           eval_samples: int | None, trust_checkpoint: bool):
    subject = resolve_model(model, weights, trusted=trust_checkpoint)
    task = pipeline.command_task(subject, data, data_dir, ("val",))
    evaluation = prune.CachedEvaluation(task, eval_samples)
    examples = task.example_inputs(EXAMPLE_BATCH)
    return subject, evaluation, examples[0] if len(examples) == 1 else examples


def _title(subject: Subject, evaluation: prune.CachedEvaluation) -> str:
    return f"{subject.label} on {evaluation.name} ({evaluation.count:,} samples, {evaluation.precision})"


def _above(flag: str, value: float, lowest: float) -> None:
    if not (math.isfinite(value) and value > lowest):
        raise TrimkitError(f"{flag} {value} is out of range; give a number > {lowest:g}")


def _layer_kind(layers: str) -> None:
    if layers not in LAYER_KINDS:
        raise TrimkitError(f"--layers {layers!r}: choose {', '.join(LAYER_KINDS)}")


def _names(text: str, what: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise TrimkitError(f"--{what} is empty; give a comma-separated list")
    return names


def explore_command(
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file.")],
    out: Annotated[Path, typer.Option(help="Folder for explore.json and the charts.")],
    weights: WeightsOption = None,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    criteria: Annotated[str, typer.Option(help="Comma-separated criteria to compare.")] = "std,range,mean_abs,max_abs",
    layers: Annotated[str, typer.Option(help="conv, dense or both.")] = "both",
    mode: Annotated[str, typer.Option(help="static or progressive.")] = "progressive",
    max_drop: Annotated[float, typer.Option(help="Metric drop (points) the recommended threshold may cost.")] = 1.0,
    max_gap: Annotated[float, typer.Option(help="Refine until no two neighbouring points differ more.")] = 2.0,
    max_evals: Annotated[int, typer.Option(help="Points per criterion at most.")] = 12,
    eval_samples: SamplesOption = 2000,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Threshold functions of several criteria (Algorithm 2), their AUC, the best one and
    the threshold at the end of its plateau."""
    check_folder_output(out)
    at_least("--max-drop", max_drop, 0.0)
    _above("--max-gap", max_gap, 0.0)
    at_least("--max-evals", max_evals, 2)
    at_least("--eval-samples", eval_samples, 1)
    _layer_kind(layers)
    names = _names(criteria, "criteria")
    for name in names:
        prune.criteria.get(name)
    loaded, evaluation, example = _setup(model, weights, data, data_dir, eval_samples, trust_checkpoint)
    comparison = prune.compare_criteria(loaded.model, example, evaluation, criteria=names, layers=layers, mode=mode,
                                        max_gap=max_gap, max_evals=max_evals, refine_drop=max_drop)
    best = comparison.curves[comparison.best]
    record = {**comparison.to_dict(), "baseline": best.baseline,
              "recommended_threshold": prune.recommend_threshold(best, max_drop), "max_drop": max_drop,
              "layers": layers, "mode": mode, "eval_samples": evaluation.count}
    title = _title(loaded, evaluation)
    record["plots"] = [
        str(plot_threshold_functions(comparison, out / "threshold_functions.png", f"Threshold functions: {title}")),
        str(plot_macs_vs_metric({name: [(p.macs, p.metric) for p in curve.points]
                                 for name, curve in comparison.curves.items()},
                                out / "macs_vs_metric.png", f"MACs against top-1: {title}")),
    ]
    write_text_atomic(out / "explore.json", json.dumps(record, indent=2))
    if as_json:
        print_json(record)
        return
    table = Table(title=f"criteria compared: {title}")
    for column in ("criterion", "AUC", "points", "evaluations"):
        table.add_column(column, justify="left" if column == "criterion" else "right")
    for name, curve in sorted(comparison.curves.items(), key=lambda item: -item[1].auc):
        table.add_row(name + (" (best)" if name == comparison.best else ""), f"{curve.auc:.3f}",
                      str(len(curve.points)), str(curve.evaluations))
    console.print(table)
    console.print(f"recommended threshold for {comparison.best} within {max_drop} points of "
                  f"{best.baseline:.2f} %: {record['recommended_threshold']:.4f}; written to {out}")


def sensitivity_command(
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file.")],
    out: Annotated[Path, typer.Option(help="Folder for sensitivity.json and the charts.")],
    weights: WeightsOption = None,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    sparsities: Annotated[str, typer.Option(help="Comma-separated fractions.")] = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
    criterion: Annotated[str, typer.Option(help="Criterion ranking the channels.")] = "l1",
    layers: Annotated[str, typer.Option(help="conv, dense or both.")] = "both",
    clusters: Annotated[int, typer.Option(help="Groups of similar sensitivity to form.")] = 3,
    max_drop: Annotated[float, typer.Option(help="Predicted drop (points) the suggested ratios may cost.")] = 1.0,
    eval_samples: SamplesOption = 2000,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Prune each channel group alone at each sparsity and measure the metric and MACs."""
    check_folder_output(out)
    at_least("--max-drop", max_drop, 0.0)
    at_least("--clusters", clusters, 1)
    at_least("--eval-samples", eval_samples, 1)
    _layer_kind(layers)
    try:
        levels = [float(s) for s in _names(sparsities, "sparsities")]
    except ValueError:
        raise TrimkitError(f"cannot read --sparsities {sparsities!r}; give fractions such as 0.1,0.5,0.9") from None
    if any(not 0 < s < 1 for s in levels):
        raise TrimkitError(f"sparsities must lie in (0, 1), got {sparsities}")
    prune.criteria.get(criterion)
    loaded, evaluation, example = _setup(model, weights, data, data_dir, eval_samples, trust_checkpoint)
    result = prune.sensitivity(loaded.model, example, evaluation, sparsities=levels, criterion=criterion,
                               layers=layers, progress=True)
    grouped = prune.group_by_sensitivity(result, clusters)
    ratios = prune.suggest_ratios(result, max_drop)
    record = {**result.to_dict(), "clusters": grouped, "suggested_ratios": ratios, "max_drop": max_drop,
              "criterion": criterion, "eval_samples": evaluation.count}
    title = _title(loaded, evaluation)
    record["plots"] = [
        str(plot_sensitivity(result, out / "sensitivity.png", f"Sensitivity: {title}")),
        str(plot_macs_vs_metric({"one group pruned": [(result.macs[g][s], m) for g, v in result.metrics.items()
                                                       for s, m in v.items()]},
                                out / "macs_vs_metric.png", f"MACs against top-1: {title}")),
    ]
    write_text_atomic(out / "sensitivity.json", json.dumps(record, indent=2))
    if as_json:
        print_json(record)
        return
    table = Table(title=f"sensitivity: {title}; baseline {result.baseline:.2f} %")
    table.add_column("group")
    for level in levels:
        table.add_column(f"{level:g}", justify="right")
    table.add_column("suggested", justify="right")
    for group, values in result.metrics.items():
        table.add_row(group, *(f"{values[s]:.1f}" if s in values else "-" for s in levels),
                      f"{ratios.get(group, 0.0):g}")
    console.print(table)
    for index, cluster in enumerate(grouped):
        console.print(f"cluster {index + 1} (mean drop {cluster['mean_drop']:.2f}): {', '.join(cluster['groups'])}")
    for group, reason in result.frozen.items():
        console.print(f"[yellow]frozen[/] {group}: {reason}")
