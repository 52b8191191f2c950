"""The metrics a search may name: the ones the recipe's task evaluates.

They come from the task class of the recipe's ``task.kind`` (its ``metric_names``,
``primary_metric`` and ``minimised_metrics``): ``top1 top5 loss`` for classification,
``pixel_accuracy mean_class_accuracy miou loss`` and one ``iou_<class>`` per class of
the data for segmentation, ``pair_precision pair_centre_error loss`` for tracking. They
are known when the recipe is read, before any data is loaded, so a misspelt metric is a
one-line error naming those the task has, not a study of failed trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trimkit.errors import TrimkitError


@dataclass(frozen=True)
class TaskMetrics:
    """The metrics of one task: their names (the primary one first), which of them a
    lower value of is better, and why per-class names are missing where they are."""

    kind: str
    primary: str
    names: tuple[str, ...]
    minimised: frozenset[str]
    classes_unread: str | None = None

    def problem(self, name: str) -> str | None:
        """Why ``name`` is not one of the task's metrics (one line), or ``None`` when it is."""
        if name in self.names:
            return None
        if self.classes_unread is not None and name.startswith("iou_"):
            return (f"{name!r} would be a class's IoU, but the classes of task.data cannot be read "
                    f"({self.classes_unread})")
        return f"{name!r} is not a metric of the {self.kind} task; its metrics: {', '.join(self.names)}"

    def lower_is_better(self, name: str) -> bool:
        return name in self.minimised


def task_metrics(task: Any = None) -> TaskMetrics:
    """The metrics of a recipe's task (a ``pipeline.TaskSpec``; ``None``: classification)."""
    kind = getattr(task, "kind", None) or "classification"
    task_class = _task_class(kind)
    names = list(task_class.metric_names)
    unread = None
    if kind == "segmentation":
        from trimkit.data._segmentation import segmentation_classes
        from trimkit.tasks.segmentation import class_metric

        try:
            if task.data is None:
                raise TrimkitError("task.data is not given")
            names += [class_metric(name) for name in segmentation_classes(task.data, task.data_dir)]
        except TrimkitError as error:
            unread = str(error)
    primary = task_class.primary_metric
    ordered = tuple(dict.fromkeys([primary, *names]))
    return TaskMetrics(kind, primary, ordered, frozenset(task_class.minimised_metrics), unread)


def _task_class(kind: str) -> Any:
    if kind == "segmentation":
        from trimkit.tasks.segmentation import SegmentationTask

        return SegmentationTask
    if kind == "tracking":
        from trimkit.tasks.tracking import TrackingTask

        return TrackingTask
    from trimkit.tasks.classification import ClassificationTask

    return ClassificationTask
