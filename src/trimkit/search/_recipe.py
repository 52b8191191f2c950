"""A recipe with a ``search:`` block: the recipe, its searched paths, and the shared prefix.

Parameter paths are dotted paths into the resolved recipe (every default filled in), so
``stages.1.ratio`` exists even where the YAML leaves ``ratio`` out. A mapping key that
itself holds dots (a layer pattern such as ``layer1.*.conv1``) is matched whole:
``stages.0.ratio.layer1.*.conv1`` sets that key.

The stages before the first one any parameter (or the per-trial ``epochs`` budget)
touches are the same in every trial; they run once, in ``RUN_DIR/base``, and every
trial starts from the model they leave (the baseline the search compares against).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from trimkit.pipeline._recipe import Recipe, RecipeError, apply_override, parse_recipe, read_recipe_file
from trimkit.search._spec import GroupsSpec, ParameterSpec, SearchSpec, parse_search
from trimkit.tasks import kind

Part = str | int


@dataclass(frozen=True)
class Parameter:
    """A searched value and the place in the recipe it goes."""

    name: str
    parts: tuple[Part, ...]
    spec: ParameterSpec

    @property
    def path(self) -> str:
        return ".".join(map(str, self.parts))


@dataclass
class SearchRecipe:
    source: str
    data: dict[str, Any]
    spec: SearchSpec
    parameters: dict[str, Parameter]
    split: int

    def trial_data(self, values: dict[str, Any]) -> dict[str, Any]:
        """The whole recipe (as data) with ``values`` (by parameter name) and the budget set."""
        data = copy.deepcopy(self.data)
        by_path: dict[tuple[Part, ...], list[Parameter]] = {}
        for name, parameter in self.parameters.items():
            if parameter.spec.keys is None:
                _set(data, parameter.parts, values[name])
            else:
                by_path.setdefault(parameter.parts, []).append(parameter)
        for parts, keyed in by_path.items():
            current = _get(data, parts)
            mapping = dict(current) if isinstance(current, dict) else {}
            for parameter in keyed:
                for key in parameter.spec.keys or ():
                    mapping.pop(key, None)
                    mapping[key] = values[parameter.name]
            if isinstance(current, (int, float)) and not isinstance(current, bool) and current:
                mapping["*"] = current  # the layers no parameter names keep the recipe's ratio
            _set(data, parts, mapping)
        if self.spec.epochs is not None:
            for stage in data["stages"][self.split:]:
                if stage["stage"] == "finetune":
                    stage["epochs"] = self.spec.epochs
        return data

    def overrides(self, values: dict[str, Any]) -> dict[str, Any]:
        """What a trial changed, keyed as a reader finds it in the recipe."""
        shown = {}
        for name, parameter in self.parameters.items():
            key = parameter.path if parameter.spec.keys is None else f"{parameter.path}[{name}]"
            shown[key] = values[name]
        return shown

    def prefix_recipe(self) -> Recipe | None:
        """The stages every trial shares, or ``None`` when there are none."""
        if self.split == 0:
            return None
        data = copy.deepcopy(self.data)
        data["stages"] = data["stages"][: self.split]
        data["export"] = True
        return self._parse(data)

    def trial_recipe(self, values: dict[str, Any], base_model: str | None, *, export: bool) -> Recipe:
        data = self.trial_data(values)
        if base_model is not None:
            data["model"] = {"file": base_model}
            data["stages"] = data["stages"][self.split:]
        data["export"] = bool(data.get("export", True) or export)
        # a fine-tune of 0 epochs with no schedule would only measure the model again
        data["stages"] = [stage for stage in data["stages"] if not (
            stage["stage"] == "finetune" and stage.get("epochs") == 0 and not stage.get("policies"))]
        return self._parse(data)

    def _parse(self, data: dict[str, Any]) -> Recipe:
        """A recipe of this search, whose factory modules are looked for beside the recipe file too."""
        recipe = parse_recipe(data, source=self.source)
        if Path(self.source).is_file():
            recipe._folder = str(Path(self.source).resolve().parent)
        return recipe


def load_search_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> SearchRecipe:
    """Read a recipe file with a ``search:`` block; ``overrides`` as ``trimkit run --set``."""
    return parse_search_recipe(read_recipe_file(path), overrides, source=str(path))


def parse_search_recipe(data: Any, overrides: Sequence[str] = (), *, source: str = "recipe") -> SearchRecipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping with model, task, stages and search")
    data = copy.deepcopy(data)
    for override in overrides:
        apply_override(data, override)
    if "search" not in data:
        raise RecipeError(f"{source}: no search block; add search: with parameters and objectives "
                          "(see examples/recipes/lenet5-search.yaml)")
    block = data.pop("search")
    parsed = parse_recipe(data, source=source)
    spec = parse_search(block, source, kind(parsed.task.kind).metrics(parsed.task))
    resolved = parsed.dump()
    parameters: dict[str, Parameter] = {}
    for name, parameter in spec.parameters.items():
        parameters[name] = _place(resolved, name, parameter, source)
    for index, groups in enumerate(spec.groups):
        for name, parameter in group_parameters(groups, source=f"{source}: search.groups[{index}]").items():
            if name in parameters:
                raise RecipeError(f"{source}: search.groups[{index}].prefix: {name!r} is also a parameter's name; "
                                  "choose another prefix")
            parameters[name] = _place(resolved, name, parameter, source)
    recipe = SearchRecipe(source, resolved, spec, parameters, 0)
    _check_values(recipe, source)
    recipe.split = _shared_prefix(recipe)
    return recipe


def group_parameters(groups: GroupsSpec | dict[str, Any], *, source: str = "groups") -> dict[str, ParameterSpec]:
    """One ratio parameter per cluster of a ``trimkit sensitivity`` run (its
    ``sensitivity.json``): each sets the ratio of every layer in the cluster."""
    groups = groups if isinstance(groups, GroupsSpec) else GroupsSpec.model_validate(groups)
    file = Path(groups.from_)
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
        layers = record["layers"]
        clusters = record.get("clusters")
    except FileNotFoundError:
        raise RecipeError(f"{source}.from: {file} does not exist; run trimkit sensitivity --out FOLDER and give "
                          "FOLDER/sensitivity.json") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RecipeError(f"{source}.from: {file} is not a trimkit sensitivity.json (no layers by group)") from None
    if groups.clusters is not None or not clusters:
        from trimkit import prune

        result = prune.SensitivityResult(
            baseline=float(record["baseline"]), baseline_macs=int(record.get("baseline_macs", 0)),
            metrics={g: {float(s): float(m) for s, m in v.items()} for g, v in record["groups"].items()},
            layers=layers)
        clusters = prune.group_by_sensitivity(result, groups.clusters or 3)
    parameters = {}
    for index, cluster in enumerate(clusters):
        keys = [layer for group in cluster["groups"] for layer in layers.get(group, [group])]
        parameters[f"{groups.prefix}{index + 1}"] = ParameterSpec(path=groups.path, keys=keys, min=groups.min,
                                                                  max=groups.max, step=groups.step)
    return parameters


def _place(resolved: dict[str, Any], name: str, parameter: ParameterSpec, source: str) -> Parameter:
    dotted = parameter.path or name
    parts = resolve_path(resolved, dotted)
    where = f"{source}: search.parameters.{name}"
    if parts is None:
        raise RecipeError(f"{where}: {dotted} is no path in the recipe; give a dotted path such as "
                          "stages.1.ratio (the stage's index, then its option)")
    if parameter.keys is not None:
        current = _get(resolved, parts)
        if current is not None and not isinstance(current, (dict, int, float)):
            raise RecipeError(f"{where}: keys set entries of a mapping, but {dotted} holds {current!r}")
    elif isinstance(_get(resolved, parts), (dict, list)):
        raise RecipeError(f"{where}: {dotted} holds a mapping or list, not one value; give the path of a value "
                          "(or keys: to set entries of a ratio by layer)")
    return Parameter(name, parts, parameter)


def _check_values(recipe: SearchRecipe, source: str) -> None:
    """Every parameter's ends (and each of its values) must make a valid recipe."""
    lows = {name: _ends(p.spec)[0] for name, p in recipe.parameters.items()}
    for name, parameter in recipe.parameters.items():
        for label, value in zip(("min", "max") if parameter.spec.values is None else
                                [f"values[{i}]" for i in range(len(parameter.spec.values))], _ends(parameter.spec)):
            try:
                parse_recipe(recipe.trial_data({**lows, name: value}), source="")
            except RecipeError as error:
                problem = str(error).removeprefix(": ")
                raise RecipeError(f"{source}: search.parameters.{name}.{label}: {value!r} makes the recipe invalid "
                                  f"({problem})") from None


