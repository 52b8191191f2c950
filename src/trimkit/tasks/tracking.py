"""Single-object tracking as a task: Siamese training pairs, SiamFC's balanced logistic
loss, pair metrics per batch, and tracking metrics on held-out sequences.

A batch is ``inputs = (exemplars, searches)`` (normalised crops, ``B x 3 x 127 x 127``
and ``B x 3 x 255 x 255``) and ``targets`` the target's offset from each search crop's
centre (``B x 2``, search-crop pixels). The label map is built in the loss from the
score map's size and the model's total stride: cells within ``positive_radius`` pixels
of the target are positive, the rest negative, each class weighted to half the loss.

``metric_state`` scores pairs (the score peak's distance from the target in search-crop
pixels: ``pair_precision``, the share within 20 px, is the primary metric); the
tracking metrics of OTB (precision at 20 px, success AUC, mean IoU, fps) come from
running the tracker on ``sequences`` (:meth:`TrackingTask.track_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trimkit.errors import TrimkitError
from trimkit.models._registry import IMAGENET_NORMALIZATION
from trimkit.tasks._kinds import TaskKind, TaskSpec, register_kind
from trimkit.tasks._task import Batch, MetricState, Task
from trimkit.tracking._crop import normalize
from trimkit.tracking._pairs import PairSource
from trimkit.tracking._sequence import Sequence
from trimkit.tracking._tracker import TrackerParams

PAIR_THRESHOLD = 20.0


def score_labels(size: int, stride: int, offsets: torch.Tensor, radius: float) -> torch.Tensor:
    """``B x 1 x size x size``: 1 where a cell lies within ``radius`` search-crop pixels
    of the target (``offsets``, ``B x 2`` from the centre), else 0."""
    cells = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * stride
    dx = cells.view(1, 1, size) - offsets[:, 0].view(-1, 1, 1)
    dy = cells.view(1, size, 1) - offsets[:, 1].view(-1, 1, 1)
    return (dx.square() + dy.square() <= radius * radius).float().unsqueeze(1)


def balanced_logistic_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SiamFC's loss: logistic loss per cell, positives and negatives each weighted to
    half of every pair's total, averaged over the batch."""
    positives = labels.flatten(1).sum(1).clamp_min(1).view(-1, 1, 1, 1)
    negatives = (1 - labels).flatten(1).sum(1).clamp_min(1).view(-1, 1, 1, 1)
    weights = labels * 0.5 / positives + (1 - labels) * 0.5 / negatives
    cell = F.binary_cross_entropy_with_logits(scores.float(), labels, reduction="none")
    return (cell * weights).flatten(1).sum(1).mean()


def peak_offsets(scores: torch.Tensor, stride: int) -> torch.Tensor:
    """The score peak's offset from the centre in search-crop pixels (``B x 2``)."""
    size = scores.shape[-1]
    flat = scores.flatten(1).argmax(1)
    rows, cols = flat // size, flat % size
    return torch.stack([cols, rows], 1).float().sub((size - 1) / 2).mul(stride)


