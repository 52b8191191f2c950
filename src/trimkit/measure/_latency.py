"""``latency``: how long a model takes on a runtime, measured, with where and how."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from trimkit.errors import TrimkitError
from trimkit.measure._backend import Backend, Session, check_precision, runtime_error_line
from trimkit.measure._env import available_cpus, environment
from trimkit.measure._layers import LayerNames, LayerTime, aggregate_layers
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._registry import get_backend
from trimkit.measure._stats import LatencyStats, summarize
from trimkit.measure._target import ModelOrPath, ModelTarget, resolve_target
from trimkit.measure._timing import TimingPlan, time_calls

PER_LAYER_TIME_S = 0.5
PER_LAYER_MAX_ITERS = 200


@dataclass(frozen=True)
class Latency(LatencyStats):
    """The latency statistics of one model and how they were taken.

    ``precision`` is what the runtime reports it computes in, which need not be what was
    asked (``precision_requested``); ``compute_precisions`` counts convolution and dense
    layers per precision they run in, where the runtime tells (OpenVINO).
    ``per_layer`` comes from the runtime's profiler in a separate, profiled session;
    ``per_layer_total_ms`` is its sum, to set beside ``p50_ms``.
    """

    model: str
    backend: str
    batch_size: int
    threads: int
    precision_requested: str
    precision: str
    compute_precisions: dict[str, int] | None
    warmup: int
    min_time_s: float
    env: dict
    per_layer: list[LayerTime] | None = None
    per_layer_total_ms: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunSettings:
    """How to run and time: shared by every model of one measurement."""

    backend: Backend
    batch_size: int
    threads: int
    precision: str
    plan: TimingPlan

    @classmethod
    def of(cls, options: RuntimeOptions, batch_size: int) -> RunSettings:
        if batch_size < 1:
            raise TrimkitError(f"batch size must be at least 1, got {batch_size}")
        threads = available_cpus() if options.threads is None else options.threads
        return cls(get_backend(options.backend), batch_size, threads, check_precision(options.precision),
                   options.plan())

    @property
    def needs_onnx(self) -> bool:
        return self.backend.model_format == "onnx"


def latency(
    model_or_path: ModelOrPath,
    options: RuntimeOptions | None = None,
    *,
    batch_size: int = 1,
    per_layer: bool = False,
    input_shapes: Sequence[Sequence[int]] | None = None,
    **settings: Any,
) -> Latency:
    """Measure the latency of one model on a runtime backend.

    ``model_or_path`` is a module, a trimkit ``.pt`` file or an ``.onnx`` file; a module
    is exported to ONNX (parity checked) for the ONNX backends. ``options`` (a
    :class:`RuntimeOptions`, or its fields as keywords: ``backend``, ``threads``,
    ``precision``, ``warmup``, ``min_time_s``, ``min_iters``, ``max_iters``) say how the
    runtime runs and is timed; the threads are recorded. ``input_shapes`` (without
    batch) is needed only for a module that is not from the zoo.
    """
    return latencies([model_or_path], options, batch_size=batch_size, per_layer=per_layer,
                     input_shapes=input_shapes, **settings)[0]


def latencies(
    models: Sequence[ModelOrPath],
    options: RuntimeOptions | None = None,
    *,
    labels: Sequence[str] | None = None,
    batch_size: int = 1,
    per_layer: bool = False,
    input_shapes: Sequence[Sequence[int]] | None = None,
    **settings: Any,
) -> list[Latency]:
    """Measure several models side by side, interleaved in one run (see :func:`latency`)."""
    run = RunSettings.of(RuntimeOptions.of(options, **settings), batch_size)
    with tempfile.TemporaryDirectory(prefix="trimkit-latency-") as workdir:
        targets = resolve_targets(models, Path(workdir), run.needs_onnx, labels, input_shapes)
        return measure_targets(targets, run, per_layer=per_layer)


def resolve_targets(models: Sequence[ModelOrPath], workdir: Path, need_onnx: bool,
                    labels: Sequence[str] | None, input_shapes: Sequence[Sequence[int]] | None) -> list[ModelTarget]:
    if not models:
        raise TrimkitError("no models to measure")
    if labels is not None and len(labels) != len(models):
        raise TrimkitError(f"{len(labels)} labels for {len(models)} models")
    return [resolve_target(model, workdir / str(index), need_onnx=need_onnx, input_shapes=input_shapes,
                           label=None if labels is None else labels[index])
            for index, model in enumerate(models)]


@dataclass(frozen=True)
class TimedRun:
    """One model on one runtime, with its threads and precision: a row of a measurement
    whose rows may differ in all three (``deploy`` times every candidate so)."""

    target: ModelTarget
    backend: Backend
    threads: int
    precision: str


def measure_targets(targets: Sequence[ModelTarget], settings: RunSettings, *, per_layer: bool) -> list[Latency]:
    """Time resolved targets interleaved; then, if asked, profile each per layer."""
    if per_layer and not settings.backend.has_profiler:
        raise TrimkitError(f"the {settings.backend.name} backend has no per-layer profiler; "
                           "use --backend onnxruntime or openvino")
    runs = [TimedRun(target, settings.backend, settings.threads, settings.precision) for target in targets]
    results = measure_runs(runs, settings.batch_size, settings.plan)
    if not per_layer:
        return results
    profiled = []
    for target, result in zip(targets, results, strict=True):
        layers = _per_layer(target, settings, result.p50_ms)
        profiled.append(replace(result, per_layer=layers, per_layer_total_ms=sum(row.ms for row in layers)))
    return profiled


def measure_runs(runs: Sequence[TimedRun], batch_size: int, plan: TimingPlan, *,
                 failures: dict[int, str] | None = None,
                 on_round: Callable[[float], None] | None = None) -> list[Latency | None]:
    """Time each run (a model on a runtime with its threads and precision) at
    ``batch_size``, interleaved in one timing loop, so that a change of load on the
    machine falls on all of them alike. With ``failures``, a run its runtime cannot open
    is left out (None in the result) and its error's first line kept there by index;
    without, the error is raised. ``on_round`` hears the timing's progress (0 to 1)."""
    for run in runs:
        run.target.check_batch(batch_size)
    env = environment(max((run.threads for run in runs), default=1))
    with contextlib.ExitStack() as stack:
        sessions: list[Session | None] = []
        for index, run in enumerate(runs):
            try:
                session = run.backend.open(run.target, batch_size=batch_size, threads=run.threads,
                                           precision=run.precision)
            except Exception as error:  # a runtime that cannot compile a file, kept for the caller who asked
                if failures is None:
                    raise
                failures[index] = runtime_error_line(error)
                sessions.append(None)
                continue
            stack.callback(session.close)
            sessions.append(session)
        opened = [session for session in sessions if session is not None]
        timed = iter(time_calls([session.run for session in opened], plan, on_round=on_round) if opened else [])
    return [None if session is None else
            Latency(**asdict(summarize(next(timed), batch_size)), model=run.target.label, backend=run.backend.name,
                    batch_size=batch_size, threads=run.threads, precision_requested=run.precision,
                    precision=session.precision, compute_precisions=session.compute_precisions,
                    warmup=plan.warmup, min_time_s=plan.min_time_s, env={**env, "threads": run.threads})
            for run, session in zip(runs, sessions, strict=True)]


def _per_layer(target: ModelTarget, settings: RunSettings, p50_ms: float) -> list[LayerTime]:
    """Per-layer times from a separate session with the runtime's profiler on: profiling
    slows a runtime down, so it never runs while end-to-end latency is timed."""
    iterations = int(PER_LAYER_TIME_S * 1e3 / max(p50_ms, 1e-3))
    iterations = max(settings.plan.min_iters, min(PER_LAYER_MAX_ITERS, iterations))
    session = settings.backend.open(target, batch_size=settings.batch_size, threads=settings.threads,
                                    precision=settings.precision, profile=True)
    try:
        for _ in range(settings.plan.warmup):
            session.run()
        node_times = session.node_times(iterations)
    finally:
        session.close()
    names = LayerNames.from_file(target.onnx_path) if target.onnx_path is not None else None
    return aggregate_layers(node_times, names)
