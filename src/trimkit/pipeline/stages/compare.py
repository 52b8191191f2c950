"""Stage ``compare``: named models and files measured side by side, interleaved in one
run, as ratios against the first (the demo's closing table)."""

from __future__ import annotations

from pydantic import Field, model_validator
from torch import nn

from trimkit import measure
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline._runtime_options import RuntimeStageOptions


class CompareOptions(RuntimeStageOptions):
    models: list[str] = Field(default_factory=lambda: ["original", "current"], min_length=1)
    labels: list[str] | None = None
    metric_at_batch: int | None = 1

    @model_validator(mode="after")
    def _labels_fit(self) -> CompareOptions:
        if self.labels is not None and len(self.labels) != len(self.models):
            raise ValueError(f"labels: {len(self.labels)} labels for {len(self.models)} models; "
                             "give one label per model")
        return self


@register_stage("compare", CompareOptions, "measure named models side by side, as ratios to the first")
def compare_stage(model: nn.Module, ctx: Context, options: CompareOptions) -> nn.Module:
    subjects = [model if name == "current" else ctx.model_or_artifact(name) for name in options.models]
    # scored with the run's task on its evaluation split, where a runtime can score it batch by batch
    task = ctx.task if ctx.task is not None and "runtime_scoring" in ctx.task.capabilities else None
    shapes = None if task is None else [tuple(x.shape[1:]) for x in task.example_inputs(1)]
    comparisons = []
    for batch in options.batch_sizes:
        comparisons.append(measure.compare(subjects, options, labels=options.labels or options.models,
                                           batch_size=batch, input_shapes=shapes,
                                           task=task if batch == options.metric_at_batch else None))
    ctx.add(comparisons=[c.to_dict() for c in comparisons])
    ctx.keep_model()
    return model
