"""One trial: the recipe with the trial's values, run into its own run folder, and the
figures the objectives read (MACs, bytes, latency, the task's metrics, the drop)."""

from __future__ import annotations

import fcntl
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from trimkit import measure
from trimkit.errors import TrimkitError
from trimkit.pipeline import run_recipe
from trimkit.record import LatencyRecord, Measurement
from trimkit.runs import LOG, RunLog
from trimkit.search._recipe import SearchRecipe
from trimkit.search._spec import LatencySpec, SearchSpec


@dataclass
class Figures:
    """What a trial (or the baseline) measured, by the names objectives use: ``metric`` is
    the searched one, ``metrics`` every metric the task evaluated (by its name)."""

    metric: float | None = None
    macs: int | None = None
    params: int | None = None
    bytes: int | None = None
    latency_ms: float | None = None
    latency: dict[str, Any] | None = None
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
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            finished = (folder / LOG).exists() and RunLog(folder / LOG).done(len(prefix.stages))
            if not finished:
                say(f"shared stages 0-{recipe.split - 1} (run once, every trial starts from their model) -> "
                    f"{folder}/")
                run_recipe(prefix, folder, resume=(folder / "recipe.yaml").exists(), progress=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder / "model.pt"


def measure_latency(onnx_path: Path, latency: LatencySpec) -> LatencyRecord:
    """The exported file timed here, or by a benchmark worker on the device its queue serves."""
    if latency.queue is not None:
        from trimkit.measure.remote import measure_remote

        return measure_remote(onnx_path, latency, queue_url=latency.queue, queue_name=latency.queue_name or "",
                              batch_size=latency.batch_size, timeout_s=latency.timeout_s)
    timed = measure.latency(str(onnx_path), latency, batch_size=latency.batch_size)
    return measure.latency_record(timed)


def export_baseline(model_file: Path, path: Path) -> Path:
    """The baseline model (a trimkit model file) as ONNX, for the latency figures a
    hybrid objective compares against; made once per run folder."""
    if path.exists():
        return path
    import torch

    from trimkit import export, models
    from trimkit._model_file import load

    model = load(model_file)
    origin = models.origin(model)
    shape = origin.input_shape() if origin is not None else None
    if shape is None:
        raise TrimkitError(f"{model_file}: its input shape is not recorded, so the baseline cannot be exported for "
                           "timing; give model.input_shape in the recipe")
    export.onnx(model.eval(), torch.randn(2, *shape), path)
    return path


def with_latency(figures: Figures, onnx_path: Path | None, latency: LatencySpec | None) -> Figures:
    if latency is None or onnx_path is None:
        return figures
    record = measure_latency(onnx_path, latency)
    figures.latency_ms = record.latency_ms
    figures.latency = asdict(record)
    return figures


def run_trial(recipe: SearchRecipe, values: dict[str, Any], folder: Path, base_model: Path | None) -> Figures:
    """Run the trial's recipe into ``folder`` (continuing it where a killed worker left
    it) and measure what the objectives need."""
    spec = recipe.spec
    trial_recipe = recipe.trial_recipe(values, None if base_model is None else str(base_model),
                                       export=spec.latency is not None or spec.size == "onnx")
    result = run_recipe(trial_recipe, folder, resume=(folder / "recipe.yaml").exists(), progress=False)
    final = result.log.records[-1]
    figures = figures_of(final.measurement, spec)
    onnx = final.details.get("onnx")
    return with_latency(figures, folder / onnx if onnx else None, spec.latency)


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
