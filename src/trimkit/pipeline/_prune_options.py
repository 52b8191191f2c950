"""A structured cut in a recipe or command: :class:`trimkit.prune.CutOptions` and the
number of training samples a data criterion sees, shared by the ``prune`` stage, the
schedule's pruners and ``trimkit prune``."""

from __future__ import annotations

from pydantic import Field

from trimkit.pipeline._registry import StageOptions
from trimkit.prune import CutOptions


class CalibratedCut(CutOptions, StageOptions):
    """A cut whose data criterion (``mean_activation``, ``apoz``, ``taylor``) is fed
    ``calibration_samples`` training samples of the run's task."""

    criterion: str = "l1"
    calibration_samples: int = Field(default=256, ge=1)
