"""The README as a newcomer follows it: every command block, each in a fresh folder
beside the shared data after the earlier commands that make the files it reads, then
every Python block, at tiny budgets (epochs, samples and timing cut down; nothing else
changed). Blocks are tests of their own, so they run side by side."""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import SHARED_DATA
from trimkit.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)
TINY = [(r"--epochs \d+", "--epochs 1"), (r"--finetune-epochs \d+", "--finetune-epochs 1"),
        (r"--eval-samples \d+", "--eval-samples 200"), (r"--samples \d+", "--samples 200"),
        (r"epochs=\d+", "epochs=1"), (r"\.subset\(\d+\)", ".subset(200)")]
EXTRA = {"bench": ["--min-time", "0.05"], "compare": ["--min-time", "0.05"], "explore": ["--max-evals", "4"],
         "sensitivity": ["--sparsities", "0.5"], "quantize": ["--calibration-images", "64"],
         "deploy": ["--min-time", "0.05", "--samples", "200", "--calibration-samples", "64"]}


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


def _clone(base: Path) -> Path:
    """A folder laid out as a fresh clone is: examples/ inside, ../shared/data beside."""
    repo = base / "repo"
    repo.mkdir()
    (repo / "examples").symlink_to(ROOT / "examples")
    if SHARED_DATA.exists():
        (base / "shared").symlink_to(SHARED_DATA.parent)
    return repo


def _needs_shared(line: str) -> bool:
    return any(name in line for name in ("../shared", "cifar10", "camvid", "siamfc"))


def _outputs(line: str) -> list[str]:
    words = shlex.split(line)
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--out"]


def _inputs(text: str) -> set[str]:
    return set(re.findall(r"runs/[\w./-]+", text)) - set(_outputs(text))


def _prerequisites(text: str, earlier: list[str]) -> list[str]:
    """The earlier README commands that make the files ``text`` reads (and theirs), in order."""
    chosen: set[int] = set()
    wanted = list(_inputs(text))
    while wanted:
        path = wanted.pop()
        maker = next((i for i in reversed(range(len(earlier))) if any(
            path == out or path.startswith(out.rstrip("/") + "/") for out in _outputs(earlier[i]))), None)
        if maker is not None and maker not in chosen:
            chosen.add(maker)
            wanted += _inputs(earlier[maker])
    return [earlier[i] for i in sorted(chosen)]


def _run(line: str, clone: Path) -> None:
    """One command as the README writes it (at its tiny budget), in ``clone``: in this
    process, as ``trimkit`` runs it (the entry point itself is tested in tests/cli), so
    that each command does not pay for importing torch again."""
    with contextlib.chdir(clone):
        done = runner.invoke(app, tiny(line)[3:])
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise AssertionError(f"{line}: {done.exception!r}\n{done.output[-2000:]}") from done.exception
    assert done.exit_code == 0, f"{line}\n{done.output[-2000:]}"


BASH = [commands(block) for block in blocks("bash")]


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """The files earlier README commands make, each command run once per test process in a
    clone of its own, then copied into the clone of each block that reads them."""
    clone = _clone(tmp_path_factory.mktemp("readme-prerequisites"))
    ran: set[str] = set()

    def provide(lines: list[str], into: Path) -> None:
        for line in lines:
            if line not in ran:
                _run(line, clone)
                ran.add(line)
            for out in _outputs(line):
                target = into / out
                target.parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if (clone / out).is_dir() else shutil.copy2
                copy(clone / out, target)

    return provide


@pytest.mark.parametrize("index", range(len(BASH)), ids=[f"block{i + 1}" for i in range(len(BASH))])
def test_a_command_block_of_the_readme_runs_as_written(index, tmp_path, made):
    """Each block's commands in order, in a fresh clone holding what the earlier README
    commands make of the files the block reads (a newcomer has run those already)."""
    clone = _clone(tmp_path)
    earlier = [line for block in BASH[:index] for line in block]
    made(_prerequisites("\n".join(BASH[index]), earlier), clone)
    ran = [line for line in BASH[index] if SHARED_DATA.exists() or not _needs_shared(line)]
    for line in ran:
        _run(line, clone)
    assert ran or not SHARED_DATA.exists()
    if any("lenet5-run" in line for line in BASH[index]):
        assert (clone / "runs" / "lenet5-run" / "report.html").exists()


def test_the_readme_shows_its_commands():
    assert sum(len(block) for block in BASH) >= 25 and any("trimkit run" in line for block in BASH for line in block)


def test_every_python_snippet_of_the_readme_runs_in_order(tmp_path, made):
    clone = _clone(tmp_path)
    has_shared = SHARED_DATA.exists()
    snippets = [block for block in blocks("python") if has_shared or not ("../shared" in block or "cifar10" in block)]
    made(_prerequisites("\n".join(snippets), [line for block in BASH for line in block]), clone)
    for block in snippets:
        code = block
        for pattern, replacement in TINY:
            code = re.sub(pattern, replacement, code)
        with contextlib.chdir(clone):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
