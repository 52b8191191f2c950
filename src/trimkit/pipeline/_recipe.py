"""Recipes: a model, a task and a list of stages, as YAML validated by pydantic.

A recipe is data: it is read with ``yaml.safe_load`` and nothing in it can run code.
Each stage entry is checked by its stage's own options model (the one the Python API
and the CLI use); a bad recipe is one line naming the YAML path of the problem and the
fix: ``stages[2].ratio: 1.5 is not in [0, 1)``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from trimkit._options import describe
from trimkit._registry import closest
from trimkit.errors import TrimkitError
from trimkit.pipeline import stages as _stages  # noqa: F401  (registers the built-in stages)
from trimkit.pipeline._registry import StageOptions, get_stage, stage_names, unsupported
from trimkit.tasks import DEFAULT_KIND, TaskSpec, kind, parse_task_spec

STAGE_KEYS = ("stage", "save_as")


class RecipeError(TrimkitError):
    """A recipe that cannot run, with the YAML path of the problem."""


class ModelSpec(BaseModel):
    """A zoo model (``name``), a model of your own (``factory``: ``mynet:MyNet`` or
    ``path/to/mynet.py:MyNet``, called with ``kwargs``; ``input_shape`` [C, H, W] and
    ``normalization`` [[means], [stds]] where the data does not say), optionally with
    ``weights``; or a trimkit model ``file``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    factory: str | None = None
    file: str | None = None
    weights: str | None = None
    input_shape: tuple[PositiveInt, ...] | None = None
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    num_classes: int = Field(default=10, ge=1)
    in_channels: int | None = Field(default=None, ge=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    trust_checkpoint: bool = False

    @field_validator("name")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        from trimkit import models

        known = models.names()
        if value is not None and value not in known:
            raise ValueError(f"unknown model {value!r}{closest(value, known)}; zoo: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(value is not None for value in (self.name, self.factory, self.file)) != 1:
            raise ValueError("give exactly one of name (a zoo model), factory (your own, as module:function) or "
                             "file (a trimkit model file)")
        if self.file is not None and self.weights is not None:
            raise ValueError("weights: a model file has its own weights; drop weights")
        if self.factory is None and (self.input_shape is not None or self.normalization is not None):
            raise ValueError("input_shape and normalization describe a factory's model; a zoo model or model file "
                             "knows its own")
        return self


class StageEntry(BaseModel):
    """One stage of a recipe: its name, the name its output is kept under, its options."""

    stage: str
    save_as: str | None = None
    options: StageOptions

    def dump(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"stage": self.stage}
        if self.save_as:
            entry["save_as"] = self.save_as
        return {**entry, **self.options.model_dump(mode="json")}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    #: the folder of the recipe file, where a factory's module is looked for after the working folder
    _folder: str | None = PrivateAttr(default=None)

    @property
    def folder(self) -> str | None:
        return self._folder
    name: str | None = None
    model: ModelSpec
    task: TaskSpec = Field(default_factory=lambda: kind(DEFAULT_KIND).spec())
    seed: int = 0
    export: bool = True
    stages: list[StageEntry] = Field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        """The resolved recipe (every default filled in), as written to the run folder."""
        return {"name": self.name, "model": self.model.model_dump(mode="json"),
                "task": self.task.model_dump(mode="json"), "seed": self.seed, "export": self.export,
                "stages": [entry.dump() for entry in self.stages]}


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override (``stages.2.ratio=0.4``) and validate a recipe file."""
    recipe = parse_recipe(read_recipe_file(path), overrides, source=str(path))
    recipe._folder = str(Path(path).resolve().parent)
    return recipe


def read_recipe_file(path: str | os.PathLike) -> Any:
    """The plain data of a recipe file (``yaml.safe_load``); a missing file, bad YAML or a
    binary file is one line naming it."""
    source = Path(path)
    if not source.is_file():
        raise RecipeError(f"recipe {source} does not exist; check the path")
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{source}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{source}: not a text file; a recipe is YAML") from None


def parse_recipe(data: Any, overrides: Sequence[str] = (), *, source: str = "recipe") -> Recipe:
    """Validate a recipe given as plain data (what ``yaml.safe_load`` returns)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping with model, task and stages; got "
                          f"{type(data).__name__}")
    data = copy.deepcopy(data)
    for override in overrides:
        apply_override(data, override)
    if "search" in data:
        raise RecipeError(f"{source}: search: this recipe is a search; run it with trimkit search {source}")
    try:
        task = parse_task_spec(data.pop("task", None))
    except TrimkitError as error:
        raise RecipeError(f"{source}: {error}") from None
    raw_stages = data.pop("stages", [])
    if not isinstance(raw_stages, list):
        raise RecipeError(f"{source}: stages: a list of stages, each a mapping with a 'stage' key")
    try:
        recipe = Recipe.model_validate({**data, "task": task, "stages": []})
    except ValidationError as error:
        raise RecipeError(f"{source}: {describe(error, '', Recipe)}") from None
    recipe.stages = [_stage_entry(raw, index, source) for index, raw in enumerate(raw_stages)]
    _check_names(recipe.stages, source)
    task_kind = kind(recipe.task.kind)
    for index, entry in enumerate(recipe.stages):
        problem = unsupported(entry.options, task_kind.capabilities, task_kind.name)
        if problem:
            raise RecipeError(f"{source}: stages[{index}]: stage {entry.stage} {problem}; drop the stage or change "
                              "task.kind")
    return recipe


# the names a stage makes available to the stages after it, besides its save_as
_NAMES_MADE = {"quantize": ("int8", "int8_onnx", "packed"), "export": ()}


def _check_names(entries: list[StageEntry], source: str) -> None:
    """Names of models and files that stages refer to must exist by then; save_as names are unique."""
    known = {"original", "current"}
    for index, entry in enumerate(entries):
        for key in ("models", "model"):
            wanted = getattr(entry.options, key, None)
            for name in [wanted] if isinstance(wanted, str) else (wanted or []):
                if name not in known:
                    raise RecipeError(f"{source}: stages[{index}].{key}: no model or file named {name!r} before this "
                                      f"stage{closest(name, known)}; known: {', '.join(sorted(known))} (name a "
                                      "stage's output with save_as)")
        if entry.save_as:
            if entry.save_as in known:
                raise RecipeError(f"{source}: stages[{index}].save_as: {entry.save_as!r} is taken by an earlier "
                                  "stage or built in; choose another name")
            known.add(entry.save_as)
        known.update(_NAMES_MADE.get(entry.stage, ()))
        if entry.stage == "export":
            known.add(getattr(entry.options, "name", "onnx"))


def _stage_entry(raw: Any, index: int, source: str) -> StageEntry:
    where = f"stages[{index}]"
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: {where}: a stage is a mapping with a 'stage' key, got {raw!r}")
    if "stage" not in raw:
        raise RecipeError(f"{source}: {where}: missing 'stage'; one of: {', '.join(stage_names())}")
    name = raw["stage"]
    try:
        stage = get_stage(str(name))
    except TrimkitError as error:
        raise RecipeError(f"{source}: {where}.stage: {error}") from None
    options = {k: v for k, v in raw.items() if k not in STAGE_KEYS}
    save_as = raw.get("save_as")
    if save_as is not None and not (isinstance(save_as, str) and save_as.strip()):
        raise RecipeError(f"{source}: {where}.save_as: {save_as!r} is not a name; give a word such as pruned")
    try:
        parsed = stage.options.model_validate(options)
    except ValidationError as error:
        raise RecipeError(f"{source}: {describe(error, where, stage.options)}") from None
    return StageEntry(stage=stage.name, save_as=save_as, options=parsed)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``a.b.2.c=VALUE`` in ``data``; VALUE is read as YAML (``0.4``, ``[1, 2]``, ``true``)."""
    if "=" not in override:
        raise RecipeError(f"--set {override!r}: give PATH=VALUE, such as stages.2.ratio=0.4")
    dotted, text = override.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise RecipeError(f"--set {override!r}: the value is not valid YAML") from None
    parts = [part for part in dotted.strip().split(".") if part]
    if not parts:
        raise RecipeError(f"--set {override!r}: empty path; give PATH=VALUE, such as stages.2.ratio=0.4")
    current: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        shown = ".".join(parts[: depth + 1])
        if isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise RecipeError(f"--set {dotted}: {shown} is not an index of a list of {len(current)}")
            if last:
                current[int(part)] = value
            else:
                current = current[int(part)]
        elif isinstance(current, dict):
            if last:
                current[part] = value
            else:
                if part not in current or current[part] is None:
                    current[part] = {}
                current = current[part]
        else:
            raise RecipeError(f"--set {dotted}: {'.'.join(parts[:depth])} holds a value, not a mapping or list")


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.dump(), sort_keys=False)
