"""The task-kind registry: everything trimkit knows about a kind of task, in one entry.

A :class:`TaskKind` names its :class:`~trimkit.tasks.Task` class (loss, metrics, their
names and directions), the recipe block that describes it (a :class:`TaskSpec` subclass
with the kind's own keys), the builder that turns that block and a model into a task,
the data set type it wraps (so ``train.fit(model, train_set, val_set)`` knows the task
from the data), and how a command recognises its data (``--data camvid`` is
segmentation data). The runner, search, commands and report ask the registry; none of
them names a kind. A new kind is a module that registers its entry here, and the name
of that module in :data:`BUILT_IN`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, ValidationError, field_validator
from torch import nn

from trimkit._options import Options, describe
from trimkit._registry import Registry
from trimkit.errors import TrimkitError
from trimkit.tasks._task import Task

#: the modules that register the built-in kinds, imported on the first lookup
BUILT_IN = ("trimkit.tasks.classification", "trimkit.tasks.segmentation", "trimkit.tasks.tracking")
#: the kind of a recipe that names none, and of data no kind recognises
DEFAULT_KIND = "classification"


class TaskSpec(Options):
    """A recipe's ``task`` block: the keys every kind takes. ``data`` names a data set or a
    folder (default: the model's own), ``data_dir`` where to look for it, and
    ``train_samples`` / ``val_samples`` cut the splits to fixed random subsets. Each kind
    derives its own spec with the keys it adds."""

    kind: str = DEFAULT_KIND
    data: str | None = None
    data_dir: str | None = None
    train_samples: int | None = Field(default=None, ge=1)
    val_samples: int | None = Field(default=None, ge=1)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            KINDS.get(value)  # raises the one-line error with the known kinds
        return value


Builder = Callable[[TaskSpec, "nn.Module | None", int, tuple[str, ...]], Task]


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


@dataclass(frozen=True)
class TaskKind:
    """One kind of task.

    ``build(spec, model, seed, splits)`` returns the task ``spec`` describes, with the
    ``splits`` named (``train`` and ``val`` for training, ``test`` for a final score),
    its inputs prepared as ``model`` expects and checked against it (without a model:
    as the data comes). ``data_type`` is the data set class a task of this kind holds
    (``of(train, val)`` builds one from data sets). ``holds(data, data_dir)`` says
    whether a command's ``--data`` is data of this kind; the default kind holds what no
    other kind claims. ``data_metrics(spec)`` are metric names that depend on the data
    (a class's IoU), read without loading it.
    """

    name: str
    task_class: type[Task]
    spec: type[TaskSpec]
    build: Builder
    data_type: type | None = None
    of: Callable[..., Task] | None = None
    holds: Callable[[str | None, Any], bool] = field(default=lambda data, data_dir: False)
    data_metrics: Callable[[TaskSpec], tuple[str, ...]] | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        return self.task_class.capabilities

    def parse_spec(self, data: dict[str, Any], where: str = "task") -> TaskSpec:
        """The recipe block ``data`` validated by this kind's spec; errors name ``where``."""
        try:
            return self.spec.model_validate(data)
        except ValidationError as error:
            raise TrimkitError(describe(error, where, self.spec)) from None

    def metrics(self, spec: TaskSpec | None = None) -> TaskMetrics:
        """The metrics a task of this kind evaluates, known before any data is loaded
        (per-class names from the data's class list, where ``spec`` names data)."""
        names = list(self.task_class.metric_names)
        unread = None
        if self.data_metrics is not None and spec is not None:
            try:
                names += self.data_metrics(spec)
            except TrimkitError as error:
                unread = str(error)
        primary = self.task_class.primary_metric
        return TaskMetrics(self.name, primary, tuple(dict.fromkeys([primary, *names])),
                           frozenset(self.task_class.minimised_metrics), unread)


def _load_built_in() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)


KINDS: Registry[TaskKind] = Registry("task kind", load=_load_built_in)


def register_kind(kind: TaskKind, *, replace: bool = False) -> TaskKind:
    return KINDS.register(kind.name, kind, replace=replace)


def kind(name: str) -> TaskKind:
    """The registered kind ``name``; an unknown name is one line listing the kinds."""
    return KINDS.get(name)


def kind_names() -> tuple[str, ...]:
    return KINDS.names()


def kind_of_data(data: str | None, data_dir: Any = None) -> TaskKind:
    """The kind whose data ``data`` is (a command's ``--data``): the first kind that
    claims it, else the default kind."""
    for _, entry in KINDS.items():
        if entry.name != DEFAULT_KIND and entry.holds(data, data_dir):
            return entry
    return KINDS.get(DEFAULT_KIND)


def parse_task_spec(data: Any, where: str = "task") -> TaskSpec:
    """A recipe's task block (a mapping), validated by the spec of the kind it names."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TrimkitError(f"{where}: a mapping with kind, data and the kind's keys; got {type(data).__name__}")
    name = data.get("kind", DEFAULT_KIND)
    try:
        entry = KINDS.get(str(name))
    except TrimkitError as error:
        raise TrimkitError(f"{where}.kind: {error}") from None
    return entry.parse_spec(data, where)


def as_task(train: Any = None, val: Any = None, **more: Any) -> Task:
    """A task from what a caller gave: a :class:`Task` as it is, or data sets by split
    (``train``, ``val``, more by name) as the task of the kind that holds their type."""
    if isinstance(train, Task):
        if val is not None or more:
            raise TrimkitError("a task holds its own splits; give the task alone, not data sets beside it")
        return train
    given = {name: data for name, data in {"train": train, "val": val, **more}.items() if data is not None}
    if not given:
        raise TrimkitError("no data given; give a trimkit.tasks task or trimkit.data data sets")
    first = next(iter(given.values()))
    for _, entry in KINDS.items():
        if entry.data_type is not None and entry.of is not None and isinstance(first, entry.data_type):
            return entry.of(**given)
    raise TrimkitError(f"{type(first).__name__} is neither a task nor a data set of a known task kind "
                       f"({', '.join(KINDS.names())}); give a trimkit.tasks task or a trimkit.data data set")


def as_split_task(data: Any) -> tuple[Task, str]:
    """A task and the split to judge on: a task's evaluation split, or one data set as the
    task of its kind, holding that set under the set's own split name."""
    if isinstance(data, Task):
        return data, data.eval_split()
    split = getattr(data, "split", None) or "val"
    return as_task(**{split: data}), split
