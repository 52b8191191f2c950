"""What stages log in their details when called from Python: the measure stage's
per-layer times."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from torch import nn

from trimkit import data, models, pipeline, tasks
from trimkit.pipeline.stages.measure import MeasureOptions


def test_the_measure_stage_logs_per_layer_times_by_batch_size():
    task = tasks.classification(data.load("mnist5k", "train").subset(64), data.load("mnist5k", "val").subset(32))
    model = models.create("lenet5")
    ctx = pipeline.Context.for_api(task, model)
    ctx.begin(0, None)
    kept = pipeline.get_stage("measure").run(model, ctx, MeasureOptions(per_layer=True, batch_sizes=[1],
                                                                       min_time_s=0.05, runtime_metric=False))
    assert kept is model and ctx.unchanged
    rows = ctx.details["per_layer"]["1"]
    assert rows and all(set(row) == {"name", "op", "ms", "percent"} for row in rows)
    total = sum(row["ms"] for row in rows)
    assert total > 0 and all(row["ms"] >= 0 for row in rows)
    assert abs(sum(row["percent"] for row in rows) - 100.0) < 1e-6
    p50 = ctx.report.latency[0].latency_ms
    assert 0.05 * p50 < total < 20 * p50, (total, p50)
    weight_layers = {name for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}
    assert weight_layers <= {row["name"] for row in rows}, ([row["name"] for row in rows], weight_layers)


def test_per_layer_needs_a_backend_with_a_profiler():
    with pytest.raises(ValidationError, match="no per-layer profiler"):
        MeasureOptions(per_layer=True, backend="torch")
    assert MeasureOptions().per_layer is False