@dataclass(frozen=True)
class TrackingTask(Task):
    """Pairs for ``train`` (drawn afresh each epoch from ``train_source``) and ``val``
    (a fixed set from ``val_source``); ``sequences`` are tracked by ``track_scores``."""

    train_source: PairSource = field(default_factory=PairSource)
    val_source: PairSource = field(default_factory=PairSource)
    sequences: tuple[Sequence, ...] = ()
    pairs_per_epoch: int = 2000
    val_pairs: int = 128
    total_stride: int = 8
    positive_radius: float = 16.0
    normalization: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_NORMALIZATION
    seed: int = 0
    name_of_data: str = "tracking"
    limits: tuple[tuple[str, int], ...] = ()
    tracker: TrackerParams = field(default_factory=TrackerParams)

    name = "tracking"
    primary_metric = "pair_precision"
    metric_names = ("pair_precision", "pair_centre_error", "loss")
    minimised_metrics = frozenset({"pair_centre_error", "loss"})
    capabilities = frozenset({"sequences"})
    default_batch_size = 16  # the pairs batch of the SiamFC recipes (not measured against others here)
    # SiamFC (siamfc-shared-data.yaml) under SGD at 0.05 had a loss of nan at the 5th step; Adam at 0.001 learns
    default_optimizer = "adam"

    def __post_init__(self) -> None:
        if self.train_source.empty and self.val_source.empty:
            raise TrimkitError("a tracking task needs training pairs: sequences or still objects")

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(name for name, source in (("train", self.train_source), ("val", self.val_source))
                     if not source.empty)

    def _source(self, split: str) -> PairSource:
        if split not in self.splits:
            raise TrimkitError(f"task has no {split!r} split; it has {', '.join(self.splits) or 'none'}")
        return self.train_source if split == "train" else self.val_source

    def size(self, split: str) -> int:
        self._source(split)
        count = self.pairs_per_epoch if split == "train" else self.val_pairs
        return min(count, dict(self.limits).get(split, count))

    def data_name(self, split: str) -> str | None:
        return self.name_of_data

    def _seeds(self, split: str, shuffle: bool, generator: torch.Generator | None) -> list[int]:
        count = self.size(split)
        if split == "train" and shuffle:
            base = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        else:
            base = self.seed * 1_000_003 + (0 if split == "train" else 7_919)
        return [base + index for index in range(count)]

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[Batch]:
        source = self._source(split)
        seeds = self._seeds(split, shuffle, generator)
        stop = len(seeds) - len(seeds) % batch_size if drop_last else len(seeds)
        for start in range(0, stop, batch_size):
            pairs = [source.pair(seed, augment) for seed in seeds[start:start + batch_size]]
            exemplars = normalize(torch.stack([p[0] for p in pairs]), self.normalization)
            searches = normalize(torch.stack([p[1] for p in pairs]), self.normalization)
            yield Batch((exemplars, searches), torch.stack([p[2] for p in pairs]))

    def labels(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return score_labels(outputs.shape[-1], self.total_stride, targets.float(), self.positive_radius)

    def loss(self, inputs: tuple[torch.Tensor, ...], outputs: Any, targets: Any) -> torch.Tensor:
        return balanced_logistic_loss(outputs, self.labels(outputs, targets).to(outputs.device))

    def metric_state(self) -> MetricState:
        return _PairMetrics(self)

    def prediction(self, outputs: Any) -> torch.Tensor:
        return outputs.flatten(1).argmax(1)

    def example_inputs(self, count: int = 1) -> tuple[torch.Tensor, ...]:
        split = "val" if "val" in self.splits else "train"
        return next(self.batches(split, count)).inputs

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.normalization

    def subset(self, split: str, count: int, seed: int = 0) -> TrackingTask:
        return replace(self, limits=(*[(s, c) for s, c in self.limits if s != split], (split, int(count))))

    def track_scores(self, model: torch.nn.Module, params: Any = None, *, embed: Any = None,
                     frames: int | None = None, progress: bool = False):
        """Track every held-out sequence (its first ``frames`` frames if given): the
        pooled :class:`~trimkit.tracking.TrackingScores` and the per-sequence ones."""
        from trimkit.tracking import evaluate_tracker

        if not self.sequences:
            raise TrimkitError("this tracking task holds no evaluation sequences; give eval_sequences in the recipe")
        sequences = [s.head(frames) if frames else s for s in self.sequences]
        return evaluate_tracker(model, sequences, params or self.tracker, embed=embed, progress=progress)


class _PairMetrics(MetricState):
    def __init__(self, task: TrackingTask) -> None:
        self.task = task
        self.loss_sum = self.error_sum = 0.0
        self.hits = self.count = 0

    def update(self, outputs: Any, targets: Any) -> None:
        scores = outputs.float()
        targets = targets.float().to(scores.device)
        batch = len(scores)
        self.loss_sum += float(self.task.loss((), scores, targets)) * batch
        errors = (peak_offsets(scores, self.task.total_stride) - targets).norm(dim=1)
        self.error_sum += float(errors.sum())
        self.hits += int((errors <= PAIR_THRESHOLD).sum())
        self.count += batch

    def result(self) -> dict[str, float]:
        count = max(self.count, 1)
        return {"pair_precision": 100.0 * self.hits / count, "pair_centre_error": self.error_sum / count,
                "loss": self.loss_sum / count, "n": self.count}


def tracking_task(train_sequences: list[Sequence] | None = None, stills: list | None = None,
                  eval_sequences: list[Sequence] | None = None, *, model: torch.nn.Module | None = None,
                  pairs_per_epoch: int = 2000, val_pairs: int = 128, positive_radius: float = 16.0,
                  config: Any = None, seed: int = 0, name: str = "tracking") -> TrackingTask:
    """A tracking task: pairs from ``train_sequences`` and still objects for training,
    fixed pairs from ``eval_sequences`` for validation, and those sequences to track.
    ``model`` supplies the total stride and the input normalisation."""
    from trimkit import models
    from trimkit.tracking._pairs import PairConfig

    config = config or PairConfig()
    stride = int(getattr(model, "total_stride", 8)) if model is not None else 8
    origin = models.origin(model) if model is not None else None
    normalization = (origin.normalization() if origin is not None else None) or IMAGENET_NORMALIZATION
    evaluation = list(eval_sequences or [])
    return TrackingTask(
        train_source=PairSource(list(train_sequences or []), list(stills or []), config),
        val_source=PairSource(evaluation, [], replace(config, still_fraction=0.0)),
        sequences=tuple(evaluation), pairs_per_epoch=pairs_per_epoch, val_pairs=val_pairs, total_stride=stride,
        positive_radius=positive_radius, normalization=tuple(map(tuple, normalization)), seed=seed,
        name_of_data=name)


class TrackingData(BaseModel):
    """A recipe's tracking data (``task.tracking``): which sequences of ``task.data``
    (a folder of sequences; default the shared ``tracking`` folder) train and which are
    held out, still images whose objects train as augmented pairs (``stills: camvid``),
    how many pairs an epoch draws, and the tracker that judges the held-out sequences."""

    model_config = ConfigDict(extra="forbid")
    train_sequences: list[str] = Field(default_factory=list)
    eval_sequences: list[str] = Field(default_factory=list)
    stills: str | None = None
    stills_limit: int | None = Field(default=None, ge=1)
    pairs_per_epoch: int = Field(default=2000, ge=1)
    val_pairs: int = Field(default=128, ge=1)
    max_gap: int = Field(default=50, ge=0)
    max_shift: float = Field(default=32.0, ge=0.0)
    positive_radius: float = Field(default=16.0, gt=0.0)
    still_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    eval_frames: int | None = Field(default=None, ge=2)
    tracker: TrackerParams = Field(default_factory=TrackerParams)

    @model_validator(mode="after")
    def _held_out(self) -> TrackingData:
        overlap = sorted(set(self.train_sequences) & set(self.eval_sequences))
        if overlap:
            raise ValueError(f"eval_sequences: {', '.join(overlap)} also train; hold evaluation sequences out")
        return self


PREFIX = "tracking:"


def sequences_folder(data: str | None, data_dir: Any = None) -> Path:
    """The folder of sequences ``data`` names (``tracking:DIR`` as a command's --data, a
    folder, or a name under the data folders; default the shared ``tracking``)."""
    return _data_folder((data or "tracking").removeprefix(PREFIX) or "tracking", data_dir, "tracking sequences")


def _data_folder(name: str, data_dir: str | None, what: str) -> Path:
    from trimkit.data._locate import find_first

    path = Path(name)
    if path.is_dir():
        return path
    return find_first(data_dir, name, [name])


def _pick(sequences: list[Sequence], names: list[str], folder: Path, key: str) -> list[Sequence]:
    known = {s.name: s for s in sequences}
    missing = [name for name in names if name not in known]
    if missing:
        raise TrimkitError(f"task.tracking.{key}: no sequence {', '.join(missing)} in {folder}; it has "
                           f"{', '.join(sorted(known))}")
    return [known[name] for name in names]


def build_tracking_task(options: TrackingData | None, data: str | None, data_dir: str | None,
                        model: torch.nn.Module, seed: int = 0) -> TrackingTask:
    """The task a recipe's ``task: {kind: tracking, data, tracking: {...}}`` describes.

    Without ``train_sequences``/``eval_sequences``, every sequence but the last (by
    name) trains and the last is held out."""
    from trimkit.tracking import check_tracker_model, load_sequences
    from trimkit.tracking._pairs import PairConfig, camvid_objects

    check_tracker_model(model, "the recipe's model")
    options = options or TrackingData()
    folder = sequences_folder(data, data_dir)
    sequences = load_sequences(folder)
    if options.train_sequences or options.eval_sequences:
        train = _pick(sequences, options.train_sequences, folder, "train_sequences")
        held = _pick(sequences, options.eval_sequences, folder, "eval_sequences")
        if not held:
            raise TrimkitError("task.tracking.eval_sequences: none given; hold out at least one sequence of "
                               f"{folder} ({', '.join(s.name for s in sequences)}) to judge the tracker on")
        if not train and not options.stills:
            raise TrimkitError("task.tracking: nothing to train on; give train_sequences or stills (camvid)")
    else:
        if len(sequences) < 2 and not options.stills:
            raise TrimkitError(f"{folder} holds one sequence; hold it out for evaluation and train on still "
                               "images (task.tracking.stills: camvid), or add sequences")
        train, held = sequences[:-1], sequences[-1:]
    stills = []
    if options.stills:
        stills = camvid_objects(_data_folder(options.stills, data_dir, "still images"), limit=options.stills_limit)
        if not stills:
            raise TrimkitError(f"task.tracking.stills: no objects found in {options.stills}; give a CamVid-layout "
                               "folder (train/*.jpg with trainannot/*.png label maps)")
    if options.eval_frames:
        held = [s.head(options.eval_frames) for s in held]
    config = PairConfig(exemplar_size=options.tracker.exemplar_size, search_size=options.tracker.search_size,
                        context=options.tracker.context, max_gap=options.max_gap, max_shift=options.max_shift,
                        still_fraction=options.still_fraction)
    task = tracking_task(train, stills, held, model=model, pairs_per_epoch=options.pairs_per_epoch,
                         val_pairs=options.val_pairs, positive_radius=options.positive_radius, config=config,
                         seed=seed, name=folder.name)
    return replace(task, tracker=options.tracker)


class TrackingSpec(TaskSpec):
    """``task: {kind: tracking, data: tracking, tracking: {...}}``: a folder of sequences
    (default the shared ``tracking`` folder) and how they train and are held out."""

    tracking: TrackingData | None = None


def build(spec: TrackingSpec, model: Any = None, seed: int = 0, splits: tuple[str, ...] = ("train", "val")
          ) -> TrackingTask:
    """The tracking task of a recipe's task block: pairs drawn from the training sequences,
    the held-out ones tracked (``splits`` are always train and val)."""
    return build_tracking_task(spec.tracking, spec.data, spec.data_dir, model, seed)


def _holds(data: str | None, data_dir: Any) -> bool:
    return (data or "").startswith(PREFIX)


KIND = register_kind(TaskKind("tracking", TrackingTask, TrackingSpec, build, holds=_holds))
