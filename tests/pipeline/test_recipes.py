"""Recipes: every broken recipe is one line naming its YAML path, exit code 2 and no run
folder; the schedule's arithmetic by hand; overrides and round trips; recipes are data."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from typer.testing import CliRunner

from trimkit.cli import app
from trimkit.pipeline import dump_recipe, load_recipe, parse_recipe
from trimkit.pipeline._recipe import RecipeError, apply_override
from trimkit.pipeline._schedule import LrSchedulerSpec, PolicySpec, agp_sparsity, lr_factor, step_ratio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"

runner = CliRunner()

BASE: dict[str, Any] = {
    "name": "broken",
    "model": {"name": "lenet5"},
    "task": {"kind": "classification", "data": "mnist5k"},
    "stages": [
        {"stage": "train", "epochs": 1},
        {"stage": "prune", "ratio": 0.5},
    ],
}


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """Set a dotted path (list indices as numbers) in the recipe."""

    def change(recipe: dict) -> None:
        *parents, last = path.split(".")
        node: Any = recipe
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(path: str) -> Callable[[dict], None]:
    def change(recipe: dict) -> None:
        *parents, last = path.split(".")
        node: Any = recipe
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def _stage(entry: dict) -> Callable[[dict], None]:
    """Append a stage."""
    return lambda recipe: recipe["stages"].append(entry)


def _schedule(epochs: int = 4, pruners: dict | None = None, lr_schedulers: dict | None = None,
              policies: list | None = None) -> Callable[[dict], None]:
    """Make stage 0 a scheduled training stage."""

    def change(recipe: dict) -> None:
        stage = {"stage": "train", "epochs": epochs}
        if pruners is not None:
            stage["pruners"] = pruners
        if lr_schedulers is not None:
            stage["lr_schedulers"] = lr_schedulers
        if policies is not None:
            stage["policies"] = policies
        recipe["stages"][0] = stage

    return change


ONE_SHOT = {"cut": {"kind": "one_shot", "ratio": 0.3}}
DECAY = {"decay": {"kind": "exponential", "gamma": 0.5}}


# (id, change, words the one error line must contain: the YAML path first, then what is wrong)
BROKEN: list[tuple[str, Callable[[dict], None], tuple[str, ...]]] = [
    # prune options
    ("ratio-above-one", _set("stages.1.ratio", 1.5), ("stages[1].ratio", "1.5 is not in [0, 1)")),
    ("ratio-negative", _set("stages.1.ratio", -0.1), ("stages[1].ratio", "-0.1 is not in [0, 1)")),
    ("ratio-nan", _set("stages.1.ratio", math.nan), ("stages[1].ratio", "nan is not in [0, 1)")),
    ("ratio-dict-above-one", _set("stages.1.ratio", {"conv1": 0.2, "conv2": 1.0}), ("stages[1].ratio", "1.0 is not")),
    ("ratio-not-a-number", _set("stages.1.ratio", "half"), ("stages[1].ratio", "half")),
    ("threshold-negative", lambda r: r["stages"][1].update(ratio=None, threshold=-1),
     ("stages[1].threshold", "-1", "finite number >= 0")),
    ("threshold-inf", lambda r: r["stages"][1].update(ratio=None, threshold=math.inf),
     ("stages[1].threshold", "inf is not a threshold")),
    ("ratio-and-threshold", _set("stages.1.threshold", 0.1), ("stages[1]", "one of ratio, threshold or a target")),
    ("neither-ratio-nor-threshold", _drop("stages.1.ratio"), ("stages[1]", "one of ratio, threshold or a target")),
    ("choose-and-ratio", _set("stages.1.choose", "explore"), ("stages[1].choose", "explore sets how much",
                                                              "drop ratio, threshold and the target budget")),
    ("choose-unknown", _set("stages.1.choose", "explor"), ("stages[1].choose", "'explor'", "'explore'")),
    ("unknown-key-close", lambda r: r["stages"][1].update(ratoi=r["stages"][1].pop("ratio")),
     ("stages[1]", "unknown key 'ratoi'", "did you mean 'ratio'")),
    ("unknown-key-in-explore", lambda r: r["stages"].__setitem__(1, {"stage": "prune", "choose": "explore",
                                                                      "explore": {"max_dorp": 2.0}}),
     ("stages[1].explore", "unknown key 'max_dorp'", "did you mean 'max_drop'")),
    ("criterion-unknown", _set("stages.1.criterion", "mean_ab"),
     ("stages[1].criterion", "unknown criterion 'mean_ab'", "did you mean 'mean_abs'", "criteria: ")),
    ("criterion-far-from-any", _set("stages.1.criterion", "hessian"),
     ("stages[1].criterion", "unknown criterion 'hessian'", "criteria: ")),
    ("scope-unknown", _set("stages.1.scope", "globl"), ("stages[1].scope", "'globl'", "'global'")),
    ("mode-unknown", _set("stages.1.mode", "dynamic"), ("stages[1].mode", "'dynamic'", "'progressive'")),
    ("layers-unknown", _set("stages.1.layers", "convs"), ("stages[1].layers", "'convs'", "'conv'")),
    ("normalize-unknown", _set("stages.1.normalize", "l2"), ("stages[1].normalize", "'l2'", "'rank'")),
    ("round-to-zero", _set("stages.1.round_to", 0), ("stages[1].round_to", "give an integer >= 1, or auto")),
    ("global-ratio-dict", lambda r: r["stages"][1].update(scope="global", ratio={"conv1": 0.5}),
     ("stages[1].ratio", "scope 'global'", "one ratio, not a dict")),
    ("ratio-empty-dict", _set("stages.1.ratio", {}), ("stages[1].ratio", "empty dict")),
    # stages and their names
    ("stage-unknown", _set("stages.1.stage", "prunee"), ("stages[1].stage", "unknown stage 'prunee'",
                                                         "did you mean 'prune'")),
    ("stage-key-missing", _drop("stages.1.stage"), ("stages[1]", "missing 'stage'")),
    ("stage-not-a-mapping", _set("stages.1", "prune"), ("stages[1]", "a stage is a mapping")),
    ("stages-not-a-list", _set("stages", {"stage": "train", "epochs": 1}), ("stages", "a list of stages")),
    ("save-as-original", _set("stages.0.save_as", "original"), ("stages[0].save_as", "'original'", "taken")),
    ("save-as-current", _set("stages.0.save_as", "current"), ("stages[0].save_as", "'current'", "taken")),
    # train options
    ("epochs-negative", _set("stages.0.epochs", -1), ("stages[0].epochs", "-1", "greater than or equal to 0")),
    ("epochs-missing", _drop("stages.0.epochs"), ("stages[0].epochs", "missing")),
    ("lr-zero", _set("stages.0.lr", 0), ("stages[0].lr", "is not a learning rate")),
    ("lr-nan", _set("stages.0.lr", math.nan), ("stages[0].lr", "nan is not a learning rate")),
    ("batch-size-zero", _set("stages.0.batch_size", 0), ("stages[0].batch_size",
                                                                    "0 is not a batch size; give an integer >= 1")),
    ("optimizer-unknown", _set("stages.0.optimizer", "sdg"), ("stages[0].optimizer", "'sdg'", "'sgd'")),
    ("momentum-one", _set("stages.0.momentum", 1.0), ("stages[0].momentum", "less than 1")),
    ("unknown-key-train", _set("stages.0.epoch", 3), ("stages[0]", "unknown key 'epoch'", "did you mean 'epochs'")),
    # schedules
    ("policy-undefined-pruner", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut", "epochs": [0]},
                                                                      {"pruner": "cutt", "epochs": [1]}]),
     ("stages[0].policies[1]", "no pruner named 'cutt'", "did you mean 'cut'")),
    ("policy-undefined-lr-scheduler", _schedule(lr_schedulers=DECAY, policies=[{"lr_scheduler": "decy",
                                                                                "epochs": [0]}]),
     ("stages[0].policies[0]", "no lr_scheduler named 'decy'", "lr_schedulers")),
    ("pruner-never-fired", _schedule(pruners=ONE_SHOT, policies=[]), ("stages[0].pruners.cut", "no policy fires it")),
    ("policy-beyond-epochs", _schedule(epochs=4, pruners=ONE_SHOT, policies=[{"pruner": "cut", "epochs": [4]}]),
     ("stages[0].policies[0]", "epoch 4", "epochs 0 to 3")),
    ("policy-range-beyond-epochs", _schedule(epochs=4, pruners=ONE_SHOT,
                                             policies=[{"pruner": "cut", "starting_epoch": 0, "ending_epoch": 9}]),
     ("stages[0].policies[0]", "epoch 8", "epochs 0 to 3")),
    ("pruner-policies-overlap", _schedule(pruners={**ONE_SHOT, "more": {"ratio": 0.2}},
                                          policies=[{"pruner": "cut", "epochs": [0, 2]},
                                                    {"pruner": "more", "starting_epoch": 1, "ending_epoch": 4}]),
     ("stages[0].policies[1]", "overlaps 'cut' in epoch 2")),
    ("lr-policies-overlap", _schedule(lr_schedulers={**DECAY, "slow": {"gamma": 0.9}},
                                      policies=[{"lr_scheduler": "decay", "epochs": [1]},
                                                {"lr_scheduler": "slow", "epochs": [3, 1]}]),
     ("stages[0].policies[1]", "overlaps 'decay' in epoch 1")),
    ("ending-not-after-starting", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut", "starting_epoch": 2,
                                                                         "ending_epoch": 2}]),
     ("stages[0].policies[0]", "ending_epoch 2 must be after starting_epoch 2")),
    ("epochs-and-starting-epoch", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut", "epochs": [0],
                                                                         "starting_epoch": 0, "ending_epoch": 2}]),
     ("stages[0].policies[0]", "not both")),
    ("policy-no-timing", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut"}]),
     ("stages[0].policies[0]", "starting_epoch and ending_epoch")),
    ("policy-empty-epochs", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut", "epochs": []}]),
     ("stages[0].policies[0]", "non-empty list")),
    ("policy-pruner-and-lr-scheduler", _schedule(pruners=ONE_SHOT, lr_schedulers=DECAY,
                                                 policies=[{"pruner": "cut", "lr_scheduler": "decay",
                                                            "epochs": [0]}]),
     ("stages[0].policies[0]", "exactly one of pruner")),
    ("policy-unknown-key", _schedule(pruners=ONE_SHOT, policies=[{"pruner": "cut", "epoch": [0]}]),
     ("stages[0].policies[0]", "unknown key 'epoch'", "did you mean 'epochs'")),
    ("pruner-unknown-key", _schedule(pruners={"cut": {"ratoi": 0.3}}, policies=[{"pruner": "cut", "epochs": [0]}]),
     ("stages[0].pruners.cut", "unknown key 'ratoi'", "did you mean 'ratio'")),
    ("one-shot-without-ratio", _schedule(pruners={"cut": {"kind": "one_shot"}},
                                         policies=[{"pruner": "cut", "epochs": [0]}]),
     ("stages[0].pruners.cut", "exactly one of ratio or threshold")),
    ("agp-without-final", _schedule(pruners={"ramp": {"kind": "agp"}},
                                    policies=[{"pruner": "ramp", "starting_epoch": 0, "ending_epoch": 4}]),
     ("stages[0].pruners.ramp", "needs final_sparsity")),
    ("agp-with-ratio", _schedule(pruners={"ramp": {"kind": "agp", "final_sparsity": 0.5, "ratio": 0.5}},
                                 policies=[{"pruner": "ramp", "starting_epoch": 0, "ending_epoch": 4}]),
     ("stages[0].pruners.ramp", "drop ratio and threshold")),
    ("agp-final-below-initial", _schedule(pruners={"ramp": {"kind": "agp", "initial_sparsity": 0.4,
                                                            "final_sparsity": 0.2}},
                                          policies=[{"pruner": "ramp", "starting_epoch": 0, "ending_epoch": 4}]),
     ("stages[0].pruners.ramp", "final_sparsity 0.2 is below initial_sparsity 0.4")),
    ("agp-final-one", _schedule(pruners={"ramp": {"kind": "agp", "final_sparsity": 1.0}},
                                policies=[{"pruner": "ramp", "starting_epoch": 0, "ending_epoch": 4}]),
     ("stages[0].pruners.ramp.final_sparsity", "less than 1")),
    ("pruner-kind-unknown", _schedule(pruners={"ramp": {"kind": "apg", "final_sparsity": 0.5}},
                                      policies=[{"pruner": "ramp", "epochs": [0]}]),
     ("stages[0].pruners.ramp.kind", "'apg'", "'agp'")),
    ("lr-scheduler-gamma-zero", _schedule(lr_schedulers={"decay": {"gamma": 0}},
                                          policies=[{"lr_scheduler": "decay", "epochs": [0]}]),
     ("stages[0].lr_schedulers.decay.gamma", "greater than 0")),
    ("lr-scheduler-unknown-key", _schedule(lr_schedulers={"decay": {"gama": 0.5}},
                                           policies=[{"lr_scheduler": "decay", "epochs": [0]}]),
     ("stages[0].lr_schedulers.decay", "unknown key 'gama'", "did you mean 'gamma'")),
    ("policies-not-a-list", _schedule(pruners=ONE_SHOT, policies={"pruner": "cut", "epochs": [0]}),  # type: ignore
     ("stages[0].policies", "valid list")),
    # other stages
    ("quantize-mode-missing", _stage({"stage": "quantize", "policy": "int8"}), ("stages[2].mode", "missing")),
    ("quantize-mode-unknown", _stage({"stage": "quantize", "mode": "qta"}), ("stages[2].mode", "'qta'", "'qat'")),
    ("quantize-bad-policy", _stage({"stage": "quantize", "mode": "qat", "policy": "int99"}),
     ("stages[2].policy",)),
    ("measure-batch-zero", _stage({"stage": "measure", "batch_sizes": [0]}), ("stages[2].batch_sizes", "0")),
    ("measure-backend-unknown", _stage({"stage": "measure", "backend": "onnx"}),
     ("stages[2].backend", "'onnx'", "'onnxruntime'")),
    ("compare-labels-mismatch", _stage({"stage": "compare", "models": ["original", "current"],
                                        "labels": ["before", "after", "extra"]}),
     ("stages[2].labels", "3 labels for 2 models")),
    ("compare-no-models", _stage({"stage": "compare", "models": []}), ("stages[2].models", "at least 1")),
    ("compare-unknown-model", _stage({"stage": "compare", "models": ["original", "prunde"]}),
     ("stages[2].models", "'prunde'", "save_as")),
    ("measure-int8-before-quantize", _stage({"stage": "measure", "model": "int8"}),
     ("stages[2].model", "'int8'", "before this stage")),
    ("save-as-twice", lambda recipe: (_set("stages.0.save_as", "x")(recipe), _set("stages.1.save_as", "x")(recipe)),
     ("stages[1].save_as", "'x'", "taken")),
    ("export-opset-low", _stage({"stage": "export", "opset": 1}),
     ("stages[2].opset", "opset 1 is not supported", "11 to 20")),
    # model, task, top level
    ("model-name-and-file", _set("model", {"name": "lenet5", "file": "lenet5.pt"}),
     ("model", "exactly one of name", "file")),
    ("model-file-and-weights", _set("model", {"file": "lenet5.pt", "weights": "w.pt"}),
     ("model.weights", "drop weights")),
    ("model-neither", _set("model", {"num_classes": 10}), ("model", "exactly one of name")),
    ("model-unknown-zoo-name", _set("model.name", "lenet"), ("model.name", "unknown model 'lenet'",
                                                             "did you mean 'lenet5'")),
    ("model-missing", _drop("model"), ("model", "missing")),
    ("model-unknown-key", _set("model.weigths", "w.pt"), ("model", "unknown key 'weigths'",
                                                          "did you mean 'weights'")),
    ("model-num-classes-zero", _set("model.num_classes", 0), ("model.num_classes", "greater than or equal to 1")),
    ("task-val-samples-zero", _set("task.val_samples", 0), ("task.val_samples", "greater than or equal to 1")),
    ("task-kind-unknown", _set("task.kind", "detection"),
     ("task.kind", "'detection'", "classification, segmentation, tracking")),
    ("task-unknown-key", _set("task.train_sampels", 100), ("task", "unknown key 'train_sampels'",
                                                           "did you mean 'train_samples'")),
    ("top-level-unknown-key", _set("stage", []), ("unknown key 'stage'", "did you mean 'stages'")),
    ("seed-not-an-int", _set("seed", "zero"), ("seed", "'zero'", "integer")),
]


def _write(path: Path, recipe: Any) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def _run(tmp_path: Path, recipe_file: Path | str, *extra: str):
    return runner.invoke(app, ["run", str(recipe_file), "--out", str(tmp_path / "run"), *extra])


def _one_error_line(result, tmp_path: Path) -> str:
    """The run failed as a recipe error: exit code 2, one line on stderr, no run folder."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists()
    return lines[0]


