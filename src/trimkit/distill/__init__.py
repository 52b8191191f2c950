"""Knowledge distillation: a teacher's outputs (and features) as training targets.

``Distiller`` is a ``loss_fn`` for :func:`trimkit.train.fit`, so the teacher runs
beside the student in the one training loop; :func:`distill` wires the two together.
Losses live in :mod:`trimkit.distill.kd`.
"""

from trimkit.distill._distiller import Distiller, FeatureLink, check_outputs, parse_links, teacher_right
from trimkit.distill._run import distill, distilling
from trimkit.distill._teacher import TEACHER_PRECISIONS, PrecisionChoice, choose_precision
from trimkit.distill.kd import (attention_loss, attention_map, check_temperature_alpha, hint_loss, kd_loss,
                                soft_target_loss)

__all__ = [
    "TEACHER_PRECISIONS",
    "Distiller",
    "FeatureLink",
    "PrecisionChoice",
    "attention_loss",
    "attention_map",
    "check_outputs",
    "check_temperature_alpha",
    "choose_precision",
    "distill",
    "distilling",
    "hint_loss",
    "kd_loss",
    "parse_links",
    "soft_target_loss",
    "teacher_right",
]
