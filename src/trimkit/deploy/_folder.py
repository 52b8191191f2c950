"""The deployment folder: the chosen file (``model.onnx``, or ``model.xml`` and
``model.bin``) and ``manifest.json``, written whole or not at all: into a staging folder
beside the target, then renamed over it. Only an earlier deployment (or an empty folder)
is replaced."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trimkit._outputs import check_folder_output
from trimkit.deploy._loader import MANIFEST
from trimkit.errors import TrimkitError


def check_deployment_output(out: str | os.PathLike) -> Path:
    """``out`` can take a deployment: new, empty, or an earlier deployment; checked
    before any work starts."""
    out = check_folder_output(Path(out))
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise TrimkitError(f"--out {out} holds files that are not a deployment; choose a new or empty folder")
    return out


def artifact_name(source: Path) -> str:
    return "model.xml" if source.suffix == ".xml" else "model.onnx"


def write_deployment(out: str | os.PathLike, source: Path, manifest: dict[str, Any]) -> Path:
    """Copy ``source`` (an ONNX file, or an IR with its ``.bin``) into ``out`` as
    ``model.*`` beside ``manifest.json``; an earlier deployment there is replaced."""
    out = check_deployment_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # a folder as mkdir makes it, not mkdtemp's private one
        name = artifact_name(source)
        shutil.copyfile(source, staging / name)
        if source.suffix == ".xml":
            shutil.copyfile(source.with_suffix(".bin"), staging / "model.bin")
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is moved aside first and removed
    once the new folder is in place."""
    if not out.exists():
        os.rename(staging, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(aside)
    os.rename(out, aside)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)
