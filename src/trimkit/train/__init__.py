"""Training and evaluation: ``fit`` and ``evaluate``."""

from trimkit._device import autocast, cpu_flags, cpu_has_native_bf16, resolve_device, resolve_precision
from trimkit.train._evaluate import evaluate
from trimkit.train._fit import FitResult, fit, input_sizes, recalibrate_batch_norm
from trimkit.train._health import (CHANCE_MARGIN, TrainingFailed, chance_level, has_normalization, likely_cause,
                                   short_run_warning, training_problem)
from trimkit.train._options import FitOptions
from trimkit.train._schedule import OPTIMIZERS, SCHEDULES, learning_rate
from trimkit.train._seed import seed_everything

__all__ = [
    "CHANCE_MARGIN",
    "OPTIMIZERS",
    "SCHEDULES",
    "FitOptions",
    "FitResult",
    "TrainingFailed",
    "autocast",
    "chance_level",
    "cpu_flags",
    "cpu_has_native_bf16",
    "evaluate",
    "fit",
    "has_normalization",
    "input_sizes",
    "learning_rate",
    "likely_cause",
    "recalibrate_batch_norm",
    "resolve_device",
    "resolve_precision",
    "seed_everything",
    "short_run_warning",
    "training_problem",
]
