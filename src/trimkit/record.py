"""One measurement record: what a model is, by figures, and how each figure was taken.

Every stage, result object and ``--json`` output carries a :class:`Measurement`; the
names are the same everywhere (``params``, ``macs``, ``flops``, ``size_bytes`` by kind,
``metrics`` with how each was computed, ``latency`` with where it was timed). Readers
(comparisons, reports, search objectives) read figures from records and never measure
again what another module measured.

This module sits at the bottom of the import graph: it knows no model, runtime or
task, only how to hold, merge and serialise figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

#: the kinds ``Measurement.size_bytes`` uses, in the order readers show them
SIZE_KINDS = ("state_dict", "model_file", "onnx", "packed", "analytic", "int8_onnx", "sparse")
_PRECISION_NAMES = {"f32": "fp32", "float32": "fp32", "bfloat16": "bf16", "f16": "fp16", "float16": "fp16"}


def precision_name(name: str) -> str:
    """Precisions are spelled one way in records: ``fp32``, ``bf16``, ``fp16``, ``int8``."""
    return _PRECISION_NAMES.get(name, name)


@dataclass(frozen=True)
class Metric:
    """A task metric and how it was computed.

    ``backend`` is ``pytorch`` or the runtime that computed the outputs (``onnxruntime``,
    ``openvino``); ``precision`` is what the outputs were computed in (``fp32``, ``bf16``,
    ``int8``, ``fake-quant``), which for a runtime is what it reports, not what was asked.
    """

    name: str
    value: float
    split: str
    samples: int
    precision: str
    backend: str = "pytorch"
    data: str | None = None

    @property
    def key(self) -> str:
        """``top1`` for PyTorch, ``top1@onnxruntime`` for a runtime's own figure."""
        return self.name if self.backend == "pytorch" else f"{self.name}@{self.backend}"


@dataclass(frozen=True)
class LatencyRecord:
    """A latency figure and where it was taken. ``latency_ms`` is the median per call
    of one batch; ``throughput`` is images (or samples) per second."""

    latency_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    cv: float
    throughput: float
    iterations: int
    backend: str
    precision: str
    precision_requested: str
    threads: int
    batch_size: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.backend, self.precision_requested, self.threads, self.batch_size)


@dataclass
class Measurement:
    """The figures of one model. ``None`` and empty mean "not measured", never zero.

    ``size_bytes`` is keyed by kind: ``state_dict`` (float tensors as held in memory),
    ``model_file`` (the trimkit ``.pt`` file), ``onnx`` (the exported file), ``packed``
    (the quantised weights at their real widths), ``analytic`` (bits per layer summed,
    exact), ``int8_onnx`` (the PTQ file), ``sparse`` (masked weights in a sparse format).
    """

    model: str
    params: int | None = None
    macs: int | None = None
    flops: int | None = None
    size_bytes: dict[str, int] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    latency: list[LatencyRecord] = field(default_factory=list)

    def metric(self, name: str, backend: str = "pytorch", split: str | None = None) -> Metric | None:
        """The last figure of ``name`` computed on ``backend`` (and ``split``), if any."""
        for item in reversed(self.metrics):
            if item.name == name and item.backend == backend and (split is None or item.split == split):
                return item
        return None

    def merge(self, other: Measurement) -> Measurement:
        """A record with ``other``'s figures added; where both have a figure, ``other``'s."""
        metrics = [m for m in self.metrics if all((m.key, m.split) != (o.key, o.split) for o in other.metrics)]
        latency = [r for r in self.latency if all(r.key != o.key for o in other.latency)]
        return Measurement(
            model=other.model or self.model,
            params=other.params if other.params is not None else self.params,
            macs=other.macs if other.macs is not None else self.macs,
            flops=other.flops if other.flops is not None else self.flops,
            size_bytes={**self.size_bytes, **other.size_bytes},
            metrics=metrics + list(other.metrics),
            latency=latency + list(other.latency),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "size_bytes": dict(self.size_bytes),
            "metrics": [asdict(m) for m in self.metrics],
            "latency": [asdict(r) for r in self.latency],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            model=str(data.get("model", "")),
            params=data.get("params"),
            macs=data.get("macs"),
            flops=data.get("flops"),
            size_bytes={str(k): int(v) for k, v in (data.get("size_bytes") or {}).items()},
            metrics=[Metric(**_known(Metric, m)) for m in data.get("metrics") or ()],
            latency=[LatencyRecord(**_known(LatencyRecord, r)) for r in data.get("latency") or ()],
        )

    def renamed(self, model: str) -> Measurement:
        return replace(self, model=model)


def _known(kind: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in data.items() if k in names}


#: how tables and pages head a task metric's column
METRIC_TITLES = {"top1": "top-1 %", "top5": "top-5 %", "pixel_accuracy": "pixel acc %",
                 "mean_class_accuracy": "class acc %", "miou": "mIoU %", "pair_precision": "pair precision %"}


def metric_title(name: str) -> str:
    """How tables head a metric's column: ``miou`` -> ``mIoU %``; an unknown name as it is."""
    return METRIC_TITLES.get(name, name)
