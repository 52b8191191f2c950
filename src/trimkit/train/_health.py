"""Whether a training run learned: the chance level of a task, the verdict on a
history, and the likely cause, so that a run that failed says so in one line instead
of saving a model that predicts one class everywhere."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from trimkit.errors import TrimkitError

#: a validation metric within this many points of the chance level learned nothing
CHANCE_MARGIN = 1.0
#: a run of fewer optimiser steps is too short to call "at chance" a failure
MIN_JUDGED_STEPS = 50
#: a run whose validation metric ends this many points below where it started failed
WORSE_MARGIN = 10.0

_NORMALIZATION = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


class TrainingFailed(TrimkitError):
    """Training ran but did not learn (loss not finite, metric at chance, or much worse
    than at the start). The CLI exits with code 3, not 2: the input was valid."""

    exit_code = 3


def has_normalization(model: nn.Module) -> bool:
    """Whether ``model`` has a batch, instance, group or layer norm."""
    return any(isinstance(module, _NORMALIZATION) for module in model.modules())


@torch.no_grad()
def chance_level(task: Any, split: str | None = None, batch_size: int = 64) -> dict[str, float] | None:
    """The task's metrics for predicting the split's most frequent class everywhere (a
    model that learned nothing from its inputs scores about this), or None where the
    labels are not class indices (tracking)."""
    split = split or task.eval_split()
    counts = None
    for batch in task.batches(split, batch_size):
        targets = batch.targets
        if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32, torch.uint8):
            return None
        classes = getattr(task, "num_classes", None)
        if classes is None:
            return None
        valid = targets[(targets >= 0) & (targets < classes)].long()
        found = torch.bincount(valid.reshape(-1), minlength=classes)
        counts = found if counts is None else counts + found
    if counts is None or int(counts.sum()) == 0:
        return None
    majority = int(counts.argmax())
    state = task.metric_state()
    for batch in task.batches(split, batch_size):
        shape = (len(batch.targets), task.num_classes, *batch.targets.shape[1:])
        logits = torch.zeros(shape)
        logits[:, majority] = 1.0
        state.update(logits, batch.targets)
    return {name: float(value) for name, value in state.result().items() if name != "n"}


def training_problem(history: Sequence[dict[str, float]], primary: str, *, higher_is_better: bool = True,
                     start: float | None = None, chance: float | None = None,
                     steps: int | None = None) -> str | None:
    """What went wrong in ``history`` (``fit``'s per-epoch records), in words with the
    numbers, or None: a training loss that is not finite, a validation metric that
    never left the chance level, or one that ended ``WORSE_MARGIN`` points worse than
    ``start`` (the metric before training). A run of fewer than ``MIN_JUDGED_STEPS``
    optimiser ``steps`` is judged only by its loss: it is too short to have learned."""
    for record in history:
        loss = record.get("train_loss")
        if loss is not None and not math.isfinite(loss):
            return f"the training loss is {loss} in epoch {record['epoch']}"
    values = [record[f"val_{primary}"] for record in history if f"val_{primary}" in record]
    if not values:
        return None
    shown = ", ".join(f"{value:.2f}" for value in values[-5:])
    long_enough = steps is None or steps >= MIN_JUDGED_STEPS
    if higher_is_better and chance is not None and long_enough and max(values) <= chance + CHANCE_MARGIN:
        return (f"val {primary} stayed at chance ({shown} by epoch; predicting the most frequent class "
                f"everywhere scores {chance:.2f})")
    if start is not None and long_enough:
        drop = start - values[-1] if higher_is_better else values[-1] - start
        if drop > WORSE_MARGIN:
            return (f"val {primary} ended at {values[-1]:.2f}, {drop:.2f} points worse than the {start:.2f} it "
                    "started at")
    return None


def short_run_warning(history: Sequence[dict[str, float]], primary: str, *, higher_is_better: bool = True,
                      chance: float | None = None, steps: int | None = None) -> str | None:
    """For a run too short to be judged (fewer than ``MIN_JUDGED_STEPS`` optimiser steps)
    whose validation metric is still at chance: a warning with the numbers, not a
    failure (so few steps may not have learned yet), or None."""
    if steps is None or steps >= MIN_JUDGED_STEPS or chance is None or not higher_is_better:
        return None
    values = [record[f"val_{primary}"] for record in history if f"val_{primary}" in record]
    if not values or max(values) > chance + CHANCE_MARGIN:
        return None
    return (f"val {primary} is still at chance ({values[-1]:.2f}; the most frequent class everywhere scores "
            f"{chance:.2f}) after only {steps} optimiser steps, too few to judge; train for more epochs or with a "
            "smaller batch")


def likely_cause(model: nn.Module, options: Any, *, distilling: bool = False, fine_tuning: bool = False,
                 task: Any = None) -> str:
    """The likeliest reason a run of ``model`` with ``options`` (FitOptions) on ``task`` failed, and the fix."""
    if hasattr(options, "for_model"):
        options = options.for_model(model, task)
    if distilling:
        return ("likely cause: the teacher (see its check above) or the soft term's step size; train without the "
                "teacher, lower lr, or lower kd_alpha")
    if (options.optimizer == "sgd" and options.lr < 1e-3) or options.lr < 1e-5:
        return f"likely cause: lr {options.lr:g} is too low to learn in {options.epochs} epochs; raise it"
    if fine_tuning:
        return f"likely cause: lr {options.lr} is too high for fine-tuning; try a tenth of it"
    if not has_normalization(model):
        return (f"likely cause: lr {options.lr} ({options.optimizer}) for a model without normalisation layers; "
                "lower lr, or use optimizer adam with lr 0.001")
    return f"likely cause: lr {options.lr} ({options.optimizer}) or the labels; lower lr or check the data"
