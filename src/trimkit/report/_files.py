"""Files of the run folder the report embeds or lists: a stage's PNG charts (embedded
as base64, so the page stays one file) and the model files the log names."""

from __future__ import annotations

import base64
from pathlib import Path

from trimkit.pipeline import StageRecord
from trimkit.report._folder import RunFolder
from trimkit.report._markup import esc, table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# charts a stage writes by convention, though its record does not name them
EXPECTED_PNGS = {"explore": ("threshold_functions.png",)}


def stage_images(run: RunFolder, record: StageRecord, problems: list[str]) -> str:
    """The PNGs in the stage's folder, each embedded; an expected one that is missing
    or is not a PNG is added to ``problems`` and named on the page."""
    folder = run.stage_dir(record)
    chosen = record.details.get("chosen")
    by = chosen.get("by") if isinstance(chosen, dict) else None
    expected = [folder / name for name in EXPECTED_PNGS.get(by or "", ())]
    found = sorted(folder.glob("*.png")) if folder.is_dir() else []
    parts = []
    for path in sorted(set(found) | set(expected)):
        relative = path.relative_to(run.path).as_posix()
        data = path.read_bytes() if path.is_file() else None
        if data is None:
            problems.append(f"{relative} is missing (the stage's own chart; the report draws the same figures "
                            "from the log)")
            parts.append(f'<p class="warn">{esc(relative)} is missing.</p>')
        elif not data.startswith(PNG_MAGIC):
            problems.append(f"{relative} is not a PNG image; it is left out")
            parts.append(f'<p class="warn">{esc(relative)} is not a PNG image.</p>')
        else:
            encoded = base64.b64encode(data).decode("ascii")
            parts.append(f'<figure class="png"><img alt="{esc(relative)}" src="data:image/png;base64,{encoded}">'
                         f'<figcaption>{esc(relative)}, as the stage drew it</figcaption></figure>')
    if not parts:
        return ""
    return f'<details class="images"><summary>Charts the stage wrote ({len(parts)})</summary>{"".join(parts)}</details>'


def named_files(run: RunFolder, problems: list[str]) -> str:
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