def test_the_base_recipe_is_valid() -> None:
    recipe = parse_recipe(copy.deepcopy(BASE))
    assert [entry.stage for entry in recipe.stages] == ["train", "prune"]
    assert recipe.stages[1].options.ratio == 0.5


@pytest.mark.parametrize("change, words", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_broken_recipe_is_one_line_naming_its_path(tmp_path: Path, change, words) -> None:
    recipe = copy.deepcopy(BASE)
    change(recipe)
    line = _one_error_line(_run(tmp_path, _write(tmp_path / "recipe.yaml", recipe)), tmp_path)
    for word in words:
        assert word in line, line
    # the YAML path comes right after the file name, as "PATH: what is wrong"
    if words[0].startswith(("stages", "model", "task")):
        assert f"recipe.yaml: {words[0]}: " in line, line


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = "model: {name: lenet5}\nstages:\n  - stage: train\n    epochs: [1\n  - stage: prune\n"
    (tmp_path / "recipe.yaml").write_text(text, encoding="utf-8")
    line = _one_error_line(_run(tmp_path, tmp_path / "recipe.yaml"), tmp_path)
    assert "not valid YAML at line 5" in line, line


def test_a_missing_recipe_file(tmp_path: Path) -> None:
    line = _one_error_line(_run(tmp_path, tmp_path / "nowhere.yaml"), tmp_path)
    assert "nowhere.yaml does not exist" in line, line


def test_a_recipe_that_is_a_list(tmp_path: Path) -> None:
    line = _one_error_line(_run(tmp_path, _write(tmp_path / "recipe.yaml", BASE["stages"])), tmp_path)
    assert "a recipe is a mapping" in line and "got list" in line, line


def test_an_empty_recipe_file(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_text("# nothing yet\n", encoding="utf-8")
    line = _one_error_line(_run(tmp_path, tmp_path / "recipe.yaml"), tmp_path)
    assert "a recipe is a mapping" in line, line


def test_a_binary_recipe_file(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_bytes(b"\xff\xfe\x00\x81 model")
    line = _one_error_line(_run(tmp_path, tmp_path / "recipe.yaml"), tmp_path)
    assert "recipe.yaml" in line, line


@pytest.mark.parametrize("override, words", [
    ("stages.9.ratio=0.4", ("--set stages.9.ratio", "stages.9 is not an index of a list of 2")),
    ("stages.x.ratio=0.4", ("--set stages.x.ratio", "stages.x is not an index")),
    ("stages.1.ratio", ("--set 'stages.1.ratio'", "give PATH=VALUE")),
    ("=0.4", ("--set '=0.4'", "empty path")),
    ("name.value=1", ("--set name.value", "name holds a value")),
    ("stages.1.ratio=[1, 2", ("--set 'stages.1.ratio=[1, 2'", "not valid YAML")),
    ("stages.1.ratio=1.5", ("stages[1].ratio", "1.5 is not in [0, 1)")),
    ("stages.1.ratoi=0.4", ("stages[1]", "unknown key 'ratoi'", "did you mean 'ratio'")),
])
def test_a_bad_override_is_one_line(tmp_path: Path, override: str, words: tuple[str, ...]) -> None:
    recipe_file = _write(tmp_path / "recipe.yaml", BASE)
    line = _one_error_line(_run(tmp_path, recipe_file, "--set", override), tmp_path)
    for word in words:
        assert word in line, line


def test_a_recipe_is_data_not_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned-by-recipe"
    text = (f'model: !!python/object/apply:os.system ["touch {marker}"]\n'
            "stages: []\n")
    (tmp_path / "recipe.yaml").write_text(text, encoding="utf-8")
    line = _one_error_line(_run(tmp_path, tmp_path / "recipe.yaml"), tmp_path)
    assert "not valid YAML at line 1" in line and "python/object/apply" in line, line
    assert not marker.exists()
    with pytest.raises(RecipeError):
        load_recipe(tmp_path / "recipe.yaml")
    assert not marker.exists()


# --- the schedule's arithmetic, by hand ---------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_agp_sparsity_is_the_cubic_ramp(step: int) -> None:
    expected = 0.5 + (0.0 - 0.5) * (1 - step / 3) ** 3
    assert agp_sparsity(0.0, 0.5, step, 4) == pytest.approx(expected)


def test_agp_sparsity_numbers() -> None:
    assert [round(agp_sparsity(0.0, 0.5, k, 4), 6) for k in range(4)] == [0.0, round(0.5 - 0.5 * 8 / 27, 6),
                                                                           round(0.5 - 0.5 / 27, 6), 0.5]
    assert agp_sparsity(0.1, 0.6, 0, 1) == 0.6      # one firing goes straight to the end
    assert agp_sparsity(0.2, 0.6, 0, 3) == pytest.approx(0.2)


def test_step_ratio_removes_the_share_of_what_is_left() -> None:
    assert step_ratio(0.2, 0.5) == pytest.approx(0.375)       # 0.3 of the remaining 0.8
    assert step_ratio(0.0, 0.5) == pytest.approx(0.5)
    assert step_ratio(0.5, 0.5) == 0.0
    assert step_ratio(0.6, 0.5) == 0.0
    # two steps of the ramp reach its target of the original channels
    first = step_ratio(0.0, 0.3)
    second = step_ratio(0.3, 0.5)
    assert 1 - (1 - first) * (1 - second) == pytest.approx(0.5)


def test_lr_factor_exponential_fires_at_the_end_of_its_epochs() -> None:
    schedulers = {"decay": LrSchedulerSpec(kind="exponential", gamma=0.5)}
    policies = [PolicySpec(lr_scheduler="decay", starting_epoch=1, ending_epoch=4)]
    assert [lr_factor(epoch, schedulers, policies) for epoch in range(5)] == [1.0, 1.0, 0.5, 0.25, 0.125]


def test_lr_factor_step_decays_every_step_size_firings() -> None:
    schedulers = {"decay": LrSchedulerSpec(kind="step", gamma=0.5, step_size=2)}
    policies = [PolicySpec(lr_scheduler="decay", starting_epoch=0, ending_epoch=6)]
    # fired at the end of epochs 0..5; every second firing halves the rate
    assert [lr_factor(epoch, schedulers, policies) for epoch in range(7)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25,
                                                                              0.125]


def test_lr_factor_ignores_pruner_policies_and_multiplies_schedulers() -> None:
    schedulers = {"a": LrSchedulerSpec(gamma=0.5), "b": LrSchedulerSpec(gamma=0.1)}
    policies = [PolicySpec(pruner="cut", epochs=[0, 1]), PolicySpec(lr_scheduler="a", epochs=[0]),
                PolicySpec(lr_scheduler="b", epochs=[1])]
    assert lr_factor(0, schedulers, policies) == 1.0
    assert lr_factor(1, schedulers, policies) == pytest.approx(0.5)
    assert lr_factor(2, schedulers, policies) == pytest.approx(0.05)


def test_firing_epochs() -> None:
    assert PolicySpec(pruner="p", starting_epoch=0, ending_epoch=8, frequency=2).firing_epochs() == [0, 2, 4, 6]
    assert PolicySpec(pruner="p", starting_epoch=1, ending_epoch=4).firing_epochs() == [1, 2, 3]
    assert PolicySpec(pruner="p", epochs=[3, 0, 3]).firing_epochs() == [0, 3]
    assert PolicySpec(pruner="p", starting_epoch=0, ending_epoch=8, frequency=3).last_epoch == 6


def test_a_valid_schedule_parses() -> None:
    recipe = copy.deepcopy(BASE)
    _schedule(epochs=8, pruners={"ramp": {"kind": "agp", "final_sparsity": 0.5}, **ONE_SHOT}, lr_schedulers=DECAY,
              policies=[{"pruner": "ramp", "starting_epoch": 0, "ending_epoch": 8, "frequency": 2},
                        {"pruner": "cut", "epochs": [1]},
                        {"lr_scheduler": "decay", "starting_epoch": 0, "ending_epoch": 8}])(recipe)
    options = parse_recipe(recipe).stages[0].options
    assert options.pruners["ramp"].final_sparsity == 0.5
    assert [policy.firing_epochs() for policy in options.policies] == [[0, 2, 4, 6], [1], list(range(8))]


# --- overrides and round trips ------------------------------------------------------------


def test_apply_override_sets_nested_keys_and_list_items() -> None:
    data: dict[str, Any] = {"model": {"name": "lenet5"}, "stages": [{"stage": "train"}, {"stage": "prune"}]}
    apply_override(data, "model.num_classes=4")
    apply_override(data, "stages.1.ratio=0.4")
    apply_override(data, "stages.0.epochs=3")
    apply_override(data, "task.data=cifar10")          # a missing mapping is made
    apply_override(data, "stages.1=prune")              # a list item replaced
    assert data == {"model": {"name": "lenet5", "num_classes": 4}, "stages": [{"stage": "train", "epochs": 3},
                                                                               "prune"],
                    "task": {"data": "cifar10"}}


@pytest.mark.parametrize("text, value", [("0.4", 0.4), ("[1, 2]", [1, 2]), ("true", True), ("null", None),
                                         ("", None), ("3", 3), ("l1", "l1"), ("{a: 0.5}", {"a": 0.5}),
                                         ("'0.4'", "0.4"), ("a=b", "a=b")])
def test_apply_override_reads_the_value_as_yaml(text: str, value: Any) -> None:
    data: dict[str, Any] = {"stages": [{"stage": "prune"}]}
    apply_override(data, f"stages.0.x={text}")
    assert data["stages"][0]["x"] == value and type(data["stages"][0]["x"]) is type(value)


def test_parse_recipe_applies_overrides_without_changing_its_input() -> None:
    data = copy.deepcopy(BASE)
    recipe = parse_recipe(data, ["stages.1.ratio=0.3", "stages.0.epochs=2", "seed=7"])
    assert recipe.stages[1].options.ratio == 0.3
    assert recipe.stages[0].options.epochs == 2
    assert recipe.seed == 7
    assert data == BASE


def test_an_override_can_switch_ratio_for_threshold() -> None:
    recipe = parse_recipe(copy.deepcopy(BASE), ["stages.1.ratio=null", "stages.1.threshold=0.2"])
    assert recipe.stages[1].options.ratio is None and recipe.stages[1].options.threshold == 0.2


PIPELINE_EXAMPLES = [path for path in sorted(EXAMPLES.glob("*.yaml"))
                     if "search" not in yaml.safe_load(path.read_text())]


@pytest.mark.parametrize("path", PIPELINE_EXAMPLES, ids=lambda p: p.stem)  # search recipes: tests/test_search.py
def test_an_example_recipe_round_trips(path: Path, tmp_path: Path) -> None:
    recipe = load_recipe(path)
    dumped = dump_recipe(recipe)
    again = parse_recipe(yaml.safe_load(dumped))
    assert dump_recipe(again) == dumped
    (tmp_path / "again.yaml").write_text(dumped, encoding="utf-8")
    assert dump_recipe(load_recipe(tmp_path / "again.yaml")) == dumped
    assert [entry.stage for entry in again.stages] == [entry.stage for entry in recipe.stages]


def test_the_examples_are_all_here() -> None:
    assert len(sorted(EXAMPLES.glob("*.yaml"))) >= 4


def test_an_override_on_an_example() -> None:
    recipe = load_recipe(EXAMPLES / "lenet5-mnist5k.yaml", ["stages.0.epochs=1", "stages.2.epochs=1"])
    assert recipe.stages[0].options.epochs == 1 and recipe.stages[2].options.epochs == 1
    assert recipe.stages[0].save_as == "trained"
