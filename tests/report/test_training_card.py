"""A training stage's card says the input size trained at and the teacher check's figures
and verdict, each figure the log's own."""

from __future__ import annotations

import json
import re

import trimkit
from trimkit import models, pipeline
from trimkit.report import write_report


def test_the_card_of_a_distillation_says_the_size_trained_at_and_the_teacher_check(tmp_path):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(models.create("lenet5"), teacher)  # fresh weights: at chance, a weak teacher
    said: list[str] = []
    recipe = pipeline.parse_recipe({"model": {"name": "lenet5"},
                                    "task": {"data": "mnist5k", "train_samples": 64, "val_samples": 64},
                                    "export": False,
                                    "stages": [{"stage": "distill", "epochs": 1, "teacher": str(teacher),
                                                "allow_failure": True, "batch_size": 32}]})
    pipeline.run_recipe(recipe, tmp_path / "run", progress=False, say=said.append)
    record = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][1]
    details = record["details"]
    assert details["input_size"] == ["1x28x28"]
    assert any(line.strip() == "training at 1x28x28 (64 samples, batch 32)" for line in said), said
    check = details["distillation"]["teacher_check"]
    html = write_report(tmp_path / "run").read_text(encoding="utf-8")
    card = html[html.index('<article class="stage" id="record-1">'):]
    card = card[:card.index("</article>")]
    assert "Trained at <b>1x28x28</b>" in card
    teacher_line = re.search(r"<p>Teacher check \(val top1\): (.*?)</p>", card).group(1)
    shown = re.findall(r'data-src="([^"]+)"', teacher_line)
    assert check["student_start"] is None  # trained from scratch: no student figure before, shown as a dash
    assert [json.loads(path.replace("&quot;", '"')) for path in shown] == [
        [1, "details", "distillation", "teacher_check", key] for key in ("teacher", "chance", "margin")]
    assert f"{check['teacher']:.2f}" in teacher_line and "<b>weak: at or below" in teacher_line
