"""`trimkit report RUN_DIR`: one self-contained HTML page of a run, from its folder alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trimkit.cli._console import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.report import write_report


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (the --out of `trimkit run`).")],
    out: Annotated[Path | None, typer.Option(help="Report file (default: RUN_DIR/report.html).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write an HTML report of a run: summary, stages, charts and comparisons, read from
    recipe.yaml and log.jsonl (no model is loaded, nothing is measured again)."""
    path = write_report(run_dir, out)
    if as_json:
        print_json({"report": str(path)})
        return
    console.print(str(path), soft_wrap=True)
