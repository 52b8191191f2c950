"""A run folder as its files hold it: the resolved recipe and the log, and what of them
is missing or damaged, for readers that must not load a model (the report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trimkit.errors import TrimkitError
from trimkit.runs._baseline import baseline_position
from trimkit.runs._layout import LOG, RECIPE, locate, stage_folder
from trimkit.runs._log import StageRecord, read_log


@dataclass
class RunFolder:
    """The run as its folder holds it; ``problems`` lists what is missing or damaged, in
    words a page can show."""

    path: Path
    records: list[StageRecord]
    recipe_text: str | None = None
    recipe: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def stage_dir(self, record: StageRecord) -> Path:
        return self.path / stage_folder(record.index, record.stage)

    def locate(self, name: str) -> Path:
        return locate(self.path, name)

    def baseline_position(self) -> int | None:
        return baseline_position(self.records)

    def recipe_stage(self, index: int) -> dict[str, Any] | None:
        """The recipe's entry for stage ``index``, where the recipe has one."""
        stages = (self.recipe or {}).get("stages")
        if isinstance(stages, list) and 0 <= index < len(stages) and isinstance(stages[index], dict):
            return stages[index]
        return None


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
    run = RunFolder(folder, records)
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
