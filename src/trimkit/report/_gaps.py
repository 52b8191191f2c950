"""What the run does not have, said in words instead of drawn as empty charts; and what
of its folder is missing or damaged."""

from __future__ import annotations

from trimkit.report._environment import environments
from trimkit.report._folder import ReportRun
from trimkit.report._markup import esc, section


def lacks(run: ReportRun) -> list[str]:
    """Each kind of figure the report can show that this run's log does not hold."""
    records = run.records
    details = [r.details for r in records]
    found: list[str] = []
    if records and not any(r.stage == "final" for r in records):
        found.append("no final record: the run did not finish (continue it with `trimkit run ... --resume`)")
    if not any(r.measurement.metrics for r in records):
        found.append("no task metric")
    if not any(r.measurement.latency for r in records) and not any(d.get("comparisons") for d in details):
        found.append("no latency measured (a measure or compare stage times the model)")
    if not environments(run):
        found.append("no environment record (measure and compare stages log the CPU, threads and load)")
    if not any(d.get("comparisons") for d in details):
        found.append("no comparison of models side by side (a compare stage makes one)")
    if not any(isinstance(d.get("layers"), dict) for d in details):
        found.append("no structured pruning: no channels per layer")
    chosen = [d.get("chosen") for d in details if isinstance(d.get("chosen"), dict)]
    if not any(c.get("by") == "explore" for c in chosen):
        found.append("no exploration: no threshold functions (prune with choose: explore)")
    if not any(c.get("by") == "sensitivity" for c in chosen):
        found.append("no sensitivity analysis (prune with choose: sensitivity)")
    if not any(d.get("mode") in ("ptq", "qat") for d in details):
        found.append("no quantisation")
    if not any(isinstance(d.get("history"), list) and d.get("history") for d in details):
        found.append("no training or fine-tuning curves")
    return found


def gaps_section(run: ReportRun, problems: list[str]) -> str:
    parts = []
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems)
        parts.append(f'<h3>Missing or damaged</h3><ul class="problems">{items}</ul>')
    missing = lacks(run)
    if missing:
        items = "".join(f"<li>{esc(m)}</li>" for m in missing)
        parts.append(f'<h3>Not in this run</h3><ul class="lacks">{items}</ul>')
    if not parts:
        parts.append("<p>The run has every kind of figure this report can show, and its folder is whole.</p>")
    return section("gaps", "What this run lacks", "".join(parts))
