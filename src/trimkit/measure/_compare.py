"""``compare``: several models measured side by side, as ratios against the first."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from trimkit.errors import TrimkitError
from trimkit.measure._accuracy import runtime_evaluation
from trimkit.measure._latency import Latency, RunSettings, measure_targets, resolve_targets
from trimkit.measure._layers import LayerTime
from trimkit.measure._measurement import latency_record
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._profile import profile
from trimkit.measure._target import ModelOrPath, ModelTarget, file_bytes
from trimkit.record import Measurement, Metric
from trimkit.tasks import Task, as_split_task

RATIO_KEYS = ("params", "macs", "size_bytes", "p50_ms", "throughput")


@dataclass(frozen=True)
class ComparedModel:
    """One model of a comparison. ``params`` and ``macs`` are unknown (None) for a bare
    ONNX file; ``size_bytes`` is the size of its ONNX file. With data, ``metrics`` are the
    task's figures as the runtime computed them and ``metric`` names the one the
    comparison shows (the task's primary metric: top-1, or mIoU for segmentation)."""

    label: str
    params: int | None
    macs: int | None
    size_bytes: int | None
    latency: Latency
    metric: str | None = None
    metrics: tuple[Metric, ...] = ()

    def value(self, key: str) -> float | None:
        return getattr(self.latency, key) if key in ("p50_ms", "throughput") else getattr(self, key)

    @property
    def score(self) -> float | None:
        """The value of ``metric``, or None without data."""
        found = next((m for m in self.metrics if m.name == self.metric), None)
        return None if found is None else found.value

    def measurement(self) -> Measurement:
        """This row as a :class:`~trimkit.record.Measurement`."""
        return Measurement(self.label, params=self.params, macs=self.macs,
                           size_bytes={} if self.size_bytes is None else {"onnx": self.size_bytes},
                           metrics=list(self.metrics), latency=[latency_record(self.latency)])

    def to_dict(self) -> dict:
        """The row without its metrics, which its ``measurement`` holds."""
        return {key: value for key, value in asdict(self).items() if key != "metrics"}

    @classmethod
    def from_dict(cls, data: dict) -> ComparedModel:
        """A row of :meth:`Comparison.to_dict`; a row written before comparisons named their
        metric holds ``top1`` (and its record the same figure)."""
        latency = dict(data["latency"])
        layers = latency.get("per_layer")
        latency["per_layer"] = None if layers is None else [LayerTime(**row) for row in layers]
        metrics = tuple(Measurement.from_dict(data.get("measurement") or {}).metrics)
        metric = data.get("metric") or ("top1" if data.get("top1") is not None else None)
        if metric == "top1" and not metrics:
            metrics = (Metric("top1", data["top1"], data.get("top1_split") or "", data.get("top1_samples") or 0,
                              latency["precision"], latency["backend"]),)
        return cls(data["label"], data["params"], data["macs"], data["size_bytes"], Latency(**latency), metric,
                   metrics)


@dataclass(frozen=True)
class Comparison:
    models: list[ComparedModel]

    def ratios(self, model: ComparedModel) -> dict[str, float | None]:
        """Each figure of ``model`` divided by the first model's (p50 below 1: faster)."""
        first = self.models[0]
        return {key: _ratio(model.value(key), first.value(key)) for key in RATIO_KEYS}

    def change(self, model: ComparedModel) -> float | None:
        """``model``'s score minus the first model's, in the metric's units (points)."""
        first = self.models[0]
        if model.score is None or first.score is None or model.metric != first.metric:
            return None
        return model.score - first.score

    @property
    def metric(self) -> str | None:
        """The metric the comparison shows (the first model's)."""
        return self.models[0].metric

    def to_dict(self) -> dict:
        return {"baseline": self.models[0].label, "metric": self.metric,
                "models": [{**model.to_dict(), "ratios": self.ratios(model), "change": self.change(model),
                            "measurement": model.measurement().to_dict()}
                           for model in self.models]}

    @classmethod
    def from_dict(cls, data: dict) -> Comparison:
        return cls([ComparedModel.from_dict(row) for row in data["models"]])


def compare(
    models: Sequence[ModelOrPath],
    options: RuntimeOptions | None = None,
    *,
    labels: Sequence[str] | None = None,
    batch_size: int = 1,
    data: Any = None,
    task: Task | None = None,
    split: str | None = None,
    input_shapes: Sequence[Sequence[int]] | None = None,
    **settings: Any,
) -> Comparison:
    """Params, MACs, ONNX file bytes and latency of ``models``, timed interleaved in one
    run (``options``: a :class:`RuntimeOptions`, or its fields as keywords). With ``task``
    (its ``split``, default the evaluation split) or a data set ``data`` (judged as the
    task of its kind), each model is also scored as the backend computes it (see
    ``runtime_evaluation``), on the same images. ``input_shapes`` (without batch) are the
    inputs modules are exported and timed at (default: the zoo's input shape)."""
    if data is not None and task is not None:
        raise TrimkitError("give compare data (a data set) or a task, not both")
    if data is not None:
        task, split = as_split_task(data)
    split = None if task is None else split or task.eval_split()
    options = RuntimeOptions.of(options, **settings)
    run = RunSettings.of(options, batch_size)
    with tempfile.TemporaryDirectory(prefix="trimkit-compare-") as workdir:
        targets = resolve_targets(models, Path(workdir), True, labels, input_shapes)
        measured = measure_targets(targets, run, per_layer=False)
        rows = [_row(target, result, task, split, options, run)
                for target, result in zip(targets, measured, strict=True)]
    return Comparison(rows)


def _row(target: ModelTarget, result: Latency, task: Task | None, split: str | None, options: RuntimeOptions,
         settings: RunSettings) -> ComparedModel:
    params = macs = None
    if target.module is not None:
        counted = profile(target.module, tuple(torch.zeros(1, *shape) for shape in target.input_shapes))
        params, macs = counted.params, counted.macs
    metric, metrics = None, ()
    if task is not None:
        model = target.module if settings.backend.name == "torch" else target.model_file  # exported once, above
        scored = runtime_evaluation(model, task, split, RuntimeOptions.of(options, threads=settings.threads),
                                    input_shapes=target.input_shapes)
        metric, metrics = task.primary_metric, tuple(scored.metrics())
    return ComparedModel(target.label, params, macs, file_bytes(target.model_file), result, metric, metrics)


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
