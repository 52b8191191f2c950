"""`trimkit search RECIPE.yaml`: trials of a recipe's parameters in an Optuna study; the
best trials (or the Pareto front), results.json and plots in the run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from trimkit import search
from trimkit._outputs import check_folder_output
from trimkit._progress import progress_bar
from trimkit.cli._console import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.errors import TrimkitError


def search_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (YAML) with a search: block.")],
    storage: Annotated[str | None, typer.Option(help="Study storage URL: postgresql://USER@HOST/DB for workers on "
                                                   "many machines, journal:FILE (default: RUN_DIR/study.journal).")]
    = None,
    study_name: Annotated[str | None, typer.Option(help="Study to create or join (default: the recipe's name).")]
    = None,
    n_trials: Annotated[int | None, typer.Option(help="Ended trials the study should hold, counted over all "
                                                    "workers (default: search.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no trial after this many seconds.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/NAME).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe value: PATH=VALUE, such "
                                                           "as search.n_trials=8 (repeatable).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the study (it must exist); trials a killed worker left are "
                                         "run again from where they stopped.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Search a recipe's parameters with Optuna: each trial runs the recipe; latency, metric and size are measured."""
    if n_trials is not None and n_trials < 1:
        raise TrimkitError(f"--n-trials {n_trials}: give at least 1")
    if timeout is not None and timeout <= 0:
        raise TrimkitError(f"--timeout {timeout}: give a number of seconds above 0")
    loaded = search.load_search_recipe(recipe, overrides or [])
    name = search.study.recipe_name(loaded)
    folder = out or Path("runs") / name
    check_folder_output(folder)
    url = search.storage_url(storage, folder)
    study_name = study_name or name
    if resume and not search.study.study_exists(url, study_name):
        raise TrimkitError(f"no study {study_name!r} in {url} to resume; drop --resume to start it")
    say = (lambda text: None) if as_json else console.print
    total = n_trials or loaded.spec.n_trials
    say(f"search {study_name}: {len(loaded.parameters)} parameters, {loaded.spec.method}, {total} trials -> "
        f"{folder}/ (storage {url})")
    seen: set[int] = set()
    with progress_bar(True) as bar:
        task = bar.add_task("search", total=total, stats="")

        def on_change(study) -> None:
            counted = search.counted_trials(study)
            for trial in counted:
                if trial.number not in seen:
                    seen.add(trial.number)
                    if not as_json:
                        bar.console.print(_trial_line(trial, study.user_attrs.get("metric")))
            bar.update(task, completed=min(len(counted), total), stats=_best_so_far(study))

        started = time.perf_counter()
        result = search.run_search(loaded, folder, storage=storage, study_name=study_name, n_trials=n_trials,
                                   timeout=timeout, say=say, on_change=on_change)
    record = search.write_results(result.study, folder, storage=result.storage)
    record["ran_here"] = result.ran
    record["seconds"] = time.perf_counter() - started
    if as_json:
        print_json(search.finite(record))
        return
    print_best(record)
    counts = record["counts"]
    console.print(f"{counts['ended']} trials ended ({counts['complete']} complete, {counts['feasible']} feasible, "
                  f"{counts['failed']} failed), {len(result.ran)} here in {record['seconds']:.0f} s")
    console.print(f"results: {folder / search.RESULTS_FILE}; plots: {', '.join(record['plots'].values()) or 'none'}")
    console.print(f"dashboard: optuna-dashboard {_dashboard_arg(result.storage)}")


def _dashboard_arg(url: str) -> str:
    return url.removeprefix("journal:") if search.is_file_store(url) else url


def _trial_line(trial, metric: str | None = None) -> str:
    row = search.trial_row(trial)
    if row["state"] != "complete":
        return f"trial {row['number']}: {row['state']}" + (f" ({row['error']})" if row["error"] else "")
    return (f"trial {row['number']}: {_overrides(row['overrides'])} -> {_figures(row, metric)}"
            + ("" if row["feasible"] else " [yellow](infeasible)[/]")
            + (f" [yellow]({escape(row['latency_note'])})[/]" if row["latency_note"] else ""))


def _best_so_far(study) -> str:
    best = search.best_trials(study, top=1)
    if not best:
        return "no feasible trial yet"
    if len(study.directions) > 1:
        return f"Pareto front: {len(best)} trials"
    return f"best {best[0].values[0]:.4g} (trial {best[0].number})"


def _overrides(overrides: dict) -> str:
    return escape(", ".join(f"{key}={_number(value)}" for key, value in overrides.items()))


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _figures(row: dict, metric: str | None = None) -> str:
    parts = []
    if row["latency_ms"] is not None:
        source = " (table)" if row["latency_source"] == "table" else ""
        parts.append(f"{row['latency_ms']:.4f} ms{source}")
    if row["metric"] is not None:
        parts.append(f"{metric or 'metric'} {row['metric']:.2f}")
    if row["macs"] is not None:
        parts.append(f"{row['macs']:,} MACs")
    if row["bytes"] is not None:
        parts.append(f"{row['bytes']:,} B")
    return ", ".join(parts)


def print_best(record: dict) -> None:
    """The best trials (one objective) or the Pareto front (several), from results.json's record;
    where latencies are the table's estimates, also the measured latency and the estimate's error."""
    several = len(record["directions"]) > 1
    table = Table(title="Pareto front" if several else "best trials", box=box.SIMPLE, padding=(0, 1))
    names = record.get("objectives") or []
    baseline = record.get("baseline") or {}
    estimated = any(row.get("latency_source") == "table" for row in [*record["best"], baseline])
    latency = ("latency ms (table)", "measured ms", "error") if estimated else ("latency ms",)
    for column in ("#", "overrides", "MACs", "bytes", *latency, record.get("metric") or "metric", "drop", *names):
        table.add_column(column, justify="left" if column == "overrides" else "right")
    for row in record["best"]:
        table.add_row(str(row["number"]), _overrides(row["overrides"]), _count(row["macs"]), _count(row["bytes"]),
                      *_latencies(row, estimated), _float(row["metric"], 2), _float(row["drop"], 2),
                      *(_float(v, 4) for v in row["values"] or []))
    if baseline:
        table.add_row("base", "(no change)", _count(baseline.get("macs")), _count(baseline.get("bytes")),
                      *_latencies(baseline, estimated), _float(baseline.get("metric"), 2), "0.00",
                      *("" for _ in names))
    console.print(table)
    if estimated:
        settings = (record.get("latency_table") or {}).get("settings")
        console.print(f"latency ms (table): the latency table's estimate ({escape(str(settings))}); measured ms: "
                      "the export timed; error: (estimate - measured) / measured")
    if not record["best"]:
        console.print("[yellow]no feasible trial[/]: loosen search.constraints or search wider")


def _latencies(row: dict, estimated: bool) -> list[str]:
    if not estimated:
        return [_float(row.get("latency_ms"), 4)]
    error = row.get("latency_estimate_error")
    return [_float(row.get("latency_estimate_ms"), 4), _float(row.get("latency_measured_ms"), 4),
            "-" if error is None else f"{100 * error:+.1f} %"]


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def _float(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
