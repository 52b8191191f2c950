"""Tasks: what a model is trained and judged on (data splits, loss, metrics, example
inputs, batches), and the registry of task kinds (classification, segmentation,
tracking) that recipes, commands and search read.

>>> task = tasks.classification(data.load("mnist5k", "train"), data.load("mnist5k", "val"))  # doctest: +SKIP
>>> tasks.evaluate(model, task).value                                                           # doctest: +SKIP
"""

from trimkit.tasks._evaluate import CachedEvaluation, Evaluation, evaluate, running
from trimkit.tasks._kinds import (DEFAULT_KIND, KINDS, TaskKind, TaskMetrics, TaskSpec, as_split_task, as_task, kind,
                                  kind_names, kind_of_data, parse_task_spec, register_kind)
from trimkit.record import metric_title
from trimkit.tasks._task import CAPABILITIES, Batch, MetricState, Task
from trimkit.tasks.classification import ClassificationTask
from trimkit.tasks.segmentation import SegmentationTask

classification = ClassificationTask.of
segmentation = SegmentationTask.of

__all__ = [
    "CAPABILITIES",
    "DEFAULT_KIND",
    "KINDS",
    "Batch",
    "CachedEvaluation",
    "ClassificationTask",
    "Evaluation",
    "MetricState",
    "SegmentationTask",
    "Task",
    "TaskKind",
    "TaskMetrics",
    "TaskSpec",
    "as_split_task",
    "as_task",
    "classification",
    "evaluate",
    "kind",
    "kind_names",
    "kind_of_data",
    "metric_title",
    "parse_task_spec",
    "register_kind",
    "running",
    "segmentation",
]
