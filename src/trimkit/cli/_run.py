"""`trimkit run RECIPE.yaml`: run a recipe's stages into a run folder, and show what it bought."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from trimkit import measure, pipeline, tasks
from trimkit.cli._bench import print_comparison
from trimkit.cli._console import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.record import Measurement
from trimkit.report import write_report
from trimkit.runs import RunLog
from trimkit.tasks import metric_title


def run_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (YAML).")],
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/NAME).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe value: PATH=VALUE, "
                                                           "such as stages.2.ratio=0.4 (repeatable).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out where it stopped.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a recipe: each stage's record is appended to RUN_DIR/log.jsonl as it ends."""
    loaded = pipeline.load_recipe(recipe, overrides or [])
    folder = out or Path("runs") / (loaded.name or recipe.stem)
    say = (lambda text: None) if as_json else console.print
    say(f"run {loaded.name or recipe.stem} -> {folder}/")
    result = pipeline.run_recipe(loaded, folder, resume=resume, progress=True, say=say)
    report = write_report(folder)
    if as_json:
        print_json({"run_dir": str(folder), "report": str(report),
                    "records": [record.to_dict() for record in result.log]})
        return
    print_run(result.log, tasks.kind(loaded.task.kind).task_class.primary_metric)
    exported = result.log.records[-1].details.get("onnx")
    console.print(f"run folder: {folder}/ (recipe.yaml, log.jsonl, model.pt{', ' + exported if exported else ''})")
    console.print(f"report: {report}")


def print_run(log: RunLog, metric: str) -> None:
    """The stage table (``metric``: the task's primary one), then each comparison a stage
    made, from the log alone."""
    records = list(log)
    table = Table(title="stages", box=box.SIMPLE, padding=(0, 1))
    for column in ("#", "stage", "params", "MACs", metric_title(metric), "sizes", "s"):
        table.add_column(column, justify="left" if column in ("stage", "sizes") else "right")
    for record in records:
        figures = record.measurement
        table.add_row("" if record.index < 0 else str(record.index), record.stage, _count(figures.params),
                      _count(figures.macs), _metric(figures, metric), _sizes(figures), f"{record.seconds:.1f}")
    console.print(table)
    for record in records:
        for comparison in record.details.get("comparisons", []):
            print_comparison(measure.Comparison.from_dict(comparison))


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _metric(figures: Measurement, name: str = "top1") -> str:
    metric = figures.metric(name)
    return "-" if metric is None else f"{metric.value:.2f}"


def _sizes(figures: Measurement) -> str:
    return ", ".join(f"{kind} {size:,} B" for kind, size in figures.size_bytes.items())


