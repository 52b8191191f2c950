"""Single-object tracking: sequences, the SiamFC tracker, and OTB's metrics.

>>> from trimkit import tracking
>>> sequence = tracking.load_sequence("../shared/data/tracking/vot14_sphere")      # doctest: +SKIP
>>> result = tracking.track(model, sequence)                                     # doctest: +SKIP
>>> tracking.score_boxes(result.boxes, sequence.boxes).precision                 # doctest: +SKIP
>>> tracking.evaluate_tracker(model, [sequence]).pooled.success_auc              # doctest: +SKIP

The model is a Siamese tracker (``trimkit.models.create("siamfc")``): ``embed(images)``
runs the shared backbone, ``head(exemplar_features, search_features)`` gives scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence as Seq

from torch import nn

from trimkit.tracking._crop import crop, exemplar_side, frame_tensor, normalize
from trimkit.tracking._metrics import (PRECISION_THRESHOLD, SUCCESS_THRESHOLDS, TrackingScores, centre_errors, ious,
                                       pool_scores, precision_at, score_boxes, success_auc, success_curve)
from trimkit.tracking._pairs import PairConfig, PairSource, StillObject, camvid_objects
from trimkit.tracking._sequence import (Sequence, check_sequence, is_sequence, load_sequence, load_sequences,
                                        polygon_to_box, read_boxes)
from trimkit.tracking._synthetic import generate_sequence
from trimkit.tracking._tracker import (SiamTracker, Timings, TrackerParams, TrackResult, check_tracker_model,
                                       is_tracker_model, track)

__all__ = [
    "PRECISION_THRESHOLD", "SUCCESS_THRESHOLDS", "PairConfig", "PairSource", "Sequence", "SiamTracker", "StillObject",
    "Timings", "TrackResult", "TrackerEvaluation", "TrackerParams", "TrackingScores", "camvid_objects",
    "centre_errors", "check_sequence", "check_tracker_model", "crop", "evaluate_tracker", "exemplar_side",
    "frame_tensor", "generate_sequence", "ious", "is_sequence", "is_tracker_model", "load_sequence",
    "load_sequences", "normalize", "polygon_to_box", "pool_scores", "precision_at", "read_boxes", "score_boxes",
    "success_auc", "success_curve", "track",
]


@dataclass(frozen=True)
class TrackerEvaluation:
    """Scores pooled over sequences (frame-weighted), per sequence, and the summed
    per-part timings of the tracker."""

    pooled: TrackingScores
    per_sequence: dict[str, TrackingScores]
    timings: Timings


def evaluate_tracker(model: nn.Module, sequences: Seq[Sequence], params: TrackerParams | None = None, *,
                     embed=None, embed_exemplar=None, progress: bool = False) -> TrackerEvaluation:
    """Track each sequence from its first box and score it against its boxes."""
    from trimkit._progress import progress_bar

    check_tracker_model(model)
    per_sequence: dict[str, TrackingScores] = {}
    timings = Timings()
    seconds = 0.0
    with progress_bar(progress) as bar:
        job = bar.add_task("tracking", total=sum(len(s) for s in sequences), stats="")
        for sequence in sequences:
            result = track(model, sequence, params, embed=embed, embed_exemplar=embed_exemplar,
                           on_frame=lambda i, box: bar.advance(job))
            # fps over the frames actually tracked (the first is given)
            scores = score_boxes(result.boxes, sequence.boxes)
            per_sequence[sequence.name] = TrackingScores(scores.precision, scores.success_auc, scores.mean_iou,
                                                         scores.centre_error, scores.frames, result.fps)
            seconds += result.seconds
            for name in ("crop", "backbone", "correlation", "update", "frames"):
                setattr(timings, name, getattr(timings, name) + getattr(result.timings, name))
    pooled = replace(pool_scores(list(per_sequence.values())),
                     fps=timings.frames / seconds if seconds > 0 else 0.0)
    return TrackerEvaluation(pooled, per_sequence, timings)
