"""Where a run keeps what: the one statement of the run folder's layout.

``RUN_DIR/`` holds ``recipe.yaml`` (the resolved recipe), ``log.jsonl`` (one record a
line, appended as each stage ends), ``original.pt`` (the model the run received),
``stages/NN-NAME/`` (each stage's ``model.pt``, its checkpoint and files), and at the end
``model.pt``, its ONNX export and ``report.html``. Paths the log names are relative to
the folder, so a run folder can be moved or copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

RECIPE = "recipe.yaml"
LOG = "log.jsonl"
ORIGINAL = "original.pt"
MODEL = "model.pt"
ONNX = "model.onnx"
REPORT = "report.html"
STAGES = "stages"


def stage_folder(index: int, stage: str) -> str:
    """A stage's folder, relative to the run folder: ``stages/02-prune``."""
    return f"{STAGES}/{index:02d}-{stage}"


def in_run(paths: Mapping[str, str], folder: Path | None) -> dict[str, str]:
    """Paths of files in the run folder as paths relative to it (others as they are)."""
    if folder is None:
        return dict(paths)
    result = {}
    for name, path in paths.items():
        try:
            result[name] = str(Path(path).resolve().relative_to(folder.resolve()))
        except ValueError:
            result[name] = str(path)
    return result


def from_run(paths: Mapping[str, str], folder: Path) -> dict[str, str]:
    """The inverse of :func:`in_run`: relative paths under ``folder``."""
    return {name: path if Path(path).is_absolute() else str(folder / path) for name, path in paths.items()}


def locate(folder: Path, name: str) -> Path:
    """A file the log names: as written where it exists, else inside ``folder`` (a run
    folder that was moved keeps its ``stages/...`` layout)."""
    given = Path(name)
    if not given.is_absolute():
        return folder / given
    if given.exists():
        return given
    parts = given.parts
    if STAGES in parts:
        return folder.joinpath(*parts[parts.index(STAGES):])
    return folder / given.name
