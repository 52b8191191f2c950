"""Stage ``track``: run the tracker on the task's held-out sequences and record OTB's
metrics (precision at 20 px, success AUC, mean IoU, frames per second) beside the
model's other figures. The model is not changed."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.record import Measurement, Metric
from trimkit.tracking import TrackerParams


class TrackOptions(StageOptions):
    tracker: TrackerParams | None = None
    frames: int | None = Field(default=None, ge=2)

    def needs(self) -> frozenset[str]:
        return frozenset({"sequences"})


@register_stage("track", TrackOptions, "track the held-out sequences; record precision, success AUC, mean IoU, fps")
def track_stage(model: nn.Module, ctx: Context, options: TrackOptions) -> nn.Module:
    evaluation = ctx.require_task("tracking").track_scores(model, options.tracker, frames=options.frames,
                                                           progress=ctx.progress)
    pooled = evaluation.pooled
    data = ctx.task.data_name("val")
    metrics = [Metric(name, float(getattr(pooled, name)), "sequences", pooled.frames, "fp32", "pytorch", data)
               for name in ("precision", "success_auc", "mean_iou", "centre_error", "fps")]
    ctx.add(Measurement(model="", metrics=metrics),
            sequences={name: scores.as_dict() for name, scores in evaluation.per_sequence.items()},
            per_frame_ms=evaluation.timings.per_frame_ms())
    ctx.say(f"   tracked {pooled.frames} frames: precision {pooled.precision:.3f}, success AUC "
            f"{pooled.success_auc:.3f}, mean IoU {pooled.mean_iou:.3f}")
    ctx.keep_model()
    return model
