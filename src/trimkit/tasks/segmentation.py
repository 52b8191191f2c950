"""Semantic segmentation: per-pixel class indices with a void label, per-pixel
cross-entropy, and metrics from one confusion matrix accumulated over the whole split.

Metrics (percent, as the SegNet / CamVid protocol states them), void pixels ignored:

- ``pixel_accuracy`` (primary; the robots seed's "global pixel accuracy"): correctly
  labelled pixels over all labelled pixels;
- ``mean_class_accuracy``: per-class recall, averaged over the classes present in the
  ground truth;
- ``miou``: per-class TP / (TP + FP + FN), averaged over the classes that occur in the
  ground truth or the predictions (a class absent from both has no IoU);
- ``iou_<class>``: each class's IoU, for every class that has one.

A task scores only the classes its labels use (in any split): a VOC-layout folder with
two of VOC's 21 classes is judged on those two in training and in validation alike, so
a class the model predicts but no mask holds lowers the labelled classes' IoU (as
false negatives) without adding a zero of its own to the mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from pydantic import PositiveInt

from trimkit.data._segmentation import (VOID, SegmentationDataset, is_segmentation_data, load_segmentation,
                                        segmentation_classes)
from trimkit.errors import TrimkitError
from trimkit.tasks._kinds import TaskKind, TaskSpec, register_kind
from trimkit.tasks._task import Batch, MetricState, SplitDatasets, Task


@dataclass(frozen=True)
class SegmentationTask(SplitDatasets, Task):
    """Splits of :class:`~trimkit.data.SegmentationDataset` by name; each batch is one
    image tensor (N, C, H, W) and its masks (N, H, W) of class indices or void (255).
    Model outputs are logits (N, classes, h, w), upsampled bilinearly to the mask size
    when they are smaller. ``class_weights`` weight the loss per class (e.g. SegNet's
    median-frequency balancing)."""

    datasets: Mapping[str, SegmentationDataset] = field(default_factory=dict)
    class_weights: tuple[float, ...] | None = None

    name = "segmentation"
    primary_metric = "miou"  # the field's figure; global pixel accuracy (the robots seed's) is ruled by big classes
    metric_names = ("pixel_accuracy", "mean_class_accuracy", "miou", "loss")  # and class_metric(name) of each class
    capabilities = frozenset({"runtime_scoring"})
    # CamVid (367 images at 60x80) with LR-ASPP from scratch, 3 epochs of SGD at 0.05: batch 128
    # (3 steps an epoch) 11.7 / 13.1 / 13.6 % val mIoU, batch 16 20.6 / 20.3 / 21.2 %
    default_batch_size = 16

    @classmethod
    def of(cls, train: SegmentationDataset | None = None, val: SegmentationDataset | None = None,
           **more: SegmentationDataset) -> SegmentationTask:
        splits = {"train": train, "val": val, **more}
        return cls({name: data for name, data in splits.items() if data is not None})

    def __post_init__(self) -> None:
        counts = {data.num_classes for data in self.datasets.values()}
        if len(counts) > 1:
            raise TrimkitError(f"segmentation splits disagree on the number of classes ({sorted(counts)}); "
                               "use splits of one data set")
        if self.class_weights is not None and self.datasets and len(self.class_weights) != self.num_classes:
            raise TrimkitError(f"{len(self.class_weights)} class weights for {self.num_classes} classes; give one "
                               "weight per class")

    @property
    def classes(self) -> tuple[str, ...]:
        return next(iter(self.datasets.values())).classes

    @cached_property
    def labelled_classes(self) -> tuple[int, ...]:
        """The class indices some mask of some split holds: the classes train and
        validation metrics are both averaged over."""
        counts = torch.zeros(self.num_classes, dtype=torch.int64)
        for data in self.datasets.values():
            labels = data.masks[data.masks != VOID].long()
            counts += torch.bincount(labels, minlength=self.num_classes)[:self.num_classes]
        return tuple(int(index) for index in torch.nonzero(counts).flatten())

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[Batch]:
        for images, masks in self.dataset(split).batches(batch_size, shuffle=shuffle, augment=augment,
                                                         generator=generator, drop_last=drop_last):
            yield Batch((images,), masks)

    def loss(self, inputs: tuple[torch.Tensor, ...], outputs: Any, targets: Any) -> torch.Tensor:
        logits = fit_to(outputs, targets)
        weight = (torch.tensor(self.class_weights, device=logits.device) if self.class_weights is not None else None)
        return F.cross_entropy(logits.float(), targets, weight=weight, ignore_index=VOID)

    def metric_state(self) -> MetricState:
        return ConfusionMatrix(self.classes, scored=self.labelled_classes or None)

    def prediction(self, outputs: Any) -> torch.Tensor:
        return outputs.argmax(1)

    def example_inputs(self, count: int = 1) -> tuple[torch.Tensor, ...]:
        return (self.dataset(self.eval_split()).example_inputs(count),)

    def subset(self, split: str, count: int, seed: int = 0) -> SegmentationTask:
        return replace(self, datasets={**self.datasets, split: self.dataset(split).subset(count, seed)})

    def check_fits(self, dataset: Any, origin: Any, label: str) -> None:
        if origin.in_channels is not None and dataset.channels != origin.in_channels:
            raise TrimkitError(f"{dataset.name} has {dataset.channels}-channel images but {label} takes "
                               f"{origin.in_channels}; choose matching data or model")
        classes = origin.num_classes
        if classes is not None and int(classes) != dataset.num_classes:
            raise TrimkitError(f"{label} predicts {classes} classes but {dataset.name} has {dataset.num_classes}; "
                               f"use a model built for {dataset.num_classes} classes (--num-classes "
                               f"{dataset.num_classes}, or model.num_classes in a recipe)")


def fit_to(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Logits at the masks' height and width (bilinear upsampling when they differ)."""
    if outputs.dim() != 4 or targets.dim() != 3:
        raise TrimkitError(f"a segmentation model must output (N, classes, H, W) logits for (N, H, W) masks; got "
                           f"{tuple(outputs.shape)} for {tuple(targets.shape)}; use a segmentation model")
    if outputs.shape[-2:] != targets.shape[-2:]:
        outputs = F.interpolate(outputs, size=targets.shape[-2:], mode="bilinear", align_corners=False)
    return outputs


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) int64 counts, rows = true class, columns = predicted; void
    pixels (and any label outside 0..classes-1) are left out."""
    valid = (targets >= 0) & (targets < num_classes)
    index = targets[valid].long() * num_classes + predictions[valid].long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def scores(matrix: torch.Tensor, classes: tuple[str, ...], scored: tuple[int, ...] | None = None
           ) -> dict[str, float]:
    """Pixel accuracy, mean class accuracy, mIoU and per-class IoU (percent) of a
    confusion matrix (rows = truth); see the module docstring for what each averages.
    ``scored`` (class indices) limits the class averages and the per-class IoUs to
    those classes; pixels predicted as any other class still count as errors."""
    matrix = matrix.double()
    true_positive = matrix.diag()
    truth = matrix.sum(1)
    predicted = matrix.sum(0)
    union = truth + predicted - true_positive
    labelled = float(truth.sum())
    result = {"pixel_accuracy": 100.0 * float(true_positive.sum()) / labelled if labelled else 0.0}
    considered = torch.ones(len(classes), dtype=torch.bool)
    if scored is not None:
        considered = torch.zeros(len(classes), dtype=torch.bool)
        considered[list(scored)] = True
    present = (truth > 0) & considered
    recall = true_positive[present] / truth[present]
    result["mean_class_accuracy"] = 100.0 * float(recall.mean()) if present.any() else 0.0
    has_iou = (union > 0) & considered
    iou = torch.where(has_iou, true_positive / union.clamp(min=1), torch.zeros_like(union))
    result["miou"] = 100.0 * float(iou[has_iou].mean()) if has_iou.any() else 0.0
    for index, name in enumerate(classes):
        if has_iou[index]:
            result[class_metric(name)] = 100.0 * float(iou[index])
    return result


def class_metric(name: str) -> str:
    """The name of a class's IoU among the metrics: ``Road`` -> ``iou_road``."""
    return f"iou_{metric_key(name)}"


