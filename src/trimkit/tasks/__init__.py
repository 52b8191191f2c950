"""Tasks: what a model is trained and judged on (data splits, loss, metrics, example
inputs, batches). ``classification`` now; segmentation and tracking plug in the same way.

>>> task = tasks.classification(data.load("mnist5k", "train"), data.load("mnist5k", "val"))  # doctest: +SKIP
>>> tasks.evaluate(model, task).value                                                           # doctest: +SKIP
"""

from trimkit.tasks._evaluate import CachedEvaluation, Evaluation, evaluate, running
from trimkit.tasks._task import Batch, MetricState, Task
from trimkit.tasks.classification import ClassificationTask

classification = ClassificationTask.of

__all__ = [
    "Batch",
    "CachedEvaluation",
    "ClassificationTask",
    "Evaluation",
    "MetricState",
    "Task",
    "classification",
    "evaluate",
    "running",
]
