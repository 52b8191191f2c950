"""Build :class:`~trimkit.record.Measurement` records from what ``measure`` measures."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from trimkit._masks import masks_of
from trimkit._sparse_size import sparse_size
from trimkit.measure._profile import Profile, profile
from trimkit.record import LatencyRecord, Measurement, precision_name
from trimkit.tasks import Task, evaluate

if TYPE_CHECKING:
    from trimkit.measure._latency import Latency


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of the model's tensors as held in memory (parameters and buffers)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))


def from_profile(counted: Profile, label: str, model: nn.Module | None = None) -> Measurement:
    sizes = {} if model is None else {"state_dict": state_dict_bytes(model)}
    if model is not None and masks_of(model):  # unstructured pruning's zeros, stored sparse
        sizes["sparse"] = sparse_size(model).sparse_bytes
    return Measurement(label, params=counted.params, macs=counted.macs, flops=counted.flops, size_bytes=sizes)


def latency_record(measured: Latency) -> LatencyRecord:
    return LatencyRecord(
        latency_ms=measured.p50_ms, p90_ms=measured.p90_ms, p99_ms=measured.p99_ms, mean_ms=measured.mean_ms,
        cv=measured.cv, throughput=measured.throughput, iterations=measured.iterations, backend=measured.backend,
        precision=precision_name(measured.precision),
        precision_requested=precision_name(measured.precision_requested), threads=measured.threads,
        batch_size=measured.batch_size,
    )


def measure_model(
    model: nn.Module,
    *,
    label: str,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    task: Task | None = None,
    split: str | None = None,
    precision: str = "fp32",
) -> Measurement:
    """Params, MACs, FLOPs (on one example), in-memory bytes and, with a task, its
    metrics on ``split`` in PyTorch at ``precision``."""
    if example_inputs is None:
        if task is None:
            raise ValueError("measure_model needs example_inputs or a task")
        example_inputs = task.example_inputs(1)
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    record = from_profile(profile(model, tuple(t[:1] for t in inputs)), label, model)
    if task is not None:
        metrics = evaluate(model, task, split, precision=precision).metrics()
        quant_plan = getattr(model, "trimkit_quant_plan", None)
        if quant_plan is not None:  # the weights and activations are rounded to the policy's grid
            metrics = [replace(m, precision=f"fake-quant {quant_plan.policy}") for m in metrics]
        record.metrics.extend(metrics)
    return record
