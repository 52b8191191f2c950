"""``compare``: several models measured side by side, as ratios against the first."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from trimkit.data import ImageDataset
from trimkit.measure._accuracy import runtime_accuracy
from trimkit.measure._latency import Latency, RunSettings, measure_targets, resolve_targets
from trimkit.measure._layers import LayerTime
from trimkit.measure._measurement import latency_record
from trimkit.measure._profile import profile
from trimkit.measure._target import ModelOrPath, ModelTarget
from trimkit.measure._timing import TimingPlan
from trimkit.record import Measurement, Metric

RATIO_KEYS = ("params", "macs", "size_bytes", "p50_ms", "throughput")


@dataclass(frozen=True)
class ComparedModel:
    """One model of a comparison. ``params`` and ``macs`` are unknown (None) for a bare
    ONNX file; ``size_bytes`` is the size of its ONNX file; ``top1`` is the runtime's."""

    label: str
    params: int | None
    macs: int | None
    size_bytes: int | None
    latency: Latency
    top1: float | None = None
    top1_samples: int | None = None
    top1_split: str | None = None

    def value(self, key: str) -> float | None:
        return getattr(self.latency, key) if key in ("p50_ms", "throughput") else getattr(self, key)

    def measurement(self) -> Measurement:
        """This row as a :class:`~trimkit.record.Measurement`."""
        metrics = [] if self.top1 is None else [Metric("top1", self.top1, self.top1_split or "", self.top1_samples or 0,
                                                       self.latency.precision, self.latency.backend)]
        return Measurement(self.label, params=self.params, macs=self.macs,
                           size_bytes={} if self.size_bytes is None else {"onnx": self.size_bytes},
                           metrics=metrics, latency=[latency_record(self.latency)])

    @classmethod
    def from_dict(cls, data: dict) -> ComparedModel:
        latency = dict(data["latency"])
        layers = latency.get("per_layer")
        latency["per_layer"] = None if layers is None else [LayerTime(**row) for row in layers]
        return cls(data["label"], data["params"], data["macs"], data["size_bytes"], Latency(**latency),
                   data.get("top1"), data.get("top1_samples"), data.get("top1_split"))


@dataclass(frozen=True)
class Comparison:
    models: list[ComparedModel]

    def ratios(self, model: ComparedModel) -> dict[str, float | None]:
        """Each figure of ``model`` divided by the first model's (p50 below 1: faster)."""
        first = self.models[0]
        return {key: _ratio(model.value(key), first.value(key)) for key in RATIO_KEYS}

    def to_dict(self) -> dict:
        return {"baseline": self.models[0].label,
                "models": [{**asdict(model), "ratios": self.ratios(model), "measurement": model.measurement().to_dict()}
                           for model in self.models]}

    @classmethod
    def from_dict(cls, data: dict) -> Comparison:
        return cls([ComparedModel.from_dict(row) for row in data["models"]])


def compare(
    models: Sequence[ModelOrPath],
    *,
    labels: Sequence[str] | None = None,
    backend: str = "onnxruntime",
    batch_size: int = 1,
    threads: int | None = None,
    precision: str = "auto",
    warmup: int = 10,
    min_time_s: float = 1.0,
    max_iters: int = 10_000,
    data: ImageDataset | None = None,
) -> Comparison:
    """Params, MACs, ONNX file bytes and latency of ``models``, timed interleaved in one
    run; with ``data``, also top-1 as the backend computes it (see ``runtime_accuracy``)."""
    settings = RunSettings.make(backend, batch_size, threads, precision,
                                TimingPlan(warmup=warmup, min_time_s=min_time_s, max_iters=max_iters))
    with tempfile.TemporaryDirectory(prefix="trimkit-compare-") as workdir:
        targets = resolve_targets(models, Path(workdir), True, labels, None)
        measured = measure_targets(targets, settings, per_layer=False)
        rows = [_row(target, result, data, settings) for target, result in zip(targets, measured, strict=True)]
    return Comparison(rows)


def _row(target: ModelTarget, result: Latency, data: ImageDataset | None, settings: RunSettings) -> ComparedModel:
    params = macs = None
    if target.module is not None:
        counted = profile(target.module, tuple(torch.zeros(1, *shape) for shape in target.input_shapes))
        params, macs = counted.params, counted.macs
    top1 = samples = split = None
    if data is not None:
        model = target.module if settings.backend.name == "torch" else target.onnx_path  # exported once, above
        scored = runtime_accuracy(model, data, backend=settings.backend.name, precision=settings.precision,
                                  threads=settings.threads)
        top1, samples, split = scored["top1"], int(scored["n"]), data.split
    return ComparedModel(target.label, params, macs, target.onnx_path.stat().st_size, result, top1, samples, split)


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
