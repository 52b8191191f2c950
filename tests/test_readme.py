"""The README as a newcomer follows it: every command block in order, then every Python
block, in a fresh folder beside the shared data, at tiny budgets (epochs, samples and
timing cut down; nothing else changed)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)
TINY = [(r"--epochs \d+", "--epochs 1"), (r"--finetune-epochs \d+", "--finetune-epochs 1"),
        (r"--eval-samples \d+", "--eval-samples 200"), (r"--samples \d+", "--samples 200"),
        (r"epochs=\d+", "epochs=1"), (r"\.subset\(\d+\)", ".subset(200)")]
EXTRA = {"bench": ["--min-time", "0.05"], "compare": ["--min-time", "0.05"], "explore": ["--max-evals", "4"],
         "sensitivity": ["--sparsities", "0.5"], "quantize": ["--calibration-images", "64"]}


def blocks(kind: str) -> list[str]:
    found = [text for language, text in BLOCK.findall((ROOT / "README.md").read_text()) if language == kind]
    return found[1:] if kind == "bash" else found  # the first block is make demo / make test


def commands(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith(("source ", "make "))]


def tiny(line: str) -> list[str]:
    for pattern, replacement in TINY:
        line = re.sub(pattern, replacement, line)
    words = shlex.split(line)
    assert words[0] == "trimkit", line
    words += EXTRA.get(words[1], [])
    if words[1] == "search":
        words += [item for value in ("task.train_samples=128", "task.val_samples=100", "stages.0.epochs=1",
                                     "search.n_trials=2", "search.epochs=0", "search.latency.min_time_s=0.05")
                  for item in ("--set", value)]
    if words[1] == "run":
        recipe = yaml.safe_load((ROOT / words[2]).read_text())
        if recipe["task"].get("kind") == "tracking":
            words += [item for value in ("stages.0.batch_size=4", "task.tracking.pairs_per_epoch=8",
                                         "task.tracking.val_pairs=4", "task.tracking.stills_limit=8",
                                         "task.tracking.eval_frames=3") for item in ("--set", value)]
        else:
            words += ["--set", "task.train_samples=256", "--set", "task.val_samples=200"]
        for index, stage in enumerate(recipe["stages"]):
            if "epochs" in stage:
                words += ["--set", f"stages.{index}.epochs=1"]
            if stage["stage"] in ("compare", "measure"):
                words += ["--set", f"stages.{index}.min_time_s=0.05"]
    return [sys.executable, "-m", "trimkit.cli", *words[1:]]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A folder laid out as a fresh clone is: examples/ inside, ../shared/data beside."""
    base = tmp_path_factory.mktemp("readme")
    repo = base / "repo"
    repo.mkdir()
    (repo / "examples").symlink_to(ROOT / "examples")
    if SHARED_DATA.exists():
        (base / "shared").symlink_to(SHARED_DATA.parent)
    return repo


def test_every_command_of_the_readme_runs_in_order(clone):
    has_shared = SHARED_DATA.exists()
    ran = []
    for block in blocks("bash"):
        for line in commands(block):
            if not has_shared and any(name in line for name in ("../shared", "cifar10", "camvid", "siamfc")):
                continue
            done = subprocess.run(tiny(line), cwd=clone, capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
            assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr, line
            ran.append(line)
    assert len(ran) >= (20 if has_shared else 12)
    assert (clone / "runs" / "lenet5-run" / "report.html").exists()


def test_every_python_snippet_of_the_readme_runs_in_order(clone):
    if not (clone / "runs" / "lenet5.pt").exists():
        pytest.skip("needs the files the command blocks make (run the whole module)")
    has_shared = SHARED_DATA.exists()
    for block in blocks("python"):
        if not has_shared and ("../shared" in block or "cifar10" in block):
            continue
        code = block
        for pattern, replacement in TINY:
            code = re.sub(pattern, replacement, code)
        with contextlib.chdir(clone):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