def metric_key(name: str) -> str:
    """A class name as a metric-name suffix: lower case, runs of other characters as '_'."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "class"


class ConfusionMatrix(MetricState):
    """Accumulates the confusion matrix and the summed loss over labelled pixels;
    ``scored`` limits the class averages to those class indices (see :func:`scores`)."""

    def __init__(self, classes: tuple[str, ...], scored: tuple[int, ...] | None = None) -> None:
        self.classes = tuple(classes)
        self.scored = scored
        self.matrix = torch.zeros(len(classes), len(classes), dtype=torch.int64)
        self.loss_sum = 0.0
        self.pixels = 0
        self.count = 0

    def update(self, outputs: Any, targets: Any) -> None:
        logits = fit_to(outputs.float(), targets)
        labelled = int((targets != VOID).sum())
        if labelled:
            self.loss_sum += float(F.cross_entropy(logits, targets, ignore_index=VOID, reduction="sum"))
        self.pixels += labelled
        self.matrix += confusion_matrix(logits.argmax(1), targets, len(self.classes))
        self.count += len(targets)

    def result(self) -> dict[str, float]:
        return {**scores(self.matrix, self.classes, self.scored), "loss": self.loss_sum / max(self.pixels, 1),
                "n": self.count}


class SegmentationSpec(TaskSpec):
    """``task: {kind: segmentation, data: camvid, image_size: [H, W]}``: a CamVid- or
    VOC-format folder (or ``camvid`` / ``voc`` under the data folders), images and masks
    resized to ``image_size`` when given."""

    image_size: tuple[PositiveInt, PositiveInt] | None = None


def build(spec: SegmentationSpec, model: Any = None, seed: int = 0, splits: tuple[str, ...] = ("train", "val")
          ) -> SegmentationTask:
    """The segmentation task of a recipe's task block (or a command's --data)."""
    from trimkit.tasks.classification import load_splits

    def load(name: str, split: str, data_dir: Any) -> SegmentationDataset:
        return load_segmentation(name, split, data_dir, image_size=spec.image_size)

    task = SegmentationTask(load_splits(spec, model, seed, splits, load))
    return task.prepared_for(model) if model is not None else task


def _class_metrics(spec: TaskSpec) -> tuple[str, ...]:
    if spec.data is None:
        raise TrimkitError("task.data is not given")
    return tuple(class_metric(name) for name in segmentation_classes(spec.data, spec.data_dir))


KIND = register_kind(TaskKind("segmentation", SegmentationTask, SegmentationSpec, build,
                              data_type=SegmentationDataset, of=SegmentationTask.of, holds=is_segmentation_data,
                              data_metrics=_class_metrics))
