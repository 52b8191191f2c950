"""The options of a training run, validated once for ``fit``, the training stages and
``trimkit train``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator
from torch import nn

from trimkit._options import Options


AUTO_MAX_GRAD_NORM = 2.0
#: the learning rate of an optimiser whose ``lr`` is "auto"
AUTO_LR = {"sgd": 0.05, "adam": 0.001, "adamw": 0.001}
#: a model without normalisation layers and more conv and dense layers than this trains with Adam
AUTO_ADAM_ABOVE_LAYERS = 5
#: below this many steps an epoch, ``recalibrate_bn="auto"`` re-estimates batch-norm statistics
#: after it: at BatchNorm's momentum 0.1, 50 steps still keep 0.5 % of where the statistics started,
#: and they trail weights that moved a lot in few steps
AUTO_RECALIBRATE_BN_STEPS = 100


class FitOptions(Options):
    """How ``fit`` trains: epochs, batch, optimiser (SGD with Nesterov momentum, Adam,
    AdamW; ``auto`` by the model, see :meth:`for_model`), peak learning rate (``auto``:
    the optimiser's own) and its schedule (constant, step, cosine, exponential),
    weight decay, compute precision (``auto``: bf16 where native, else fp32),
    augmentation, and gradient clipping (``max_grad_norm``: the gradients' total norm
    is clipped to it; ``auto`` clips to ``AUTO_MAX_GRAD_NORM`` for models without
    normalisation layers, where one large step can kill every ReLU for good, and not
    at all for models with them), and ``recalibrate_bn``: batch-norm running statistics
    re-estimated over the training split (no augmentation) after each epoch, so that
    the model is judged (and saved) with statistics of its final weights; ``auto`` does
    it where an epoch has fewer than ``AUTO_RECALIBRATE_BN_STEPS`` steps (a small
    segmentation set: a few steps an epoch leave the running statistics of the first
    weights, and the model predicts one class everywhere in evaluation)."""

    epochs: int = Field(ge=0)
    batch_size: int | Literal["auto"] = "auto"
    optimizer: Literal["auto", "sgd", "adam", "adamw"] = "auto"
    lr: float | Literal["auto"] = "auto"
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    schedule: Literal["constant", "step", "cosine", "exponential"] = "cosine"
    step_size: int = Field(default=30, ge=1)
    gamma: float = Field(default=0.1, gt=0.0, le=1.0)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    augment: bool = True
    max_grad_norm: float | Literal["auto"] | None = "auto"
    recalibrate_bn: bool | Literal["auto"] = "auto"

    @field_validator("max_grad_norm")
    @classmethod
    def _norm_positive(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{value} is not a gradient norm; give a finite number > 0, auto, or null (no clipping)")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch_positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"{value} is not a batch size; give an integer >= 1 or auto")
        return value

    @field_validator("lr")
    @classmethod
    def _lr_positive(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{value} is not a learning rate; give a finite number > 0")
        return value

    def fit_settings(self) -> dict[str, object]:
        """The fields ``fit`` reads (a subclass's own keys left out), as a checkpoint records them."""
        return {name: getattr(self, name) for name in FitOptions.model_fields}

    def for_model(self, model: nn.Module, task: object | None = None) -> FitOptions:
        """These options with ``optimizer``, ``lr`` and ``batch_size`` "auto" resolved for
        ``model`` and ``task``: the batch is the task kind's ``default_batch_size`` (128
        for classification, 16 for segmentation and tracking; 128 without a task), the
        optimiser the task kind's ``default_optimizer`` where it names one (Adam for
        tracking), else by the model:
        Adam at 0.001 for a deep model without normalisation layers (more than
        AUTO_ADAM_ABOVE_LAYERS conv and dense layers), SGD (Nesterov) at 0.05 for every
        other. Measured on mnist5k, 3 epochs, batch 128: VGG-B (no batch norm, 11 layers)
        stays at chance under SGD at 0.05 (with or without clipping or warm-up) and
        reaches 41.8 / 73.3 / 79.2 % under Adam at 0.001 (at 0.002 it stalls); VGG-A (8
        layers) 10.0 / 11.7 % under SGD and 77.6 / 89.7 % under Adam in 2 epochs; LeNet-5
        (5 layers) reaches 91.1 % under SGD at 0.05 and 80.0 % under Adam at 0.001. An
        optimiser named with lr "auto" takes its own default (AUTO_LR)."""
        from trimkit.train._health import has_normalization

        optimizer = self.optimizer
        if optimizer == "auto" and getattr(task, "default_optimizer", None):
            optimizer = task.default_optimizer
        if optimizer == "auto":
            weight_layers = sum(isinstance(module, (nn.Conv2d, nn.Linear)) for module in model.modules())
            plain_and_deep = not has_normalization(model) and weight_layers > AUTO_ADAM_ABOVE_LAYERS
            optimizer = "adam" if plain_and_deep else "sgd"
        lr = AUTO_LR[optimizer] if self.lr == "auto" else self.lr
        batch = getattr(task, "default_batch_size", 128) if self.batch_size == "auto" else self.batch_size
        return self.model_copy(update={"optimizer": optimizer, "lr": lr, "batch_size": batch})

    def recalibrates_bn(self, steps_per_epoch: int) -> bool:
        """Whether batch-norm statistics are re-estimated after each epoch of this many steps."""
        if self.recalibrate_bn == "auto":
            return steps_per_epoch < AUTO_RECALIBRATE_BN_STEPS
        return bool(self.recalibrate_bn)

    def grad_norm_limit(self, normalized: bool) -> float | None:
        """The norm gradients are clipped to for a model with (or without) normalisation layers."""
        if self.max_grad_norm == "auto":
            return None if normalized else AUTO_MAX_GRAD_NORM
        return self.max_grad_norm
