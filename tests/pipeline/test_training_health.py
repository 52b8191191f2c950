"""Training that never fails silently: the teacher checked before distillation, and a
training stage that learned nothing stopped with the numbers and the likely cause."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import trimkit
from trimkit import data, models, pipeline, tasks, train
from trimkit.cli import app
from trimkit.errors import TrimkitError

runner = CliRunner()


def _recipe(stages, train_samples=256, val_samples=100):
    return pipeline.parse_recipe({"model": {"name": "lenet5"},
                                  "task": {"data": "mnist5k", "train_samples": train_samples,
                                           "val_samples": val_samples},
                                  "stages": stages})


def test_chance_is_the_most_frequent_class_everywhere():
    val = data.load("mnist5k", "val")
    task = tasks.classification(val, val)
    counts = val.labels.bincount()
    assert train.chance_level(task)["top1"] == pytest.approx(100.0 * float(counts.max()) / len(val))


def test_training_problem_names_the_numbers():
    at_chance = [{"epoch": 1, "train_loss": 2.3, "val_top1": 10.0}, {"epoch": 2, "train_loss": 2.3, "val_top1": 10.5}]
    assert train.training_problem(at_chance, "top1", chance=10.0) == (
        "val top1 stayed at chance (10.00, 10.50 by epoch; predicting the most frequent class everywhere scores 10.00)")
    worse = [{"epoch": 1, "train_loss": 1.0, "val_top1": 60.0}]
    assert train.training_problem(worse, "top1", start=85.0, chance=10.0) == (
        "val top1 ended at 60.00, 25.00 points worse than the 85.00 it started at")
    assert train.training_problem(worse, "top1", start=65.0, chance=10.0) is None
    assert train.training_problem([{"epoch": 3, "train_loss": float("nan")}], "top1") == (
        "the training loss is nan in epoch 3")


def test_a_run_too_short_to_judge_is_warned_about_not_failed():
    at_chance = [{"epoch": 1, "train_loss": 2.3, "val_top1": 10.4}]
    assert train.training_problem(at_chance, "top1", chance=10.0, steps=39) is None
    assert train.short_run_warning(at_chance, "top1", chance=10.0, steps=39) == (
        "val top1 is still at chance (10.40; the most frequent class everywhere scores 10.00) after only 39 "
        "optimiser steps, too few to judge; train for more epochs or with a smaller batch")
    assert train.short_run_warning(at_chance, "top1", chance=10.0, steps=50) is None  # judged: a failure instead
    assert train.training_problem(at_chance, "top1", chance=10.0, steps=50) is not None
    learned = [{"epoch": 1, "train_loss": 1.3, "val_top1": 40.0}]
    assert train.short_run_warning(learned, "top1", chance=10.0, steps=39) is None


def test_a_teacher_at_chance_is_reported_with_both_numbers_in_the_log(tmp_path):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(models.create("lenet5"), teacher)  # fresh weights: at chance
    said = []
    result = pipeline.run_recipe(_recipe([{"stage": "distill", "epochs": 1, "teacher": str(teacher),
                                           "allow_failure": True}], train_samples=128),
                                 tmp_path / "run", progress=False, say=said.append)
    check = result.log.records[1].details["distillation"]["teacher_check"]
    assert check["weak"] and check["metric"] == "top1" and check["margin"] == 5.0
    assert check["teacher"] <= check["chance"] + 5.0
    warning = next(line for line in said if "warning" in line)
    assert f"scores val top1 {check['teacher']:.2f}, not above chance ({check['chance']:.2f}" in warning
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged[1]["details"]["distillation"]["teacher_check"] == check


def test_teacher_check_refuse_is_one_line_and_trains_nothing(tmp_path):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(models.create("lenet5"), teacher)
    out = tmp_path / "student.pt"
    result = runner.invoke(app, ["train", "lenet5", "--data", "mnist5k", "--out", str(out), "--epochs", "1",
                                 "--teacher", str(teacher), "--teacher-check", "refuse"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "teacher" in result.stderr and "scores val top1" in result.stderr and "teacher_check: warn" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.pt"]


@pytest.mark.slow
def test_a_fine_tuning_that_ends_far_worse_than_it_started_stops_the_recipe(tmp_path):
    recipe = _recipe([{"stage": "train", "epochs": 2, "save_as": "trained"},
                      {"stage": "finetune", "epochs": 2, "lr": 1000.0, "schedule": "constant"},
                      {"stage": "export"}], train_samples=4000)
    with pytest.raises(train.TrainingFailed) as error:
        pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    message = str(error.value)
    assert message.startswith("training ") and "\n" not in message and "likely cause" in message
    assert isinstance(error.value, TrimkitError)
    logged = [json.loads(line)["stage"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged == ["input", "train"]  # what ran before is kept; nothing after the failure ran
    assert (tmp_path / "run" / "stages" / "00-train" / "model.pt").exists()


def test_cli_train_that_stays_at_chance_exits_3_and_saves_no_model(tmp_path):
    out = tmp_path / "m.pt"
    args = ["train", "lenet5", "--data", "mnist5k", "--out", str(out), "--epochs", "2", "--lr", "1e-7"]
    result = runner.invoke(app, args)
    last = result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 3, result.output
    assert last.startswith("error: training failed: val top1 stayed at chance (") and "lr 1e-07 is too low" in last
    assert not out.exists() and (tmp_path / "m.pt.ckpt").exists()  # the epochs that ran are kept


@pytest.mark.parametrize("teacher_model, message", [
    (lambda: models.create("lraspp_mobilenetv3_large", num_classes=10, width=0.25),
     "error: teacher {path} is a segmentation model (lraspp_mobilenetv3_large), but the student learns "
     "classification; give a classification teacher trained on the same data"),
    (lambda: models.create("lenet5", num_classes=5),
     "error: the teacher predicts 5 classes and the student 10: give a teacher trained for the same 10 classes"),
])
def test_a_teacher_for_another_task_or_other_classes_is_one_line_exit_2_and_writes_nothing(tmp_path, teacher_model,
                                                                                            message):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(teacher_model(), teacher)
    out = tmp_path / "student.pt"
    result = runner.invoke(app, ["train", "lenet5", "--data", "mnist5k", "--out", str(out), "--epochs", "1",
                                 "--teacher", str(teacher)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(message.format(path=teacher)), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.pt"]
