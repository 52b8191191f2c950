"""Every registered stage keeps the stage contract: strict options with a summary, a
recipe round trip, and, on a small task of each kind it supports, a model out and a
record in the log; on a kind it does not support, a one-line refusal when the recipe is
read. A stage added without an example here fails these tests."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kinds import small_task
from trimkit import pipeline, tasks
from trimkit.errors import TrimkitError
from trimkit.pipeline import StageOptions
from trimkit.pipeline._registry import unsupported

#: the smallest options of each stage worth running
EXAMPLES = {
    "train": {"epochs": 1, "batch_size": 16, "lr": 0.01, "precision": "fp32"},
    "finetune": {"epochs": 1, "batch_size": 16, "lr": 0.01, "precision": "fp32"},
    "distill": {"epochs": 1, "batch_size": 16, "lr": 0.01, "precision": "fp32", "teacher_precision": "fp32"},
    "prune": {"ratio": 0.5},
    "prune_unstructured": {"sparsity": 0.5},
    "quantize": {"mode": "qat", "policy": "int8", "epochs": 0},
    "export": {},
    "measure": {"min_time_s": 0.02, "min_iters": 2, "warmup": 1, "runtime_metric": False},
    "compare": {"min_time_s": 0.02, "min_iters": 2, "warmup": 1, "metric_at_batch": None},
    "track": {"frames": 3},
    "deploy": {"backends": ["onnxruntime"], "precisions": ["fp32"], "threads": [1], "min_time_s": 0.02,
               "min_iters": 2, "warmup": 1},
}


def test_every_stage_has_an_example():
    assert set(EXAMPLES) == set(pipeline.stage_names())


@pytest.mark.parametrize("name", pipeline.stage_names())
def test_options_are_strict_and_round_trip_through_a_recipe(name):
    stage = pipeline.get_stage(name)
    assert issubclass(stage.options, StageOptions) and stage.summary
    with pytest.raises(ValidationError, match="extra"):
        stage.options.model_validate({**EXAMPLES[name], "no_such_key": 1})
    options = stage.options.model_validate(EXAMPLES[name])
    assert stage.options.model_validate(options.model_dump(mode="json")) == options  # as recipe.yaml holds it


@pytest.mark.parametrize("kind", tasks.kind_names())
@pytest.mark.parametrize("name", pipeline.stage_names())
def test_a_stage_runs_on_each_kind_it_supports_and_refuses_the_others(name, kind, tmp_path):
    options = pipeline.get_stage(name).options.model_validate(EXAMPLES[name])
    problem = unsupported(options, tasks.kind(kind).capabilities, kind)
    if problem is not None:
        with pytest.raises(pipeline.RecipeError, match=f"stage {name} needs a task that offers"):
            pipeline.parse_recipe({"model": {"name": "lenet5"}, "task": {"kind": kind},
                                   "stages": [{"stage": name, **EXAMPLES[name]}]})
        return
    if kind != "classification":
        pytest.skip("stages run on the classification task here; the kind's own tests run its stages")
    task, model = small_task(kind, tmp_path)
    job = pipeline.run_job(model, task, [(name, options)], progress=False)
    assert job.model is not None and [record.stage for record in job.records] == ["input", name]
    assert job.records[-1].measurement.params and job.records[-1].measurement.macs


def test_a_stage_on_a_task_it_does_not_support_is_refused_in_one_line(tmp_path):
    task, model = small_task("classification", tmp_path)
    track = pipeline.get_stage("track").options.model_validate(EXAMPLES["track"])
    with pytest.raises(TrimkitError, match=r"^stage track needs a task that offers sequences"):
        pipeline.run_job(model, task, [("track", track)], progress=False)
