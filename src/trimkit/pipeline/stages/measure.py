"""Stage ``measure``: latency on a named runtime backend at each batch size, and the
task metric as that runtime computes it, for the current model or a named one."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from trimkit import measure
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline._runtime_options import RuntimeOptions
from trimkit.record import Measurement


class MeasureOptions(RuntimeOptions):
    runtime_metric: bool = True
    samples: int | None = Field(default=None, ge=1)
    model: str | None = None


@register_stage("measure", MeasureOptions, "latency on a runtime backend, and the metric it computes")
def measure_stage(model: nn.Module, ctx: Context, options: MeasureOptions) -> nn.Module:
    subject = model if options.model is None else ctx.model_or_artifact(options.model)
    latencies = [measure.latency(subject, backend=options.backend, batch_size=batch, threads=options.threads,
                                 precision=options.precision, min_time_s=options.min_time_s,
                                 input_shapes=[tuple(x.shape[1:]) for x in ctx.example_inputs(1)])
                 for batch in options.batch_sizes]
    record = Measurement(options.model or "current", latency=[measure.latency_record(x) for x in latencies])
    if options.runtime_metric and options.backend != "torch":
        task = ctx.task if options.samples is None else ctx.task.subset(ctx.task.eval_split(), options.samples,
                                                                         ctx.seed)
        scored = measure.runtime_evaluation(subject, task, backend=options.backend, precision=options.precision,
                                            threads=options.threads,
                                            input_shapes=[tuple(x.shape[1:]) for x in ctx.example_inputs(1)])
        record.metrics.extend(scored.metrics())
    for item in latencies:
        ctx.say(f"   {options.backend} batch {item.batch_size}: p50 {item.p50_ms:.3f} ms, "
                f"{item.throughput:,.0f} img/s ({item.precision}, {item.threads} threads)")
    if options.model is None:
        ctx.add(record)
    else:
        ctx.add(measured={options.model: record.to_dict()})
    ctx.add(environment=latencies[0].env)
    ctx.keep_model()
    return model
