"""Where data sets live: an explicit folder, $TRIMKIT_DATA, or the usual places."""

from __future__ import annotations

import os
from pathlib import Path

from trimkit.errors import TrimkitError

ENV_VARIABLE = "TRIMKIT_DATA"


def candidate_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched in order: ``data_dir`` if given (and nothing else), else
    $TRIMKIT_DATA, ./data and ../shared/data (the trimkit development layout)."""
    if data_dir is not None:
        return [Path(data_dir)]
    found = []
    if os.environ.get(ENV_VARIABLE):
        found.append(Path(os.environ[ENV_VARIABLE]))
    found += [Path("data"), Path("..") / "shared" / "data"]
    return found


def find_first(data_dir: str | os.PathLike | None, dataset: str, relative_paths: list[str]) -> Path:
    """The first existing ``relative_path`` under the candidate folders, or an error
    that says what was looked for, where, and how to point trimkit at it."""
    folders = candidate_dirs(data_dir)
    for folder in folders:
        for relative in relative_paths:
            path = folder / relative
            if path.exists():
                return path
    looked = ", ".join(str(f) for f in folders)
    wanted = " or ".join(relative_paths)
    raise TrimkitError(
        f"data set {dataset!r} not found: looked for {wanted} in {looked}; "
        f"pass --data-dir DIR or set {ENV_VARIABLE}=DIR"
    )
