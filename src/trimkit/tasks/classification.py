"""Image classification: class-index labels, cross-entropy, top-1 (primary) and top-5."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F

from trimkit import data as datasets
from trimkit.data import ImageDataset
from trimkit.errors import TrimkitError
from trimkit.tasks._kinds import TaskKind, TaskSpec, register_kind
from trimkit.tasks._task import Batch, MetricState, SplitDatasets, Task


@dataclass(frozen=True)
class ClassificationTask(SplitDatasets, Task):
    """Splits of :class:`~trimkit.data.ImageDataset` by name; each batch is one image
    tensor and its class indices. ``top5`` is top-min(5, classes)."""

    datasets: Mapping[str, ImageDataset] = field(default_factory=dict)
    label_smoothing: float = 0.0

    name = "classification"
    primary_metric = "top1"
    metric_names = ("top1", "top5", "loss")
    capabilities = frozenset({"runtime_scoring"})

    @classmethod
    def of(cls, train: ImageDataset | None = None, val: ImageDataset | None = None, **more: ImageDataset
           ) -> ClassificationTask:
        splits = {"train": train, "val": val, **more}
        return cls({name: data for name, data in splits.items() if data is not None})

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[Batch]:
        for images, labels in self.dataset(split).batches(batch_size, shuffle=shuffle, augment=augment,
                                                          generator=generator, drop_last=drop_last):
            yield Batch((images,), labels)

    def loss(self, inputs: tuple[torch.Tensor, ...], outputs: Any, targets: Any) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets, label_smoothing=self.label_smoothing)

    def metric_state(self) -> MetricState:
        return _TopK(self.num_classes)

    def prediction(self, outputs: Any) -> torch.Tensor:
        return outputs.reshape(len(outputs), -1).argmax(1)

    def example_inputs(self, count: int = 1) -> tuple[torch.Tensor, ...]:
        return (self.dataset(self.eval_split()).example_inputs(count),)

    def subset(self, split: str, count: int, seed: int = 0) -> ClassificationTask:
        return replace(self, datasets={**self.datasets, split: self.dataset(split).subset(count, seed)})

    def check_fits(self, dataset: Any, origin: Any, label: str) -> None:
        shape = origin.input_shape()
        if shape is not None and tuple(dataset.image_shape) != tuple(shape):
            raise TrimkitError(f"data set {dataset.name} has {_shape(dataset.image_shape)} images but {label} takes "
                               f"{_shape(origin.input_shape())}; choose matching data or model")


class _TopK(MetricState):
    def __init__(self, num_classes: int) -> None:
        self.k = min(5, num_classes)
        self.correct1 = self.correct5 = self.count = 0
        self.loss_sum = 0.0

    def update(self, outputs: Any, targets: Any) -> None:
        logits = outputs.float()
        self.loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
        hits = logits.topk(self.k, dim=1).indices.eq(targets[:, None])
        self.correct1 += int(hits[:, 0].sum())
        self.correct5 += int(hits.any(dim=1).sum())
        self.count += len(targets)

    def result(self) -> dict[str, float]:
        count = max(self.count, 1)
        return {"top1": 100.0 * self.correct1 / count, "top5": 100.0 * self.correct5 / count,
                "loss": self.loss_sum / count, "n": self.count}


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape))


def load_splits(spec: TaskSpec, model: Any, seed: int, splits: tuple[str, ...], load: Any) -> dict[str, Any]:
    """``splits`` of the data ``spec`` names (default: the zoo model's own data), each cut
    to the spec's ``train_samples`` / ``val_samples`` where given (a fixed random subset)."""
    from trimkit import models

    origin = models.origin(model) if model is not None else None
    name = spec.data or (origin.default_data if origin is not None else None)
    if name is None:
        raise TrimkitError("task.data: no data set given and the model has no default; give the data (--data, or "
                           "task.data in a recipe)")
    samples = {"train": spec.train_samples, "val": spec.val_samples}
    loaded = {}
    for split in splits:
        dataset = load(name, split, spec.data_dir)
        count = samples.get(split)
        loaded[split] = dataset.subset(count, seed) if count else dataset
    return loaded


def build(spec: TaskSpec, model: Any = None, seed: int = 0, splits: tuple[str, ...] = ("train", "val")
          ) -> ClassificationTask:
    """The classification task of a recipe's task block (or a command's --data)."""
    task = ClassificationTask(load_splits(spec, model, seed, splits, datasets.load))
    return task.prepared_for(model) if model is not None else task


class ClassificationSpec(TaskSpec):
    """``task: {kind: classification, data: mnist5k}``: an image data set by name (mnist5k,
    mnist, cifar10) or an image folder with one subfolder per class."""


KIND = register_kind(TaskKind("classification", ClassificationTask, ClassificationSpec, build,
                              data_type=ImageDataset, of=ClassificationTask.of))
