"""One-pass tracking metrics (OTB's): centre error, IoU, precision at 20 px, success curve.

Boxes are ``x, y, w, h`` arrays of shape ``(frames, 4)``, top-left corner and size in
pixels. Centre errors and overlaps are taken frame by frame, the first frame included
(the tracker is given that box, as OTB's one-pass evaluation does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PRECISION_THRESHOLD = 20.0
SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)


def _boxes(boxes: np.ndarray) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    return array.reshape(1, 4) if array.ndim == 1 else array


def centre_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance between box centres, per frame (pixels)."""
    p, t = _boxes(predicted), _boxes(truth)
    dx = (p[:, 0] + p[:, 2] / 2) - (t[:, 0] + t[:, 2] / 2)
    dy = (p[:, 1] + p[:, 3] / 2) - (t[:, 1] + t[:, 3] / 2)
    return np.hypot(dx, dy)


def ious(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Intersection over union per frame (0 where the boxes do not meet)."""
    p, t = _boxes(predicted), _boxes(truth)
    left = np.maximum(p[:, 0], t[:, 0])
    top = np.maximum(p[:, 1], t[:, 1])
    right = np.minimum(p[:, 0] + p[:, 2], t[:, 0] + t[:, 2])
    bottom = np.minimum(p[:, 1] + p[:, 3], t[:, 1] + t[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = p[:, 2] * p[:, 3] + t[:, 2] * t[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def precision_at(errors: np.ndarray, threshold: float = PRECISION_THRESHOLD) -> float:
    """Fraction of frames whose centre error is at most ``threshold`` pixels."""
    return float(np.mean(np.asarray(errors) <= threshold))


def success_curve(overlaps: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of frames whose IoU exceeds each threshold (OTB's success plot)."""
    values = np.asarray(overlaps)
    return np.array([float(np.mean(values > threshold)) for threshold in thresholds])


def success_auc(overlaps: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> float:
    """Area under the success curve: its mean over evenly spaced thresholds in [0, 1]
    (OTB's AUC; 21 thresholds by default)."""
    return float(np.mean(success_curve(overlaps, thresholds)))


@dataclass(frozen=True)
class TrackingScores:
    """Precision at 20 px, success AUC and mean IoU (fractions in [0, 1]), mean centre
    error (pixels), frames and frames per second of the whole tracker."""

    precision: float
    success_auc: float
    mean_iou: float
    centre_error: float
    frames: int
    fps: float

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}


def score_boxes(predicted: np.ndarray, truth: np.ndarray, seconds: float = 0.0) -> TrackingScores:
    """The scores of one sequence (or of several, concatenated frame by frame)."""
    errors = centre_errors(predicted, truth)
    overlaps = ious(predicted, truth)
    frames = len(errors)
    return TrackingScores(precision_at(errors), success_auc(overlaps), float(np.mean(overlaps)),
                          float(np.mean(errors)), frames, frames / seconds if seconds > 0 else 0.0)


def pool_scores(per_sequence: list[TrackingScores]) -> TrackingScores:
    """Scores over several sequences, each weighted by its frames (OTB pools frames);
    fps is total frames over total time."""
    frames = sum(s.frames for s in per_sequence)
    if not frames:
        return TrackingScores(0.0, 0.0, 0.0, 0.0, 0, 0.0)

    def mean(name: str) -> float:
        return sum(getattr(s, name) * s.frames for s in per_sequence) / frames

    seconds = sum(s.frames / s.fps for s in per_sequence if s.fps > 0)
    return TrackingScores(mean("precision"), mean("success_auc"), mean("mean_iou"), mean("centre_error"), frames,
                          frames / seconds if seconds > 0 else 0.0)
