"""The ``search:`` block of a recipe, validated by pydantic like the rest of the recipe.

```yaml
search:
  method: tpe                 # tpe | random | grid | nsga2 | gp
  n_trials: 40
  parameters:
    stages.1.ratio: {min: 0.0, max: 0.8, step: 0.05}     # a dotted path in the recipe
    stage1: {path: stages.0.ratio, keys: [layer1.*.conv1], min: 0, max: 0.9}
  latency: {backend: onnxruntime, batch_size: 1, threads: 1}   # estimate: table predicts it
  metric: top1                # any metric the recipe's task evaluates (default: its primary one)
  objectives: [latency_ms, top1]                          # or {expr: ..., direction: ...}
  constraints: {max_drop: 2.0, max_bytes: 200000, max_macs: 1.0e+6}
  epochs: 0                   # per-trial fine-tune budget (0: the seed's fast phase)
```

Problems are one line naming the YAML path: ``search.parameters.stages.9.ratio: no such
path in the recipe``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from trimkit.errors import TrimkitError
from trimkit.measure import BACKENDS, RuntimeOptions
from trimkit.search._expr import Expression
from trimkit.tasks import DEFAULT_KIND, TaskMetrics, kind

METHODS = ("tpe", "random", "grid", "nsga2", "gp")
#: figures each trial records; ``baseline_<name>`` is the same figure of the model the search starts from
FIGURES = ("latency_ms", "metric", "drop", "macs", "params", "bytes")
_MINIMISED = {"latency_ms", "drop", "macs", "params", "bytes"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterSpec(_Strict):
    """One searched value: ``min``/``max`` (``log``, ``step``) or a list of ``values``.

    ``path`` defaults to the parameter's name. With ``keys`` the value at ``path`` is a
    mapping (a prune ``ratio`` by layer pattern) and the parameter sets each key: one
    parameter for a group of layers."""

    path: str | None = None
    keys: list[str] | None = Field(default=None, min_length=1)
    min: int | float | None = None
    max: int | float | None = None
    log: bool = False
    step: int | float | None = Field(default=None, gt=0)
    values: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _range_or_values(self) -> ParameterSpec:
        ranged = self.min is not None or self.max is not None
        if ranged == (self.values is not None):
            raise ValueError("give min and max (optionally log or step), or values")
        if self.values is not None and (self.log or self.step is not None):
            raise ValueError("log and step go with min and max, not with values")
        if ranged:
            if self.min is None or self.max is None:
                raise ValueError("give both min and max")
            if not (math.isfinite(self.min) and math.isfinite(self.max)):
                raise ValueError("min and max must be finite numbers")
            if self.min > self.max:
                raise ValueError(f"min {self.min:g} is above max {self.max:g}; swap them")
            if self.log and self.min <= 0:
                raise ValueError(f"log: a log range needs min > 0, got {self.min:g}")
            if self.log and self.step is not None:
                raise ValueError("log and step cannot be combined; drop one")
        return self

    @property
    def is_int(self) -> bool:
        """Integers where min, max (and step) are written as integers: ``{min: 1, max: 5}``."""
        return self.values is None and all(isinstance(x, int) for x in (self.min, self.max, self.step)
                                           if x is not None)


class GroupsSpec(_Strict):
    """One line that turns a ``trimkit sensitivity`` run's clusters into parameters:
    one ratio per cluster of layers of similar sensitivity, written into ``path``."""

    from_: str = Field(alias="from")
    path: str
    min: float = Field(default=0.0, ge=0.0, lt=1.0)
    max: float = Field(default=0.9, ge=0.0, lt=1.0)
    step: float | None = Field(default=None, gt=0)
    clusters: int | None = Field(default=None, ge=1)
    prefix: str = "cluster"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> GroupsSpec:
        if self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; swap them")
        return self


class LatencySpec(RuntimeOptions):
    """How each trial's exported model is timed (:class:`trimkit.measure.RuntimeOptions`
    at ``batch_size``): here, or by a benchmark worker (``queue``).

    ``estimate: table`` predicts each trial's latency from the latency table of the model
    the trials start from (built once on this runtime, see :func:`trimkit.prune.latency_table`)
    instead of timing its export; the trials the search reports are then timed for real."""

    batch_size: int = Field(default=1, ge=1)
    threads: int | None = Field(default=1, ge=1)
    min_time_s: float = Field(default=0.5, gt=0)
    queue: str | None = None
    queue_name: str | None = None
    timeout_s: float = Field(default=600.0, gt=0)
    estimate: Literal["measure", "table"] = "measure"

    @model_validator(mode="after")
    def _queue_named(self) -> LatencySpec:
        if (self.queue is None) != (self.queue_name is None):
            raise ValueError("a remote latency needs both queue (the queue URL) and queue_name (the device's queue)")
        if self.estimate == "table" and BACKENDS.get(self.backend).model_format != "onnx":
            raise ValueError(f"estimate: table needs a runtime that runs ONNX (onnxruntime, openvino), not "
                             f"{self.backend}; change backend or use estimate: measure")
        return self


class ObjectiveSpec(_Strict):
    """A figure to minimise or maximise, or ``expr``: a formula over the figures."""

    name: str | None = None
    expr: str | None = None
    direction: Literal["minimize", "maximize"] | None = None

    @model_validator(mode="after")
    def _named(self) -> ObjectiveSpec:
        if self.name is None and self.expr is None:
            raise ValueError("give name (a measured figure such as latency_ms or top1) or expr (a formula)")
        if self.expr is not None and self.direction is None:
            raise ValueError("direction: an expression needs direction: minimize or maximize")
        return self


class ConstraintSpec(_Strict):
    """Limits a trial must meet to be feasible (Optuna's constraints, not a penalty)."""

    max_drop: float | None = Field(default=None, ge=0)
    max_bytes: int | None = Field(default=None, ge=1)
    max_macs: int | None = Field(default=None, ge=1)
    max_latency_ms: float | None = Field(default=None, gt=0)

    def active(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


class SearchSpec(_Strict):
    method: Literal["tpe", "random", "grid", "nsga2", "gp"] = "tpe"
    n_trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    seed: int | None = 0
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    groups: list[GroupsSpec] = Field(default_factory=list)
    metric: str | None = None
    latency: LatencySpec | None = None
    objectives: list[ObjectiveSpec] = Field(min_length=1)
    constraints: ConstraintSpec = Field(default_factory=ConstraintSpec)
    epochs: int | None = Field(default=None, ge=0)
    size: Literal["onnx", "model_file", "state_dict"] = "onnx"
    heartbeat_interval: int = Field(default=30, ge=1)
    grace_period: int = Field(default=120, ge=2)
    max_retry: int = Field(default=2, ge=0)
    _task_metrics: TaskMetrics | None = PrivateAttr(default=None)

    @field_validator("objectives", mode="before")
    @classmethod
    def _names_as_objectives(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("groups", mode="before")
    @classmethod
    def _one_group_spec(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _measured(self, info: ValidationInfo) -> SearchSpec:
        # the task's metrics come in the validation context (parse_search); classification without one
        self._task_metrics = (info.context or {}).get("task_metrics") or _default_metrics()
        if self.metric is None:
            self.metric = self._task_metrics.primary
        else:
            problem = self._task_metrics.problem(self.metric)
            if problem is not None:
                raise ValueError(f"metric: {problem}")
        known = self.fields()
        for index, objective in enumerate(self.objectives):
            where = f"objectives[{index}]"
            if objective.expr is not None:
                try:
                    used = Expression(objective.expr, known).names
                except TrimkitError as error:
                    raise ValueError(f"{where}.expr: {error}") from None
            else:
                if objective.name not in known:
                    raise ValueError(f"{where}.name: no measurement named {objective.name!r}; known: "
                                     f"{', '.join(self._own_fields())} (and baseline_<name> of each)")
                used = [objective.name]
            if any(name.endswith("latency_ms") for name in used) and self.latency is None:
                raise ValueError(f"{where}: latency_ms has no measurement behind it; add search.latency "
                                 "(backend, batch_size, threads)")
        if self.constraints.max_latency_ms is not None and self.latency is None:
            raise ValueError("constraints.max_latency_ms: add search.latency (backend, batch_size, threads) to "
                             "measure it")
        if not self.parameters and not self.groups:
            raise ValueError("parameters: nothing to search; give at least one parameter (or groups)")
        if self.method == "grid":
            for name, parameter in self.parameters.items():
                if parameter.values is None and parameter.step is None:
                    raise ValueError(f"parameters.{name}: method grid needs values or a step")
        return self

    @property
    def task_metrics(self) -> TaskMetrics:
        """The metrics of the recipe's task (those ``metric``, objectives and formulas may name)."""
        return self._task_metrics or _default_metrics()

    def _own_fields(self) -> list[str]:
        return list(dict.fromkeys([*FIGURES, *self.task_metrics.names]))

    def fields(self) -> set[str]:
        """The names objectives and expressions may use: the figures, every metric of the
        task, and ``baseline_<name>`` of each."""
        names = set(self._own_fields())
        return names | {f"baseline_{name}" for name in names}

    def metric_minimised(self) -> bool:
        """Whether a lower value of the searched metric is better (a loss)."""
        return self.task_metrics.lower_is_better(self.metric or "")

    def directions(self) -> list[str]:
        return [objective.direction or self._direction(objective.name or "") for objective in self.objectives]

    def _direction(self, name: str) -> str:
        if name == "metric":
            name = self.metric or ""
        return "minimize" if name in _MINIMISED or self.task_metrics.lower_is_better(name) else "maximize"

    def objective_names(self) -> list[str]:
        return [objective.name or f"objective{index}" for index, objective in enumerate(self.objectives)]


def parse_search(data: Any, source: str, metrics: TaskMetrics | None = None) -> SearchSpec:
    """The ``search:`` block as a :class:`SearchSpec`, or one line naming the problem;
    ``metrics`` are the recipe's task's (classification when not given)."""
    from trimkit._options import describe
    from trimkit.pipeline._recipe import RecipeError

    if not isinstance(data, dict):
        raise RecipeError(f"{source}: search: a mapping with parameters and objectives, got {type(data).__name__}")
    try:
        return SearchSpec.model_validate(data, context={"task_metrics": metrics or _default_metrics()})
    except ValidationError as error:
        text = describe(error, "search", SearchSpec)
        # describe writes a dotted parameter name as nested keys; it reads as the path it is
        raise RecipeError(f"{source}: {text}") from None


def _default_metrics() -> TaskMetrics:
    """The metrics of a recipe that names no task kind."""
    return kind(DEFAULT_KIND).metrics()
