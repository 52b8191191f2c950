"""Stage ``compare``: named models and files measured side by side, interleaved in one
run, as ratios against the first (the demo's closing table)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from torch import nn

from trimkit import measure
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.tasks import ClassificationTask


class CompareOptions(StageOptions):
    models: list[str] = Field(default_factory=lambda: ["original", "current"], min_length=1)
    labels: list[str] | None = None
    backend: Literal["onnxruntime", "openvino", "torch"] = "onnxruntime"
    batch_sizes: list[int] = Field(default_factory=lambda: [1], min_length=1)
    threads: int | None = Field(default=None, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    min_time_s: float = Field(default=1.0, gt=0.0)
    metric_at_batch: int | None = 1

    @model_validator(mode="after")
    def _labels_fit(self) -> CompareOptions:
        if self.labels is not None and len(self.labels) != len(self.models):
            raise ValueError(f"labels: {len(self.labels)} labels for {len(self.models)} models; "
                             "give one label per model")
        if any(size < 1 for size in self.batch_sizes):
            raise ValueError(f"batch_sizes: each must be >= 1, got {self.batch_sizes}")
        return self


@register_stage("compare", CompareOptions, "measure named models side by side, as ratios to the first")
def compare_stage(model: nn.Module, ctx: Context, options: CompareOptions) -> nn.Module:
    subjects = [model if name == "current" else ctx.model_or_artifact(name) for name in options.models]
    data = None
    if isinstance(ctx.task, ClassificationTask):
        data = ctx.task.dataset(ctx.task.eval_split())
    comparisons = []
    for batch in options.batch_sizes:
        comparisons.append(measure.compare(subjects, labels=options.labels or options.models, backend=options.backend,
                                           batch_size=batch, threads=options.threads, precision=options.precision,
                                           min_time_s=options.min_time_s,
                                           data=data if batch == options.metric_at_batch else None))
    ctx.add(comparisons=[c.to_dict() for c in comparisons])
    return model
