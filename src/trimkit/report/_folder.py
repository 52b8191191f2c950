"""Read a run folder for the report: the resolved recipe and the log, and what of
them is missing or damaged. Nothing here loads a model or measures anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trimkit.errors import TrimkitError
from trimkit.pipeline import StageRecord, read_log
from trimkit.report._source import Ref

LOG = "log.jsonl"
RECIPE = "recipe.yaml"


@dataclass
class RunFolder:
    """The run as its folder holds it. ``records[i]`` is the log's i-th record; ``refs[i]``
    is the same record as a :class:`Ref` tree, so figures can say where they came from.
    ``problems`` lists what is missing or damaged, in words for the page."""

    path: Path
    records: list[StageRecord]
    refs: list[Ref]
    recipe_text: str | None = None
    recipe: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def stage_dir(self, record: StageRecord) -> Path:
        """Where the runner keeps a stage's files: ``stages/NN-NAME/``."""
        return self.path / "stages" / f"{record.index:02d}-{record.stage}"

    def locate(self, name: str) -> Path:
        """A file the log names: as written where it exists, else inside this folder (a
        run folder that was moved or copied keeps its ``stages/...`` layout)."""
        given = Path(name)
        if given.is_absolute():
            if given.exists():
                return given
            parts = given.parts
            if "stages" in parts:
                return self.path.joinpath(*parts[parts.index("stages"):])
            return self.path / given.name
        return self.path / given

    def ref(self, position: int) -> Ref:
        return self.refs[position]


def read_run(run_dir: str | Path) -> RunFolder:
    """The run in ``run_dir``; a folder without ``log.jsonl`` is refused."""
    folder = Path(run_dir)
    log = folder / LOG
    if not folder.exists():
        raise TrimkitError(f"{folder} does not exist; give the run folder that `trimkit run` wrote (its --out)")
    if not folder.is_dir():
        raise TrimkitError(f"{folder} is a file, not a run folder; give the folder that `trimkit run` wrote "
                           "(its --out)")
    if not log.is_file():
        raise TrimkitError(f"{folder} is not a run folder (no {LOG}); give the folder that `trimkit run` wrote "
                           "(its --out)")
    try:
        records = list(read_log(log))
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise TrimkitError(f"{log} is not text; the log is damaged, run the recipe again") from None
    run = RunFolder(folder, records, [Ref(record.to_dict(), (index,)) for index, record in enumerate(records)])
    if len(lines) > len(records):
        run.problems.append(f"the last line of {LOG} is torn (the run was stopped while writing it); "
                            f"this report shows the {len(records)} complete records before it")
    if not records:
        run.problems.append(f"{LOG} holds no records: the run stopped before it measured the input model")
    _read_recipe(run)
    return run


def _read_recipe(run: RunFolder) -> None:
    path = run.path / RECIPE
    if not path.is_file():
        run.problems.append(f"{RECIPE} is missing: the recipe cannot be shown, and stages are named from the log")
        return
    try:
        run.recipe_text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        run.problems.append(f"{RECIPE} is not text: the recipe cannot be shown")
        return
    except OSError as error:
        run.problems.append(f"{RECIPE} cannot be read ({error.strerror or error}): the recipe cannot be shown")
        return
    try:
        loaded = yaml.safe_load(run.recipe_text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        run.problems.append(f"{RECIPE} is not valid YAML ({problem}): it is shown as written")
        return
    if isinstance(loaded, dict):
        run.recipe = loaded
    else:
        run.problems.append(f"{RECIPE} does not hold a recipe (a mapping); it is shown as written")


def recipe_stage(run: RunFolder, index: int) -> dict[str, Any] | None:
    """The recipe's entry for stage ``index``, where the recipe has one."""
    stages = (run.recipe or {}).get("stages")
    if isinstance(stages, list) and 0 <= index < len(stages) and isinstance(stages[index], dict):
        return stages[index]
    return None

