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
    warnings, images = [], []
    for path in sorted(set(found) | set(expected)):
        image, problem = _embed(path, path.relative_to(run.path).as_posix())
        if problem:
            problems.append(problem)
            warnings.append(f'<p class="warn">{esc(problem)}</p>')
        else:
            images.append(image)
    shown = "".join(warnings)
    if images:
        shown += (f'<details class="images"><summary>Charts the stage wrote ({len(images)})</summary>'
                  f'{"".join(images)}</details>')
    return shown


def _embed(path: Path, relative: str) -> tuple[str, str]:
    """(the image as a figure, "") for a readable PNG; ("", the problem in words) otherwise."""
    if not path.exists():
        return "", f"{relative} is missing (the stage's own chart; the report draws the same figures from the log)"
    try:
        data = path.read_bytes()
    except OSError as error:
        return "", f"{relative} cannot be read ({error.strerror or error}); it is left out"
    if not data.startswith(PNG_MAGIC):
        return "", f"{relative} is not a PNG image; it is left out"
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure class="png"><img alt="{esc(relative)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{esc(relative)}, as the stage drew it</figcaption></figure>", "")


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
