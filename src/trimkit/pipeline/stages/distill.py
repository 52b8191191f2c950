"""Stage ``distill``: train the model with a teacher (``original`` unless told otherwise).

The same as ``train`` / ``finetune`` with ``teacher:`` set; any training stage takes
``teacher:``, this name says what the stage is for.
"""

from __future__ import annotations

from pydantic import model_validator
from torch import nn

from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline.stages.train import TrainOptions, train_stage


class DistillOptions(TrainOptions):
    teacher: str | None = "original"

    @model_validator(mode="after")
    def _has_a_teacher(self) -> DistillOptions:
        if self.teacher is None:
            raise ValueError("stage distill needs a teacher; "
                             "set teacher: original, a model of the run, or a model file")
        return self


@register_stage("distill", DistillOptions, "train the model with a teacher's soft targets (knowledge distillation)")
def distill_stage(model: nn.Module, ctx: Context, options: DistillOptions) -> nn.Module:
    return train_stage(model, ctx, options)
