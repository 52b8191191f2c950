"""trimkit search on a segmentation task: the metric comes from the task (its primary one
by default), a trial records the task's metrics as trimkit eval gives them, drop and
directions follow the metric, and a metric the task lacks is one line naming those it has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from optuna.trial import TrialState
from PIL import Image
from typer.testing import CliRunner

import trimkit
from trimkit import models, search
from trimkit.cli import app
from trimkit.pipeline import RecipeError
from trimkit.search._trial import Figures, constraint_values, objective_values
from trimkit.tasks import ClassificationTask, SegmentationTask
from trimkit.tasks.classification import _TopK
from trimkit.tasks.segmentation import ConfusionMatrix

runner = CliRunner()
CLASSES = ("sky", "road", "car")


def _camvid(root: Path, count: int = 4, shape: tuple[int, int] = (16, 24)) -> Path:
    """A CamVid-format folder (train and test, which serves val): blocks of classes, the
    image a colour per class plus noise, so one epoch learns something."""
    generator = np.random.default_rng(0)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for index in range(count):
            mask = np.kron(generator.integers(0, 3, (shape[0] // 4, shape[1] // 4)), np.ones((4, 4), dtype=np.int64))
            image = np.clip(colours[mask] + generator.normal(0, 30, (*shape, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / split / f"f{index}.png")
            Image.fromarray(mask.astype(np.uint8), mode="L").save(root / f"{split}annot" / f"f{index}.png")
            lines.append(f"{split}/f{index}.png {split}annot/f{index}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def _model_file(path: Path) -> Path:
    """A tiny LR-ASPP whose weights are drawn wide enough (He-normal) that its per-pixel
    predictions vary, as a trained model's do; untrained, it predicts one class everywhere
    (and one epoch on a busy CPU takes longer than this whole test should)."""
    torch.manual_seed(0)
    model = models.create("lraspp_mobilenetv3_large", num_classes=3, width=0.25, inter_channels=16)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(0.0, (2.0 / weight[0].numel()) ** 0.5)
    trimkit.save(model, path)
    return path


def _recipe(folder: Path, model: dict | None = None, **search_block) -> dict:
    return {
        "name": "seg",
        "model": model or {"name": "lraspp_mobilenetv3_large", "num_classes": 3,
                           "kwargs": {"width": 0.25, "inter_channels": 16}},
        "task": {"kind": "segmentation", "data": str(folder)},
        "export": False,
        "stages": [{"stage": "prune", "criterion": "l1", "ratio": 0.0, "layers": "conv"}],
        "search": {"method": "grid", "n_trials": 2, "size": "model_file",
                   "parameters": {"stages.0.ratio": {"values": [0.0, 0.5]}}, **search_block},
    }


def _eval(model_file: Path, folder: Path) -> dict:
    result = runner.invoke(app, ["eval", str(model_file), "--data", str(folder), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_segmentation_search_records_the_task_metrics_trimkit_eval_gives(tmp_path):
    folder = _camvid(tmp_path / "cv")
    start = _model_file(tmp_path / "start.pt")
    data = _recipe(folder, {"file": str(start)}, metric="pixel_accuracy",
                   objectives=["miou", {"name": "hybrid", "expr": "miou / baseline_miou - 10 * loss",
                                        "direction": "maximize"}],
                   constraints={"max_drop": 50.0})
    recipe = search.parse_search_recipe(data, source="seg.yaml")
    assert recipe.spec.metric == "pixel_accuracy"  # chosen over the task's primary metric, mIoU
    assert recipe.spec.directions() == ["maximize", "maximize"]
    result = search.run_search(recipe, tmp_path / "run")
    record = search.write_results(result.study, tmp_path / "run", storage=result.storage)
    assert record["metric"] == "pixel_accuracy" and record["counts"]["complete"] == 2

    base = _eval(start, folder)  # the model every trial starts from
    assert record["baseline"]["metric"] == pytest.approx(base["pixel_accuracy"])
    assert record["baseline"]["metrics"]["miou"] == pytest.approx(base["miou"])
    trials = {t.params["stages.0.ratio"]: t for t in result.study.get_trials(states=(TrialState.COMPLETE,))}
    rows = {row["number"]: row for row in record["trials"]}
    for trial in trials.values():
        row = rows[trial.number]
        measured = _eval(Path(row["run_dir"]) / "model.pt", folder)
        assert trial.values[0] == pytest.approx(measured["miou"])
        assert row["metrics"]["miou"] == pytest.approx(measured["miou"])
        assert row["metrics"]["iou_road"] == pytest.approx(measured["per_class_iou"]["road"])
        assert row["metric"] == pytest.approx(measured["pixel_accuracy"])
        assert trial.values[1] == pytest.approx(measured["miou"] / base["miou"] - 10 * measured["loss"])
        # points of pixel accuracy lost: positive when the pruned model is worse
        assert row["drop"] == pytest.approx(base["pixel_accuracy"] - measured["pixel_accuracy"])
        assert trial.constraints["max_drop"] == pytest.approx(row["drop"] - 50.0)
    assert trials[0.0].user_attrs["drop"] == pytest.approx(0.0)
    assert trials[0.5].user_attrs["macs"] < trials[0.0].user_attrs["macs"]
    assert trials[0.5].user_attrs["drop"] != pytest.approx(0.0)  # the sign check above had something to check


def test_the_default_metric_is_the_tasks_primary_one_and_objectives_may_name_any_of_its_metrics(tmp_path):
    folder = _camvid(tmp_path / "cv", count=1)
    segmentation = search.parse_search_recipe(_recipe(folder, objectives=["miou", "mean_class_accuracy", "iou_car"]))
    assert segmentation.spec.metric == "miou"
    assert segmentation.spec.task_metrics.names == ("miou", "pixel_accuracy", "mean_class_accuracy", "loss",
                                                    "iou_sky", "iou_road", "iou_car")
    chosen = search.parse_search_recipe(_recipe(folder, metric="pixel_accuracy", objectives=["metric", "loss", "drop"]))
    assert chosen.spec.metric == "pixel_accuracy"
    assert chosen.spec.directions() == ["maximize", "minimize", "minimize"]
    by_loss = search.parse_search_recipe(_recipe(folder, metric="loss", objectives=["metric", "pixel_accuracy"]))
    assert by_loss.spec.directions() == ["minimize", "maximize"]
    classification = search.parse_search_recipe({
        "model": {"name": "lenet5"}, "task": {"data": "mnist5k"}, "stages": [{"stage": "prune", "ratio": 0.0}],
        "search": {"parameters": {"stages.0.ratio": {"min": 0.0, "max": 0.5}}, "objectives": ["top5"]}})
    assert classification.spec.metric == "top1" and classification.spec.directions() == ["maximize"]


@pytest.mark.parametrize("block, message", [
    ({"metric": "mIoU", "objectives": ["macs"]},
     "search.metric: 'mIoU' is not a metric of the segmentation task; its metrics: miou, "
     "pixel_accuracy, mean_class_accuracy, loss, iou_sky, iou_road, iou_car"),
    ({"metric": "top1", "objectives": ["macs"]}, "search.metric: 'top1' is not a metric of the segmentation task"),
    ({"metric": "iou_bus", "objectives": ["macs"]}, "search.metric: 'iou_bus' is not a metric of the segmentation"),
    ({"objectives": ["top1"]}, "search.objectives[0].name: no measurement named 'top1'; known: latency_ms, metric, "
     "drop, macs, params, bytes, miou, pixel_accuracy, mean_class_accuracy, loss, iou_sky, iou_road, iou_car"),
    ({"objectives": [{"expr": "top1 - macs", "direction": "maximize"}]},
     "search.objectives[0].expr: 'top1 - macs': no measurement named 'top1'"),
])
def test_a_metric_the_segmentation_task_lacks_is_one_line_naming_those_it_has(tmp_path, block, message):
    folder = _camvid(tmp_path / "cv", count=1)
    with pytest.raises(RecipeError) as raised:
        search.parse_search_recipe(_recipe(folder, **block), source="seg.yaml")
    text = str(raised.value)
    assert "\n" not in text and text.startswith("seg.yaml: ") and message in text, text


def test_the_cli_refuses_an_unknown_metric_with_exit_2_before_any_run(tmp_path):
    folder = _camvid(tmp_path / "cv", count=1)
    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(_recipe(folder, metric="accuracy", objectives=["metric"])))
    result = runner.invoke(app, ["search", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {path}: search.metric: 'accuracy' is not a metric of the segmentation "
                                     "task; its metrics: miou, pixel_accuracy, mean_class_accuracy, loss, iou_sky, "
                                     "iou_road, iou_car")
    assert not (tmp_path / "run").exists()
    lenet = {"model": {"name": "lenet5"}, "task": {"data": "mnist5k"}, "stages": [{"stage": "prune", "ratio": 0.0}],
             "search": {"metric": "miou", "parameters": {"stages.0.ratio": {"min": 0.0, "max": 0.5}},
                        "objectives": ["metric"]}}
    path.write_text(yaml.safe_dump(lenet))
    result = runner.invoke(app, ["search", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("search.metric: 'miou' is not a metric of the classification task; its "
                                          "metrics: top1, top5, loss")


def test_drop_is_what_the_metric_lost_whichever_way_is_better(tmp_path):
    folder = _camvid(tmp_path / "cv", count=1)
    trial = Figures(metric=None, macs=10, metrics={"miou": 40.0, "pixel_accuracy": 70.0, "loss": 0.9})
    baseline = Figures(metric=None, macs=20, metrics={"miou": 50.0, "pixel_accuracy": 60.0, "loss": 0.5})
    expected = {"miou": 10.0, "pixel_accuracy": -10.0, "loss": 0.4}  # miou worse, accuracy better, loss worse
    for metric, drop in expected.items():
        recipe = search.parse_search_recipe(_recipe(folder, metric=metric, objectives=["drop", "metric"],
                                                    constraints={"max_drop": 1.0}))
        ours = Figures(**{**trial.__dict__, "metric": trial.metrics[metric]})
        theirs = Figures(**{**baseline.__dict__, "metric": baseline.metrics[metric]})
        assert objective_values(recipe, ours, theirs) == pytest.approx([drop, trial.metrics[metric]])
        assert constraint_values(recipe, ours, theirs) == {"max_drop": pytest.approx(drop - 1.0)}


def test_each_tasks_declared_metrics_are_the_ones_its_evaluation_reports():
    state = ConfusionMatrix(CLASSES)
    state.update(torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4)))
    reported = set(state.result()) - {"n"}
    assert {name for name in reported if not name.startswith("iou_")} == set(SegmentationTask.metric_names)
    top = _TopK(10)
    top.update(torch.randn(4, 10), torch.randint(0, 10, (4,)))
    assert set(top.result()) - {"n"} == set(ClassificationTask.metric_names)
