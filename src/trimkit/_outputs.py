"""Output paths checked before any work starts, and commands that write several files
writing all of them or none."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from trimkit.errors import TrimkitError


def check_output(path: Path, *, flag: str = "--out", example: str = "model.pt") -> Path:
    """``path`` can be written as a file: not a folder, under a folder (or a place where
    one can be made) that this process can write to."""
    if path.is_dir():
        raise TrimkitError(f"{flag} {path} is a folder; give a file path, such as {path / example}")
    _check_writable(path.parent, flag, path)
    return path


def check_folder_output(path: Path, *, flag: str = "--out") -> Path:
    """``path`` can be made (or is) a folder this process can write in."""
    if path.exists() and not path.is_dir():
        raise TrimkitError(f"{flag} {path} is a file; give a folder path")
    _check_writable(path if path.exists() else path.parent, flag, path)
    return path


def _check_writable(folder: Path, flag: str, target: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise TrimkitError(f"{flag} {target}: {existing} is a file, so no folder can be made there; "
                           "choose another path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".trimkit-write-test.", dir=existing)
    except OSError as error:
        raise TrimkitError(f"{flag} {target}: cannot write in {existing} ({error.strerror or error}); "
                           "choose a writable folder") from None
    os.close(handle)
    os.unlink(probe)


@contextlib.contextmanager
def all_or_nothing(*paths: Path) -> Iterator[None]:
    """On any error, remove those of ``paths`` that did not exist before: a command that
    fails leaves no file of its own behind (side files too)."""
    before = {Path(p) for p in paths if Path(p).exists()}
    try:
        yield
    except BaseException:
        for path in paths:
            if Path(path) not in before:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    Path(path).unlink()
        raise
