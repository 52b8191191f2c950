"""The worker's side: ``trimkit bench-worker`` takes the jobs of its device's queue one at
a time and times each with trimkit's own latency code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import psycopg

from trimkit._urls import first_line, hide_password
from trimkit.errors import TrimkitError
from trimkit.measure.remote._queue import (DEFAULT_HEARTBEAT_S, RESULTS_TABLE, BenchJob, _connect_async, _run,
                                           check_backend, check_queue_name, ensure_installed, entrypoint)
from trimkit.record import LatencyRecord


@dataclass(frozen=True)
class WorkerEvent:
    """What a worker reports as it goes: ``kind`` is ``ready``, ``start``, ``done``,
    ``failed`` or ``dropped`` (the producer had given up)."""

    kind: str
    label: str = ""
    request_id: str = ""
    attempt: int = 0
    record: LatencyRecord | None = None
    error: str | None = None


def measure_job(job: BenchJob, data: bytes, default_threads: int | None) -> tuple[LatencyRecord, dict]:
    """Time one job's file with trimkit's latency code, as ``trimkit bench`` does."""
    from trimkit import measure

    threads = job.threads if job.threads is not None else default_threads
    with tempfile.TemporaryDirectory(prefix="trimkit-bench-worker-") as folder:
        if job.path is not None:
            path = Path(job.path)
            if not path.is_file():
                raise TrimkitError(f"{job.path} is not on this machine; share the folder, or send the file's bytes")
        else:
            path = Path(folder) / (re.sub(r"[^A-Za-z0-9._-]", "_", job.label) or "model.onnx")
            split = len(data) - job.bin_bytes
            path.write_bytes(data[:split])
            if job.bin_bytes:
                path.with_suffix(".bin").write_bytes(data[split:])
        options = measure.RuntimeOptions.of(backend=job.backend, threads=threads, precision=job.precision,
                                            warmup=job.warmup, min_time_s=job.min_time_s, max_iters=job.max_iters)
        result = measure.latency(str(path), options, batch_size=job.batch_size)
    return measure.latency_record(result), result.env


def measure_files(job: BenchJob, data: bytes, default_threads: int | None) -> tuple[dict, dict]:
    """Time a group job's ONNX files interleaved, as this machine's latency tables are
    timed: ``{"files": [[p50_ms, p90_ms, calls], ...]}``, and where (the environment
    record of a measurement, with the runtime's version as ``backend_version``)."""
    from trimkit.measure._env import available_cpus, environment
    from trimkit.measure._timer import backend_version, time_onnx_files
    from trimkit.measure._timing import TimingPlan

    threads = job.threads or default_threads or available_cpus()
    env = {**environment(threads), "backend_version": backend_version(job.backend)}
    if not job.files:
        return {"files": []}, env
    with tempfile.TemporaryDirectory(prefix="trimkit-bench-worker-") as folder:
        paths, start = [], 0
        for index, (_label, size) in enumerate(job.files):
            path = Path(folder) / f"{index}.onnx"
            path.write_bytes(data[start:start + int(size)])
            start += int(size)
            paths.append(path)
        plan = TimingPlan(job.warmup, job.min_time_s, job.min_iters, job.max_iters, job.round_s)
        times = time_onnx_files(paths, job.backend, batch_size=job.batch_size, threads=threads,
                                precision=job.precision, plan=plan, group=job.group)
    return {"files": [[t.p50_ms, t.p90_ms, t.iterations] for t in times]}, env


def serve(queue_url: str, *, device_name: str, backend: str, threads: int | None = None,
          heartbeat_s: float = DEFAULT_HEARTBEAT_S, poll_s: float | None = None,
          on_event: Callable[[WorkerEvent], None] | None = None, stop: threading.Event | None = None) -> None:
    """Measure the jobs of queue ``device_name`` on ``backend``, one at a time, until
    SIGINT/SIGTERM (or ``stop``): the benchmark worker of ``trimkit bench-worker``.

    ``heartbeat_s`` is how long a job may go without its worker's heartbeat before
    another worker takes it: workers of one queue must agree on it. ``poll_s`` (default
    ``heartbeat_s / 4``) is how often an idle worker looks for such abandoned jobs
    (new jobs wake it at once through PostgreSQL's NOTIFY)."""
    check_queue_name(device_name)
    check_backend(backend)
    if threads is not None and threads < 1:
        raise TrimkitError(f"--threads must be at least 1, got {threads}")
    if heartbeat_s <= 0:
        raise TrimkitError(f"--heartbeat must be above 0 s, got {heartbeat_s:g}")
    from trimkit import measure

    measure.get_backend(backend).versions()  # a backend that is not installed fails here, before any job is taken
    ensure_installed(queue_url)
    try:
        _run(_serve(queue_url, device_name, backend, threads, heartbeat_s, poll_s or heartbeat_s / 4,
                    on_event or (lambda event: None), stop))
    except psycopg.OperationalError as error:
        raise TrimkitError(f"lost the benchmark queue {hide_password(queue_url)} ({first_line(error)}); a job "
                           "this worker held goes back to the queue once its heartbeat is stale") from None


async def _serve(url: str, device: str, backend: str, threads: int | None, heartbeat_s: float, poll_s: float,
                 on_event: Callable[[WorkerEvent], None], stop: threading.Event | None) -> None:
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.models import Job
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    identity = f"{socket.gethostname()}:{os.getpid()}"
    queue_connection = await _connect_async(url)
    results = await _connect_async(url)
    async with queue_connection, results:
        manager = QueueManager(Queries(PsycopgDriver(queue_connection)))

        @manager.entrypoint(entrypoint(device, backend), concurrency_limit=1)
        async def bench(job: Job) -> None:
            request, data = BenchJob.decode(job.payload or b"")
            claimed = await (await results.execute(
                f"UPDATE {RESULTS_TABLE} SET attempts = attempts + 1, device = %s, worker = %s, started_at = now() "
                "WHERE request_id = %s AND finished_at IS NULL RETURNING attempts",
                (device, identity, request.request_id))).fetchone()
            if claimed is None:
                on_event(WorkerEvent("dropped", request.label, request.request_id))
                return
            on_event(WorkerEvent("start", request.label, request.request_id, claimed[0]))
            try:
                if request.files is not None:
                    answer, env = await asyncio.to_thread(measure_files, request, data, threads)
                    record = None
                else:
                    record, env = await asyncio.to_thread(measure_job, request, data, threads)
                    answer = asdict(record)
            except Exception as error:  # recorded for the producer, who raises it
                message = first_line(error)
                await results.execute(f"UPDATE {RESULTS_TABLE} SET error = %s, finished_at = now() "
                                      "WHERE request_id = %s", (message, request.request_id))
                on_event(WorkerEvent("failed", request.label, request.request_id, claimed[0], error=message))
                return
            await results.execute(f"UPDATE {RESULTS_TABLE} SET record = %s, env = %s, finished_at = now() "
                                  "WHERE request_id = %s",
                                  (json.dumps(answer), json.dumps(env, default=str), request.request_id))
            on_event(WorkerEvent("done", request.label, request.request_id, claimed[0], record))

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError, ValueError):  # only the main thread may; elsewhere `stop` ends it
                loop.add_signal_handler(signum, manager.shutdown.set)
        watcher = None
        if stop is not None:
            watcher = loop.create_task(_watch(stop, manager.shutdown))  # held: the loop keeps only weak references
        on_event(WorkerEvent("ready"))
        try:
            await manager.run(dequeue_timeout=timedelta(seconds=poll_s), batch_size=1,
                              heartbeat_timeout=timedelta(seconds=heartbeat_s))
        finally:
            if watcher is not None:
                watcher.cancel()


async def _watch(stop: threading.Event, shutdown: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.1)
    shutdown.set()
