"""Distillation losses: Hinton's soft targets, FitNets hints, attention transfer.

All losses are computed in fp32 whatever precision produced their inputs. Class
scores may be (N, C) for classification or (N, C, ...) for dense tasks (segmentation):
the class dimension is 1 and every position counts as one sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trimkit.errors import TrimkitError


def temperature_problem(temperature: float) -> str | None:
    """Why ``temperature`` is no softmax temperature (in words), or None: the one rule."""
    if not (math.isfinite(temperature) and temperature > 0):
        return f"{temperature} is not a temperature; give a number > 0, such as 4"
    return None


def alpha_problem(alpha: float) -> str | None:
    """Why ``alpha`` cannot weight the distillation term (in words), or None: the one rule."""
    if not 0.0 <= alpha <= 1.0:
        return f"{alpha} is outside [0, 1]; alpha weights the distillation term, such as 0.9"
    return None


def check_temperature_alpha(temperature: float, alpha: float) -> None:
    """One-line errors for a temperature that is not positive or an alpha outside [0, 1]."""
    for name, problem in (("temperature", temperature_problem(temperature)), ("alpha", alpha_problem(alpha))):
        if problem:
            raise TrimkitError(f"kd {name}: {problem}")


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton et al. (2015): ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``,
    averaged over samples (and positions, for dense outputs); ``weights`` (one per sample
    or position, as the labels are shaped) scale each term before the mean.

    The ``T^2`` factor keeps the gradient of this term the same size as the
    cross-entropy's when T changes, but only in the high-temperature limit: the
    gradient on the student's logits is ``T * (p_student_T - p_teacher_T)``, up to ``T``
    times the cross-entropy's, so early in training, against a confident teacher, the
    term takes steps several times larger than the labels alone would. Models without
    normalisation layers are trained with gradient clipping for that reason (see
    :func:`trimkit.train.fit`'s ``max_grad_norm``).
    """
    student = _classes_last(student_logits.float())
    teacher = _classes_last(teacher_logits.float())
    log_p_student = F.log_softmax(student / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    if weights is not None:
        kl = kl * weights.reshape(-1).to(kl)
    return kl.mean() * temperature**2


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, hard_loss: torch.Tensor, *,
            temperature: float, alpha: float) -> torch.Tensor:
    """``alpha * soft_target_loss + (1 - alpha) * hard_loss``.

    ``alpha`` weights the distillation (soft-target) term; ``1 - alpha`` weights the
    task's own loss on the true labels (``hard_loss``, e.g. cross-entropy). ``alpha=1``
    learns from the teacher alone, ``alpha=0`` is plain training.
    """
    check_temperature_alpha(temperature, alpha)
    soft = soft_target_loss(student_logits, teacher_logits, temperature) if alpha > 0 else hard_loss.new_zeros(())
    return alpha * soft + (1.0 - alpha) * hard_loss.float()


def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """FitNets (Romero et al. 2015): mean squared error between the (adapted) student
    features and the teacher's, after pooling the larger map to the smaller's size."""
    student, teacher = _same_size(student_features.float(), teacher_features.float())
    return F.mse_loss(student, teacher)


def attention_map(features: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Zagoruyko & Komodakis (2017): the mean over channels of ``|A|^p``, flattened per
    sample and L2-normalised. Channel counts need not match between models."""
    spatial = features.float().abs().pow(p).mean(dim=1)
    return F.normalize(spatial.flatten(1), dim=1)


def attention_loss(student_features: torch.Tensor, teacher_features: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Mean squared difference of the two attention maps (pooled to the same size)."""
    student, teacher = _same_size(student_features.float(), teacher_features.float())
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


def _classes_last(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, d1, d2, ...) -> (N * d1 * d2 ..., C) so that every position is a sample."""
    if logits.dim() <= 2:
        return logits.reshape(len(logits), -1)
    return logits.movedim(1, -1).reshape(-1, logits.shape[1])


def _same_size(student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if student.dim() != 4 or student.shape[-2:] == teacher.shape[-2:]:
        return student, teacher
    size = tuple(min(s, t) for s, t in zip(student.shape[-2:], teacher.shape[-2:]))
    return F.adaptive_avg_pool2d(student, size), F.adaptive_avg_pool2d(teacher, size)