def _ends(spec: ParameterSpec) -> list[Any]:
    return list(spec.values) if spec.values is not None else [spec.min, spec.max]


def _shared_prefix(recipe: SearchRecipe) -> int:
    stages = recipe.data["stages"]
    first = len(stages)
    for parameter in recipe.parameters.values():
        if parameter.parts[0] != "stages" or len(parameter.parts) < 2:
            return 0  # the model, task or seed varies: every trial runs everything
        first = min(first, int(parameter.parts[1]))
    if recipe.spec.epochs is not None:
        first = min([first] + [i for i, stage in enumerate(stages) if stage["stage"] == "finetune"])
    saved = {stage.get("save_as") for stage in stages[:first]} - {None}
    for stage in stages[first:]:
        named = stage.get("models") or []
        named = [named] if isinstance(named, str) else list(named)
        if stage.get("model"):
            named.append(stage["model"])
        if saved & set(named):
            return 0  # a later stage names a model of the prefix: keep the run whole
    return first


def resolve_path(data: Any, dotted: str) -> tuple[Part, ...] | None:
    """The parts of ``dotted`` in ``data`` (list indices as ints), or ``None`` where it
    leads nowhere. Mapping keys with dots in them are matched whole, longest first."""
    words = dotted.strip().split(".")
    if not words or any(not word for word in words):
        return None
    return _walk(data, words)


def _walk(current: Any, words: list[str]) -> tuple[Part, ...] | None:
    if not words:
        return ()
    if isinstance(current, list):
        if not words[0].isdigit() or int(words[0]) >= len(current):
            return None
        rest = _walk(current[int(words[0])], words[1:])
        return None if rest is None else (int(words[0]), *rest)
    if isinstance(current, dict):
        for length in range(len(words), 0, -1):
            key = ".".join(words[:length])
            if key in current:
                rest = _walk(current[key], words[length:])
                if rest is not None:
                    return (key, *rest)
    return None


def _get(data: Any, parts: tuple[Part, ...]) -> Any:
    for part in parts:
        data = data[part]
    return data


def _set(data: Any, parts: tuple[Part, ...], value: Any) -> None:
    _get(data, parts[:-1])[parts[-1]] = value
