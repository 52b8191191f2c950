"""Every registered task kind keeps the Task contract: splits, batches, a scalar loss, a
metric state holding its primary metric, predictions, example inputs, subsets, and a
one-line refusal of a model of another kind. And the registry is a seam: a kind
registered from outside trimkit runs a recipe with no other change."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import Field
from torch import nn

from kinds import small_task
from trimkit import models, pipeline, tasks
from trimkit.errors import TrimkitError
from trimkit.tasks import CAPABILITIES


@pytest.mark.parametrize("name", tasks.kind_names())
def test_a_kind_declares_its_metrics_and_capabilities(name):
    kind = tasks.kind(name)
    metrics = kind.metrics()
    assert metrics.primary == kind.task_class.primary_metric == metrics.names[0]
    assert set(kind.task_class.metric_names) <= set(metrics.names)
    assert kind.capabilities <= set(CAPABILITIES)
    assert kind.spec().kind == tasks.DEFAULT_KIND or kind.parse_spec({"kind": name}).kind == name


@pytest.mark.parametrize("name", tasks.kind_names())
def test_a_task_of_each_kind_keeps_the_task_contract(name, tmp_path):
    built = small_task(name, tmp_path)
    if built is None:
        pytest.skip(f"no {name} data here (../shared/data)")
    task, model = built
    assert {"train", "val"} <= set(task.splits) and task.eval_split() == "val"
    batch = next(iter(task.batches("train", 2, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert isinstance(batch.inputs, tuple) and len(batch) == 2
    model.eval()
    with torch.no_grad():
        outputs = model(*batch.inputs)
    loss = task.loss(batch.inputs, outputs, batch.targets)
    assert loss.dim() == 0 and math.isfinite(float(loss))
    state = task.metric_state()
    state.update(outputs, batch.targets)
    result = state.result()
    assert task.primary_metric in result and result["n"] == 2
    assert set(task.metric_names) <= set(result)
    assert task.prediction(outputs).shape[0] == 2
    examples = task.example_inputs(3)
    assert isinstance(examples, tuple) and all(len(x) == 3 for x in examples)
    assert task.subset("val", 3).size("val") == 3


@pytest.mark.parametrize("name", [name for name in tasks.kind_names() if name != "tracking"])
def test_a_model_of_another_kind_is_one_line(name, tmp_path):
    built = small_task(name, tmp_path)
    task, _ = built
    other = next(spec for spec in map(models.spec, models.names()) if spec.task != name)
    with pytest.raises(TrimkitError, match=f"is a {other.task} model and .* is {name} data"):
        task.prepared_for(models.create(other.name))


# --- a kind from outside ------------------------------------------------------------


class _Brightness(tasks.Task):
    """A toy regression task: predict an image's mean brightness from the image."""

    name = "brightness"
    primary_metric = "mae"
    metric_names = ("mae", "loss")
    minimised_metrics = frozenset({"mae", "loss"})

    def __init__(self, images: dict[str, torch.Tensor]) -> None:
        self.images = images

    @property
    def splits(self):
        return tuple(self.images)

    def size(self, split):
        return len(self.images[split])

    def batches(self, split, batch_size, *, shuffle=False, augment=False, generator=None, drop_last=False):
        images = self.images[split]
        order = torch.randperm(len(images), generator=generator) if shuffle else torch.arange(len(images))
        for start in range(0, len(images) - (batch_size - 1 if drop_last else 0), batch_size):
            chosen = images[order[start:start + batch_size]]
            yield tasks.Batch((chosen,), chosen.mean(dim=(1, 2, 3)))

    def loss(self, inputs, outputs, targets):
        return nn.functional.mse_loss(outputs[:, 0].float(), targets)

    def metric_state(self):
        return _MeanError()

    def prediction(self, outputs):
        return outputs[:, 0]

    def example_inputs(self, count=1):
        return (self.images["val"][:count],)

    def subset(self, split, count, seed=0):
        return _Brightness({**self.images, split: self.images[split][:count]})


class _MeanError(tasks.MetricState):
    def __init__(self):
        self.total = self.count = 0.0

    def update(self, outputs, targets):
        self.total += float((outputs[:, 0].float() - targets).abs().sum())
        self.count += len(targets)

    def result(self):
        mae = self.total / max(self.count, 1)
        return {"mae": mae, "loss": mae, "n": int(self.count)}


class _BrightnessSpec(tasks.TaskSpec):
    images: int = Field(default=64, ge=8)


def _build(spec, model, seed, splits=("train", "val")):
    generator = torch.Generator().manual_seed(seed)
    return _Brightness({split: torch.rand(spec.images, 1, 28, 28, generator=generator) for split in splits})


def test_a_task_kind_registered_from_outside_runs_a_recipe_unchanged(tmp_path):
    """What adding a kind takes: its task, its recipe block and its builder, registered;
    the recipe, the stages (train, prune, export), the runner and the log need nothing."""
    kind = tasks.register_kind(tasks.TaskKind("brightness", _Brightness, _BrightnessSpec, _build), replace=True)
    try:
        recipe = pipeline.parse_recipe({
            "model": {"name": "lenet5", "num_classes": 1},
            "task": {"kind": "brightness", "images": 32},
            "stages": [{"stage": "train", "epochs": 1, "batch_size": 8, "lr": 0.01, "precision": "fp32"},
                       {"stage": "prune", "ratio": 0.5}, {"stage": "export"}]})
        result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
        assert [record.stage for record in result.log] == ["input", "train", "prune", "export", "final"]
        assert result.final.metric("mae") is not None and result.final.macs < result.baseline.macs
        assert kind.metrics().lower_is_better("mae")
        with pytest.raises(pipeline.RecipeError, match="stage quantize needs a task that offers runtime_scoring"):
            pipeline.parse_recipe({"model": {"name": "lenet5"}, "task": {"kind": "brightness"},
                                   "stages": [{"stage": "quantize", "mode": "ptq"}]})
    finally:
        tasks.KINDS._entries.pop("brightness")
