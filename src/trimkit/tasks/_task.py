"""The task contract: what a model is trained and judged on.

Algorithms (training, evaluation, exploration, quantisation parity, runtime accuracy)
see a :class:`Task`, never a label format, as NNCF's ``Dataset`` keeps its algorithms
unaware of the data. A task may have several inputs (a tracker's exemplar and search
crops) and targets of any structure (class indices, per-pixel labels, score maps).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Iterator

import torch

from trimkit.errors import TrimkitError


@dataclass(frozen=True)
class Batch:
    """One batch: the model's positional ``inputs`` and the ``targets`` the loss and the
    metrics compare its outputs with (any structure the task defines)."""

    inputs: tuple[torch.Tensor, ...]
    targets: Any

    def to(self, device: torch.device, *, channels_last: bool = False) -> Batch:
        def move(tensor: torch.Tensor) -> torch.Tensor:
            tensor = tensor.to(device)
            if channels_last and tensor.dim() == 4:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            return tensor

        return Batch(tuple(move(t) for t in self.inputs), _move_targets(self.targets, device))

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])


def _move_targets(targets: Any, device: torch.device) -> Any:
    if isinstance(targets, torch.Tensor):
        return targets.to(device)
    if isinstance(targets, (tuple, list)):
        return type(targets)(_move_targets(t, device) for t in targets)
    if isinstance(targets, dict):
        return {k: _move_targets(v, device) for k, v in targets.items()}
    return targets


class MetricState(ABC):
    """Accumulates a task's metrics over batches; ``result()`` gives each metric by name
    (the task's primary metric among them) and ``n``, the samples seen."""

    @abstractmethod
    def update(self, outputs: Any, targets: Any) -> None: ...

    @abstractmethod
    def result(self) -> dict[str, float]: ...


class Task(ABC):
    """What a model is trained and judged on.

    An implementation guarantees:

    - ``splits`` names the data splits it holds (``train``, ``val``, ...), and
      ``batches(split, ...)`` yields :class:`Batch` objects from one of them, shuffled
      and augmented only when asked, reproducibly from ``generator``;
    - ``loss(inputs, outputs, targets)`` is a scalar tensor to minimise; it sees the
      inputs too, so a loss may run another model on them (a teacher beside the
      student) without a training loop of its own;
    - ``metric_state()`` returns a fresh accumulator whose ``result()`` holds
      ``primary_metric`` (its direction: ``higher_is_better``) and ``n``;
    - ``prediction(outputs)`` is what the task decides from outputs (class indices,
      per-pixel labels, a peak position), compared element by element when an exported
      or quantised model is checked against the original;
    - ``example_inputs(count)`` are real inputs of the first evaluation split, as a tuple
      (one tensor per model input), for tracing, verification and export.
    """

    name: str = "task"
    primary_metric: str = "metric"
    #: the metrics every ``result()`` holds besides ``n`` (the primary one among them), for
    #: callers that must name a metric before any evaluation (a search's objectives)
    metric_names: tuple[str, ...] = ()
    #: the metrics a lower value of is better (a loss, an error)
    minimised_metrics: frozenset[str] = frozenset({"loss"})
    #: what else a task of this kind offers, for stages that need it (see :data:`CAPABILITIES`)
    capabilities: frozenset[str] = frozenset()
    #: the training batch of ``batch_size: auto`` (see :class:`~trimkit.train.FitOptions`)
    default_batch_size: int = 128
    #: the optimiser of ``optimizer: auto`` for every model of this kind; None: chosen by the model
    default_optimizer: str | None = None

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher primary metric is better."""
        return self.primary_metric not in self.minimised_metrics

    @property
    @abstractmethod
    def splits(self) -> tuple[str, ...]: ...

    @abstractmethod
    def size(self, split: str) -> int: ...

    @abstractmethod
    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[Batch]: ...

    @abstractmethod
    def loss(self, inputs: tuple[torch.Tensor, ...], outputs: Any, targets: Any) -> torch.Tensor: ...

    @abstractmethod
    def metric_state(self) -> MetricState: ...

    @abstractmethod
    def prediction(self, outputs: Any) -> torch.Tensor: ...

    @abstractmethod
    def example_inputs(self, count: int = 1) -> tuple[torch.Tensor, ...]: ...

    @abstractmethod
    def subset(self, split: str, count: int, seed: int = 0) -> Task:
        """The same task with ``split`` cut to a fixed random ``count`` samples."""

    def data_name(self, split: str) -> str | None:
        """The data set behind ``split``, for records."""
        return None

    def model_arguments(self) -> dict[str, int]:
        """What a zoo model built for this task's data takes (``num_classes``,
        ``in_channels``); empty where the data does not say."""
        return {}

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The per-channel (mean, std) its one input is normalised by, where it has one."""
        return None

    def prepared_for(self, model: Any, label: str | None = None) -> Task:
        """The same task with its inputs prepared as ``model`` (a module, or the
        :class:`~trimkit.models.ModelOrigin` it was built from) expects: a zoo model's
        normalisation, after checking that the model takes them (task kind, input shape,
        classes); a model that does not fit is one line naming ``label`` (default: the
        model's zoo name). A model from outside the zoo takes the data as it is."""
        return self

    def eval_split(self) -> str:
        """The split a model is judged on by default: ``val``, else ``test``."""
        for name in ("val", "test"):
            if name in self.splits:
                return name
        raise ValueError(f"task {self.name} has no val or test split")

    def num_batches(self, split: str, batch_size: int, drop_last: bool = False) -> int:
        count = self.size(split)
        return count // batch_size if drop_last else -(-count // batch_size)


