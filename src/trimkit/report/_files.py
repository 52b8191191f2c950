"""The files of the run folder the log names (model files, artifacts, the final ONNX),
and whether each is still there."""

from __future__ import annotations

from pathlib import Path

from trimkit.report._folder import ReportRun
from trimkit.report._markup import esc, table


def named_files(run: ReportRun, problems: list[str]) -> str:
    """The model files and artifacts the log names, and whether each is still there."""
    rows: list[tuple[str, str, str]] = []
    seen: set[Path] = set()
    for record in run.records:
        names = [("model file", record.model_file)] if record.model_file else []
        artifacts = record.details.get("artifacts")
        if isinstance(artifacts, dict):
            names += [(f"artifact {key}", value) for key, value in artifacts.items() if isinstance(value, str)]
        if record.stage == "final" and isinstance(record.details.get("onnx"), str):
            names.append(("final ONNX", record.details["onnx"]))
        for kind, name in names:
            path = run.locate(name)
            if path in seen:
                continue
            seen.add(path)
            shown = path.relative_to(run.path).as_posix() if path.is_relative_to(run.path) else str(path)
            present = path.is_file()
            if not present:
                problems.append(f"{shown} ({kind}, named by the {record.stage} record) is missing")
            rows.append((esc(shown), esc(kind), "present" if present else '<span class="bad">missing</span>'))
    if not rows:
        return ""
    return table(["file", "what", "in the folder"], rows)
