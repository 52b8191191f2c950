"""One trial: the recipe with the trial's values, run into its own run folder, and the
figures the objectives read (MACs, bytes, the task's metrics, the drop; latency comes
from ``_latency``)."""

from __future__ import annotations

import contextlib
import fcntl
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from trimkit.pipeline import run_recipe
from trimkit.record import Measurement
from trimkit.runs import LOG, RunLog, baseline
from trimkit.search._recipe import SearchRecipe
from trimkit.search._spec import SearchSpec


@dataclass
class Figures:
    """What a trial (or the baseline) measured, by the names objectives use: ``metric`` is
    the searched one, ``metrics`` every metric the task evaluated (by its name)."""

    metric: float | None = None
    macs: int | None = None
    params: int | None = None
    bytes: int | None = None
    latency_ms: float | None = None
    latency: dict[str, Any] | None = None  # the runtime's record, where the latency was timed
    latency_source: str | None = None  # "measured", or "table": latency_ms is the latency table's estimate
    latency_estimate_ms: float | None = None
    latency_measured_ms: float | None = None
    latency_note: str | None = None  # why a latency meant to be estimated was timed
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def values(self, spec: SearchSpec, baseline: Figures | None) -> dict[str, float | None]:
        """The named values an objective or expression may read. ``drop`` is what the
        searched metric lost against the baseline: positive when it got worse, whichever
        way is better."""
        metric_name = spec.metric or ""
        own = {**self.metrics, "metric": self.metric, metric_name: self.metric, "macs": self.macs,
               "params": self.params, "bytes": self.bytes, "latency_ms": self.latency_ms}
        base = baseline or Figures()
        drop = None
        if self.metric is not None and base.metric is not None:
            drop = self.metric - base.metric if spec.metric_minimised() else base.metric - self.metric
        own["drop"] = drop
        base_values = {**base.metrics, "metric": base.metric, metric_name: base.metric, "macs": base.macs,
                       "params": base.params, "bytes": base.bytes, "latency_ms": base.latency_ms, "drop": 0.0}
        return {**own, **{f"baseline_{name}": value for name, value in base_values.items()}}

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "extra"} | self.extra


def figures_of(measurement: Measurement, spec: SearchSpec) -> Figures:
    """The figures of a run's record: the task's metrics as PyTorch computed them (the
    run's own evaluation), the searched one as ``metric``."""
    metrics = {item.name: item.value for item in measurement.metrics
               if item.backend == "pytorch" and item.name in spec.task_metrics.names}
    sizes = measurement.size_bytes
    size = sizes.get(spec.size) or sizes.get("model_file") or sizes.get("state_dict")
    return Figures(metric=metrics.get(spec.metric or ""), macs=measurement.macs, params=measurement.params,
                   bytes=size, metrics=metrics)


def run_base(recipe: SearchRecipe, run_dir: Path, say: Callable[[str], None]) -> Path | None:
    """Run the shared prefix once into ``run_dir/base`` (under a lock: the first worker
    runs it, the others wait and reuse it). Returns its model file, or ``None``."""
    prefix = recipe.prefix_recipe()
    if prefix is None:
        return None
    folder = run_dir / "base"
    with locked(run_dir / "base.lock"):
        finished = (folder / LOG).exists() and RunLog(folder / LOG).done(len(prefix.stages))
        if not finished:
            say(f"shared stages 0-{recipe.split - 1} (run once, every trial starts from their model) -> {folder}/")
            run_recipe(prefix, folder, resume=(folder / "recipe.yaml").exists(), progress=False)
    return folder / "model.pt"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (the workers on this machine take turns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class TrialRun:
    """A trial's recipe run: its figures (latency not yet known), its model and export."""

    figures: Figures
    model_file: Path | None
    onnx: Path | None


def run_trial(recipe: SearchRecipe, values: dict[str, Any], folder: Path, base_model: Path | None) -> TrialRun:
    """Run the trial's recipe into ``folder`` (continuing it where a killed worker left
    it); what the objectives need but latency."""
    spec = recipe.spec
    trial_recipe = recipe.trial_recipe(values, None if base_model is None else str(base_model),
                                       export=spec.latency is not None or spec.size == "onnx")
    result = run_recipe(trial_recipe, folder, resume=(folder / "recipe.yaml").exists(), progress=False)
    final = result.log.records[-1]
    onnx = final.details.get("onnx")
    return TrialRun(figures_of(final.measurement, spec), folder / final.model_file if final.model_file else None,
                    folder / onnx if onnx else None)


def baseline_of_run(folder: Path) -> tuple[Measurement, Path | None]:
    """The baseline record of the run in ``folder`` (:func:`trimkit.runs.baseline`) and its model file."""
    record = baseline(RunLog(folder / LOG).records)
    return record.measurement, folder / record.model_file if record.model_file else None


def objective_values(recipe: SearchRecipe, figures: Figures, baseline: Figures | None) -> list[float]:
    from trimkit.search._expr import Expression

    named = figures.values(recipe.spec, baseline)
    values = []
    for objective in recipe.spec.objectives:
        if objective.expr is not None:
            values.append(Expression(objective.expr, recipe.spec.fields())(named))
        else:
            value = named.get(objective.name or "")
            values.append(float("nan") if value is None else float(value))
    return values


def constraint_values(recipe: SearchRecipe, figures: Figures, baseline: Figures | None) -> dict[str, float]:
    """Each active constraint as Optuna reads it: feasible where the value is <= 0."""
    named = figures.values(recipe.spec, baseline)
    measured = {"max_drop": named["drop"], "max_bytes": named["bytes"], "max_macs": named["macs"],
                "max_latency_ms": named["latency_ms"]}
    result = {}
    for name, limit in recipe.spec.constraints.active().items():
        value = measured[name]
        result[name] = math.inf if value is None else float(value) - limit
    return result
