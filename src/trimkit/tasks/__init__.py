"""Tasks: what a model is trained and judged on (data splits, loss, metrics, example
inputs, batches). ``classification`` and ``segmentation``; tracking plugs in the same way.

>>> task = tasks.classification(data.load("mnist5k", "train"), data.load("mnist5k", "val"))  # doctest: +SKIP
>>> tasks.evaluate(model, task).value                                                           # doctest: +SKIP
"""

from trimkit.tasks._evaluate import CachedEvaluation, Evaluation, evaluate, running
from trimkit.tasks._task import Batch, MetricState, Task, metric_title
from trimkit.tasks.classification import ClassificationTask
from trimkit.tasks.segmentation import SegmentationTask

classification = ClassificationTask.of
segmentation = SegmentationTask.of

__all__ = [
    "Batch",
    "CachedEvaluation",
    "ClassificationTask",
    "Evaluation",
    "MetricState",
    "SegmentationTask",
    "Task",
    "classification",
    "evaluate",
    "metric_title",
    "running",
    "segmentation",
]