#: capabilities a task kind may offer (its ``capabilities``), by what stages need them for
CAPABILITIES = {
    "runtime_scoring": "a runtime can score the model batch by batch (runtime metrics, INT8 PTQ)",
    "sequences": "held-out sequences are tracked frame by frame (track_scores)",
}

class SplitDatasets:
    """Splits held as one data set each in ``self.datasets`` (name -> data set with
    ``name`` and ``num_classes``): the split bookkeeping classification and segmentation share."""

    datasets: Any

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.datasets)

    def dataset(self, split: str) -> Any:
        try:
            return self.datasets[split]
        except KeyError:
            raise TrimkitError(f"task has no {split!r} split; it has {', '.join(self.splits) or 'none'}") from None

    def size(self, split: str) -> int:
        return len(self.dataset(split))

    def data_name(self, split: str) -> str | None:
        return self.dataset(split).name

    @property
    def num_classes(self) -> int:
        return next(iter(self.datasets.values())).num_classes

    @property
    def channels(self) -> int:
        return next(iter(self.datasets.values())).channels

    def model_arguments(self) -> dict[str, int]:
        return {"num_classes": self.num_classes, "in_channels": self.channels}

    def input_normalization(self) -> Any:
        return next(iter(self.datasets.values())).normalization

    def prepared_for(self, model: Any, label: str | None = None) -> Any:
        from trimkit import models

        origin = model if isinstance(model, models.ModelOrigin) else models.origin(model)
        if origin is None:
            return self
        label = label or origin.label
        for dataset in self.datasets.values():
            if origin.task is not None and origin.task != self.name:
                raise TrimkitError(f"{label} is a {origin.task} model and {dataset.name} is {self.name} data; "
                                   f"give {origin.task} data (trimkit models shows each model's task)")
            self.check_fits(dataset, origin, label)
        normalization = origin.normalization()
        if normalization is None:  # a model of the user's own takes the data as it comes
            return self
        return replace(self, datasets={split: dataset.with_normalization(normalization)
                                       for split, dataset in self.datasets.items()})

    def check_fits(self, dataset: Any, origin: Any, label: str) -> None:
        """One line where ``dataset`` does not fit the zoo model ``origin`` (see prepared_for)."""
