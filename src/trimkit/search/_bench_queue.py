"""Benchmark workers on the target device (the edge seed's consumer).

A producer (a search trial) hands an exported ONNX file to the worker that runs on the
machine whose latency counts, through a job queue kept in PostgreSQL, and waits for the
:class:`~trimkit.record.LatencyRecord` the worker measured there with trimkit's own
latency code (the code ``trimkit bench`` runs).

The queue is pgqueuer's. Each job's row carries a heartbeat that the worker holding it
refreshes every ``heartbeat_s / 2`` seconds; any worker's dequeue takes a picked job
whose heartbeat is older than ``heartbeat_s`` as if it were new, so a worker killed
mid-benchmark (``kill -9``, a power cut) loses no job: the next worker serving that
queue, or the same one restarted, measures it again. No sweeper process is needed.

A queue is one device and one backend: the jobs of queue ``NAME`` on ``openvino`` go to
pgqueuer's entrypoint ``trimkit-bench:NAME:openvino``, with a concurrency limit of one
across all workers, so two benchmarks never share a device. The job's payload is a JSON
header, a newline, then the ONNX file's bytes (or nothing, when the header names a file
on storage both machines see). The answer travels through ``trimkit_bench_results``:
one row per request, written by the producer when it submits, updated by the worker
when it starts (``attempts``) and when it ends (the record, or the error), read and
deleted by the producer. A producer that gives up deletes its row; a worker that later
picks the job finds no row and drops the job unmeasured.
"""

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
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

import psycopg

from trimkit.errors import TrimkitError
from trimkit.record import LatencyRecord

ENTRYPOINT_PREFIX = "trimkit-bench"
RESULTS_TABLE = "trimkit_bench_results"
WORKER_BACKENDS = ("onnxruntime", "openvino")
DEFAULT_HEARTBEAT_S = 30.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SCHEMES = ("postgresql", "postgres")
_SCHEMA_LOCK = 0x7472_696D_6B69_74  # pg_advisory_lock key while installing the queue's tables ("trimkit")
_FORGET_AFTER = "7 days"  # results rows of producers that died before reading them

T = TypeVar("T")


@dataclass(frozen=True)
class BenchJob:
    """What a producer asks a worker to measure. ``path`` is set when the file is on
    storage both machines see; otherwise the file's bytes follow the header."""

    request_id: str
    label: str
    backend: str
    batch_size: int
    threads: int | None
    precision: str
    warmup: int
    min_time_s: float
    max_iters: int
    path: str | None = None

    def encode(self, data: bytes) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n" + data

    @classmethod
    def decode(cls, payload: bytes) -> tuple[BenchJob, bytes]:
        header, _, data = payload.partition(b"\n")
        values = json.loads(header)
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values}), data


@dataclass(frozen=True)
class RemoteMeasurement:
    """A latency measured by a benchmark worker, and where: ``device`` is the worker's
    device name, ``worker`` its host and process, ``attempts`` how many times a worker
    started the job (more than one when a worker died mid-benchmark), ``env`` the
    measurement's environment record (CPU, instruction sets, load, library versions)."""

    record: LatencyRecord
    device: str
    worker: str
    attempts: int
    env: dict[str, Any]


def entrypoint(queue_name: str, backend: str) -> str:
    """pgqueuer's entrypoint for a device's queue and backend."""
    return f"{ENTRYPOINT_PREFIX}:{queue_name}:{backend}"


