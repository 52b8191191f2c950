"""Stage ``measure``: latency on a named runtime backend at each batch size, and the
task metric as that runtime computes it, for the current model or a named one; with
``per_layer``, the runtime profiler's time per layer at each batch size too
(``details.per_layer``: ``{"<batch>": [{name, op, ms, percent}, ...]}``, under the
model's name as ``measured`` is when ``model`` names another one)."""

from __future__ import annotations

from dataclasses import asdict

from pydantic import Field, model_validator
from torch import nn

from trimkit import export, measure
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline._runtime_options import RuntimeStageOptions
from trimkit.record import Measurement


class MeasureOptions(RuntimeStageOptions):
    runtime_metric: bool = True
    samples: int | None = Field(default=None, ge=1)
    model: str | None = None
    per_layer: bool = False

    @model_validator(mode="after")
    def _profiler_exists(self) -> MeasureOptions:
        if self.per_layer and not measure.get_backend(self.backend).has_profiler:
            raise ValueError(f"per_layer: the {self.backend} backend has no per-layer profiler; "
                             "use backend: onnxruntime or openvino")
        return self


@register_stage("measure", MeasureOptions, "latency on a runtime backend, and the metric it computes")
def measure_stage(model: nn.Module, ctx: Context, options: MeasureOptions) -> nn.Module:
    subject = model if options.model is None else ctx.model_or_artifact(options.model)
    shapes = [tuple(x.shape[1:]) for x in ctx.example_inputs(1)]
    if isinstance(subject, nn.Module) and options.backend != "torch":
        # export once (parity checked) and time and score that file, not a fresh export per call
        examples = ctx.example_inputs(2)
        subject = export.onnx(subject, examples[0] if len(examples) == 1 else examples, ctx.path("timed.onnx")).path
    latencies = [measure.latency(subject, options, batch_size=batch, input_shapes=shapes, per_layer=options.per_layer)
                 for batch in options.batch_sizes]
    record = Measurement(options.model or "current", latency=[measure.latency_record(x) for x in latencies])
    scorable = ctx.task is not None and "runtime_scoring" in ctx.task.capabilities
    if options.runtime_metric and options.backend != "torch" and scorable:
        task = ctx.task if options.samples is None else ctx.task.subset(ctx.task.eval_split(), options.samples,
                                                                         ctx.seed)
        scored = measure.runtime_evaluation(subject, task, options=options, input_shapes=shapes)
        record.metrics.extend(scored.metrics())
    for item in latencies:
        ctx.say(f"   {options.backend} batch {item.batch_size}: p50 {item.p50_ms:.3f} ms, "
                f"{item.throughput:,.0f} img/s ({item.precision}, {item.threads} threads)")
    per_layer = {str(item.batch_size): [asdict(row) for row in item.per_layer or []] for item in latencies}
    if options.model is None:
        ctx.add(record, **({"per_layer": per_layer} if options.per_layer else {}))
    else:
        ctx.add(measured={options.model: record.to_dict()},
                **({"per_layer": {options.model: per_layer}} if options.per_layer else {}))
    ctx.add(environment=latencies[0].env)
    ctx.keep_model()
    return model
