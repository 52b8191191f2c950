"""One self-contained HTML report per run folder.

The report reads ``recipe.yaml``, ``log.jsonl`` and the files the log names, and
nothing else: no model is loaded and nothing is measured again. Every figure on the
page is the log's own number, formatted for reading, with its full value in
``data-value`` and its place in the log in ``data-src`` (or ``data-ratio`` /
``data-diff`` / ``data-sum`` for the few it derives). Charts are inline SVG; style and
script are inline; a content security policy forbids any fetch, so the file opens
anywhere, offline, on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from trimkit._atomic import atomic_path
from trimkit.errors import TrimkitError
from trimkit.report._compare import comparisons_block
from trimkit.report._environment import environment_block
from trimkit.report._files import named_files
from trimkit.report._folder import ReportRun, read_run
from trimkit.report._gaps import gaps_section
from trimkit.report._layers import per_layer_section
from trimkit.report._markup import esc, note, section
from trimkit.report._page import page
from trimkit.report._recipe import recipe_section
from trimkit.report._stages import anchor, stages_section
from trimkit.report._summary import summary_section
from trimkit.runs import REPORT


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``),
    whole or not at all; return its path. A folder without ``log.jsonl`` is refused."""
    run = read_run(run_dir)
    target = Path(out) if out is not None else run.path / REPORT
    if target.is_dir():
        raise TrimkitError(f"{target} is a folder; give a file name for the report, such as {target / REPORT}")
    document = render_report(run)
    with atomic_path(target) as temporary:
        temporary.write_text(document, encoding="utf-8")
    return target


def render_report(run: ReportRun) -> str:
    """The report of ``run`` as one HTML document."""
    problems = list(run.problems)
    sections = [
        ("summary", "Summary", lambda: summary_section(run)),
        ("comparisons", "Comparisons", lambda: _comparisons_section(run)),
        ("environment", "Environment", lambda: _environment_section(run)),
        ("per-layer", "Per-layer latency", lambda: per_layer_section(run)),
        ("stages", "Stages", lambda: stages_section(run)),
        ("recipe", "Recipe", lambda: recipe_section(run)),
        ("files", "Files", lambda: _files_section(run, problems)),
    ]
    drawn = [(anchor_, title, _guarded(anchor_, title, build, problems)) for anchor_, title, build in sections]
    drawn.append(("gaps", "What this run lacks", gaps_section(run, problems)))
    links = [(anchor_, title) for anchor_, title, html in drawn if html]
    banner = ""
    if problems:
        banner = (f'<p class="problems-banner">This run folder is incomplete or damaged ({len(problems)} '
                  f'{"problem" if len(problems) == 1 else "problems"}): see <a href="#gaps">What this run '
                  "lacks</a>.</p>")
    return page(f"trimkit run report: {_name(run)}", _subtitle(run), banner, links, [html for _, _, html in drawn])


def _guarded(anchor_: str, title: str, build: Callable[[], str], problems: list[str]) -> str:
    """A section, or a note saying why it could not be drawn: a log written by another
    version of trimkit may hold details in a shape this report does not know."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        problems.append(f"the {title} section could not be drawn: the log's details have an unexpected shape "
                        f"({type(error).__name__}: {error})")
        return section(anchor_, title, note(f"This section could not be drawn ({esc(type(error).__name__)}); "
                                            "see “What this run lacks”.", "warn"))


def _name(run: ReportRun) -> str:
    name = (run.recipe or {}).get("name")
    return str(name) if name else run.path.resolve().name


def _subtitle(run: ReportRun) -> str:
    recipe = run.recipe or {}
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    task = recipe.get("task") if isinstance(recipe.get("task"), dict) else {}
    parts = [f"run folder <code>{esc(run.path.resolve())}</code>", f"{len(run.records)} records in log.jsonl"]
    if model.get("name"):
        parts.insert(0, f"model <b>{esc(model['name'])}</b>" + (f" on <b>{esc(task['data'])}</b>"
                                                                 if task.get("data") else ""))
    if "seed" in recipe:
        parts.append(f"seed {esc(recipe['seed'])}")
    return " · ".join(parts)


def _comparisons_section(run: ReportRun) -> str:
    blocks = []
    for position, record in enumerate(run.records):
        details = run.ref(position).get("details")
        block = comparisons_block(details) if details is not None else ""
        if block:
            blocks.append(f'<h3><a href="#{anchor(position)}">{esc(record.index)}. {esc(record.stage)}</a></h3>{block}')
    if not blocks:
        return ""
    return section("comparisons", "Comparisons", "".join(blocks),
                   "Models timed side by side, interleaved in one run; ratios against the first model (p50 below 1: "
                   "faster). The same figures as the table `trimkit run` prints.")


def _environment_section(run: ReportRun) -> str:
    block = environment_block(run)
    if not block:
        return ""
    return section("environment", "Environment", block, "Where the timings were taken, as each measure or compare "
                                                        "stage recorded it.")


def _files_section(run: ReportRun, problems: list[str]) -> str:
    listing = named_files(run, problems)
    if not listing:
        return ""
    return section("files", "Files", listing, "The model files and artifacts the log names.")