def connection_url(url: str) -> str:
    """``url`` as psycopg takes it: SQLAlchemy's ``postgresql+DRIVER://`` and
    ``postgres://`` spellings (the ones an Optuna storage URL uses) are accepted too."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0] not in _SCHEMES:
        raise TrimkitError(f"benchmark queue {hide_password(url)}: not a PostgreSQL URL; give "
                           "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    return "postgresql://" + rest


def hide_password(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


def check_queue_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise TrimkitError(f"queue name {name!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit (one name per device, e.g. rpi4-01)")
    return name


def check_backend(backend: str) -> str:
    if backend not in WORKER_BACKENDS:
        raise TrimkitError(f"backend {backend!r}: a benchmark worker times exported ONNX files on "
                           f"{' or '.join(WORKER_BACKENDS)}")
    return backend


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(connection_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise TrimkitError(f"benchmark queue {hide_password(url)} is unreachable ({_first_line(error)}); check the "
                           "host, port, database and password, and that the server runs") from None


async def _connect_async(url: str) -> psycopg.AsyncConnection:
    try:
        return await psycopg.AsyncConnection.connect(connection_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise TrimkitError(f"benchmark queue {hide_password(url)} is unreachable ({_first_line(error)}); check the "
                           "host, port, database and password, and that the server runs") from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from synchronous code, also where an event loop is
    already running in this thread (a notebook): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=target, name="trimkit-bench-queue")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


_installed: set[str] = set()


async def install(url: str) -> None:
    """Create pgqueuer's tables and the results table in ``url``'s database, unless they
    are there; safe to call from many processes at once (an advisory lock orders them)."""
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.queries import Queries

    connection = await _connect_async(url)
    async with connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            queries = Queries(PsycopgDriver(connection))
            if not await queries.schema_is_installed():
                await queries.install()
            await connection.execute(f"""
                CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (
                    request_id uuid PRIMARY KEY,
                    entrypoint text NOT NULL,
                    job_id bigint,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    attempts integer NOT NULL DEFAULT 0,
                    device text,
                    worker text,
                    started_at timestamptz,
                    finished_at timestamptz,
                    record jsonb,
                    env jsonb,
                    error text)""")
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def ensure_installed(url: str) -> None:
    if url not in _installed:
        _run(install(url))
        _installed.add(url)


# --- producer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """A job in the queue: what :func:`wait` needs to collect its answer."""

    url: str
    request_id: str
    queue_name: str
    backend: str
    label: str


def submit(onnx_path: str | os.PathLike, *, queue_url: str, queue_name: str, backend: str = "onnxruntime",
           batch_size: int = 1, threads: int | None = None, precision: str = "auto", warmup: int = 10,
           min_time_s: float = 1.0, max_iters: int = 10_000, send_file: bool = True) -> Submitted:
    """Put one ONNX file in the queue of device ``queue_name``; returns at once.

    With ``send_file`` the file's bytes travel in the job; without, only its path, which
    must then name the same file on the worker's machine (shared storage)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise TrimkitError(f"model file {path} does not exist")
    check_queue_name(queue_name)
    check_backend(backend)
    if batch_size < 1:
        raise TrimkitError(f"batch size must be at least 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise TrimkitError(f"threads must be at least 1, got {threads}")
    if warmup < 1 or min_time_s < 0 or max_iters < 1:
        raise TrimkitError(f"need warmup >= 1, min_time_s >= 0 and max_iters >= 1, got {warmup}, {min_time_s} "
                           f"and {max_iters}")
    ensure_installed(queue_url)
    job = BenchJob(request_id=str(uuid.uuid4()), label=path.name, backend=backend, batch_size=batch_size,
                   threads=threads, precision=precision, warmup=warmup, min_time_s=min_time_s, max_iters=max_iters,
                   path=None if send_file else str(path.resolve()))
    payload = job.encode(path.read_bytes() if send_file else b"")
    target = entrypoint(queue_name, backend)
    from pgqueuer.db import SyncPsycopgDriver
    from pgqueuer.queries import SyncQueries

    with _connect(queue_url) as connection:
        connection.execute(f"DELETE FROM {RESULTS_TABLE} WHERE created_at < now() - interval '{_FORGET_AFTER}'")
        connection.execute(f"INSERT INTO {RESULTS_TABLE} (request_id, entrypoint) VALUES (%s, %s)",
                           (job.request_id, target))
        (job_id,) = SyncQueries(SyncPsycopgDriver(connection)).enqueue(target, payload)
        connection.execute(f"UPDATE {RESULTS_TABLE} SET job_id = %s WHERE request_id = %s",
                           (int(job_id), job.request_id))
    return Submitted(queue_url, job.request_id, queue_name, backend, job.label)


def wait(submitted: Submitted, timeout_s: float = 600.0, poll_s: float = 0.5) -> RemoteMeasurement:
    """The measurement of a submitted job, once a worker has made it. After
    ``timeout_s`` seconds the job is withdrawn and the error says how far it got."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    with _connect(submitted.url) as connection:
        try:
            while True:
                row = connection.execute(
                    f"SELECT attempts, device, worker, finished_at IS NOT NULL, record, env, error "
                    f"FROM {RESULTS_TABLE} WHERE request_id = %s", (submitted.request_id,)).fetchone()
                if row is None:
                    raise TrimkitError(f"benchmark request {submitted.request_id} is gone from {RESULTS_TABLE}; "
                                       "another process withdrew it")
                attempts, device, worker, finished, record, env, error = row
                if finished:
                    break
                if time.monotonic() >= deadline:
                    raise TrimkitError(_timeout_message(submitted, timeout_s, attempts, device))
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(poll_s, delay * 2)
        except psycopg.OperationalError as error:
            raise TrimkitError(f"lost the benchmark queue {hide_password(submitted.url)} while waiting "
                               f"({_first_line(error)})") from None
        finally:
            with contextlib.suppress(psycopg.Error):  # a lost connection must not hide the error raised
                connection.execute(f"DELETE FROM {RESULTS_TABLE} WHERE request_id = %s", (submitted.request_id,))
    if error is not None:
        raise TrimkitError(f"benchmark worker {device} could not measure {submitted.label}: {error}")
    return RemoteMeasurement(LatencyRecord(**record), device, worker, attempts, env or {})


def _timeout_message(submitted: Submitted, timeout_s: float, attempts: int, device: str | None) -> str:
    if attempts == 0:
        return (f"no benchmark worker took {submitted.label} from queue {submitted.queue_name!r} "
                f"({submitted.backend}) within {timeout_s:g} s; start one on that device: trimkit bench-worker "
                f"--queue {hide_password(submitted.url)} --device-name {submitted.queue_name} "
                f"--backend {submitted.backend}")
    return (f"benchmark worker {device} started {submitted.label} ({attempts} attempt"
            f"{'' if attempts == 1 else 's'}) but did not finish within {timeout_s:g} s; allow more time "
            "(timeout_s) or measure for less (min_time_s)")


def remote_measurement(onnx_path: str | os.PathLike, *, queue_url: str, queue_name: str,
                       backend: str = "onnxruntime", batch_size: int = 1, threads: int | None = None,
                       timeout_s: float = 600.0, precision: str = "auto", warmup: int = 10,
                       min_time_s: float = 1.0, max_iters: int = 10_000, send_file: bool = True) -> RemoteMeasurement:
    """Have the benchmark worker of device ``queue_name`` time ``onnx_path``; wait for it
    (see :func:`submit` and :func:`wait`)."""
    submitted = submit(onnx_path, queue_url=queue_url, queue_name=queue_name, backend=backend,
                       batch_size=batch_size, threads=threads, precision=precision, warmup=warmup,
                       min_time_s=min_time_s, max_iters=max_iters, send_file=send_file)
    return wait(submitted, timeout_s)


def measure_remote(onnx_path: str | os.PathLike, *, queue_url: str, queue_name: str, backend: str = "onnxruntime",
                   batch_size: int = 1, threads: int | None = None, timeout_s: float = 600.0,
                   precision: str = "auto", warmup: int = 10, min_time_s: float = 1.0, max_iters: int = 10_000,
                   send_file: bool = True) -> LatencyRecord:
    """The latency of ``onnx_path`` as the benchmark worker of device ``queue_name``
    measures it on ``backend`` (the record ``trimkit bench`` would make there).

    ``threads`` None lets the worker choose (its ``--threads``, else all its CPUs). A
    worker killed mid-benchmark costs time, not the job: it is measured again by the
    next worker on that queue. Raises :class:`TrimkitError` when the queue is
    unreachable, the worker cannot measure the file, or nothing comes back in
    ``timeout_s`` seconds."""
    return remote_measurement(onnx_path, queue_url=queue_url, queue_name=queue_name, backend=backend,
                              batch_size=batch_size, threads=threads, timeout_s=timeout_s, precision=precision,
                              warmup=warmup, min_time_s=min_time_s, max_iters=max_iters,
                              send_file=send_file).record


# --- worker -----------------------------------------------------------------------


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
            path.write_bytes(data)
        result = measure.latency(str(path), backend=job.backend, batch_size=job.batch_size, threads=threads,
                                 precision=job.precision, warmup=job.warmup, min_time_s=job.min_time_s,
                                 max_iters=job.max_iters)
    return measure.latency_record(result), result.env


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
        raise TrimkitError(f"lost the benchmark queue {hide_password(queue_url)} ({_first_line(error)}); a job "
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
                record, env = await asyncio.to_thread(measure_job, request, data, threads)
            except Exception as error:  # recorded for the producer, who raises it
                message = _first_line(error)
                await results.execute(f"UPDATE {RESULTS_TABLE} SET error = %s, finished_at = now() "
                                      "WHERE request_id = %s", (message, request.request_id))
                on_event(WorkerEvent("failed", request.label, request.request_id, claimed[0], error=message))
                return
            await results.execute(f"UPDATE {RESULTS_TABLE} SET record = %s, env = %s, finished_at = now() "
                                  "WHERE request_id = %s",
                                  (json.dumps(asdict(record)), json.dumps(env, default=str), request.request_id))
            on_event(WorkerEvent("done", request.label, request.request_id, claimed[0], record))

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError, ValueError):  # only the main thread may; elsewhere `stop` ends it
                loop.add_signal_handler(signum, manager.shutdown.set)
        if stop is not None:
            loop.create_task(_watch(stop, manager.shutdown))
        on_event(WorkerEvent("ready"))
        await manager.run(dequeue_timeout=timedelta(seconds=poll_s), batch_size=1,
                          heartbeat_timeout=timedelta(seconds=heartbeat_s))


async def _watch(stop: threading.Event, shutdown: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.1)
    shutdown.set()
