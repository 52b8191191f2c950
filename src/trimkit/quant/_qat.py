"""Quantise a model by policy, calibrate it, and fine-tune it with trimkit's trainer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from torch import nn

from trimkit import train
from trimkit.errors import TrimkitError
from trimkit.quant._calibrate import calibrate
from trimkit.quant._convert import quantize_model
from trimkit.quant._plan import ExampleInputs, QuantPlan, plan
from trimkit.quant._policy import PolicyLike
from trimkit.tasks import as_task

CALIBRATION_BATCHES = 8
CALIBRATION_BATCH_SIZE = 64


@dataclass
class QatResult:
    """The fine-tuned quantised model, its plan, and the trainer's history."""

    model: nn.Module
    plan: QuantPlan
    fit: train.FitResult
    calibration_batches: int


def quantize(model: nn.Module, policy: PolicyLike, data: Any = None, *,
             example_inputs: ExampleInputs | None = None,
             calibration_batches: int = CALIBRATION_BATCHES) -> nn.Module:
    """A quantised copy of ``model`` (the original is untouched), its activation scales
    calibrated on the first batches of ``data`` when given. No training: use :func:`qat`.

    The policy is resolved on ``example_inputs``, by default a batch of ``data``.
    """
    if example_inputs is None and data is None:
        raise TrimkitError("quantize needs data (to calibrate activations) or example_inputs")
    batches = None
    inputs = example_inputs
    if data is not None:
        task = as_task(data)  # a data set alone is the training split of its kind's task
        batches = (batch.inputs for batch in task.batches("train", CALIBRATION_BATCH_SIZE))
        if inputs is None:
            inputs = next(iter(task.batches("train", CALIBRATION_BATCH_SIZE))).inputs
    quant_plan = plan(model, policy, inputs)
    quantized = quantize_model(model, quant_plan)
    if batches is not None:
        calibrate(quantized, itertools.islice(batches, calibration_batches))
    return quantized


def qat(model: nn.Module, policy: PolicyLike, train_data: Any, val_data: Any = None, *,
        epochs: int, lr: float = 0.01, example_inputs: ExampleInputs | None = None,
        calibration_batches: int = CALIBRATION_BATCHES, **fit_options: Any) -> QatResult:
    """Quantisation-aware training: quantise a copy of ``model`` by ``policy``, calibrate
    its activations on ``train_data`` (a data set, or a task's train split), then fine-tune
    weights and scales for ``epochs`` with :func:`trimkit.train.fit` (``fit_options`` go to
    it: optimizer, batch_size, weight_decay, schedule, precision, checkpoint, progress, ...)."""
    quantized = quantize(model, policy, train_data, example_inputs=example_inputs,
                         calibration_batches=calibration_batches)
    history = train.fit(quantized, train_data, val_data, epochs=epochs, lr=lr, **fit_options)
    return QatResult(history.model, history.model.trimkit_quant_plan, history, calibration_batches)
