"""The producer's side: put an ONNX file in a device's queue, wait for the latency the
device's worker measured."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from trimkit._urls import first_line, hide_password
from trimkit.errors import TrimkitError
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._timing import TimingPlan
from trimkit.measure.remote._queue import (_FORGET_AFTER, RESULTS_TABLE, BenchJob, RemoteMeasurement, _connect,
                                           check_backend, check_file, check_queue_name, ensure_installed, entrypoint)
from trimkit.record import LatencyRecord


@dataclass(frozen=True)
class Submitted:
    """A job in the queue: what :func:`wait` needs to collect its answer."""

    url: str
    request_id: str
    queue_name: str
    backend: str
    label: str


def submit(onnx_path: str | os.PathLike, options: RuntimeOptions | None = None, *, queue_url: str, queue_name: str,
           batch_size: int = 1, send_file: bool = True, **settings: Any) -> Submitted:
    """Put one ONNX file in the queue of device ``queue_name``; returns at once. How the
    worker runs and times it: ``options`` (a :class:`~trimkit.measure.RuntimeOptions`, or
    its fields as keywords) at ``batch_size``; ``threads`` None lets the worker choose.

    With ``send_file`` the file's bytes travel in the job; without, only its path, which
    must then name the same file on the worker's machine (shared storage)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise TrimkitError(f"model file {path} does not exist")
    options = RuntimeOptions.of(options, **settings)
    backend = _check(options, queue_name, batch_size)
    check_file(path.name, backend)
    ensure_installed(queue_url)
    data, weights = (path.read_bytes(), _weights(path)) if send_file else (b"", b"")
    job = BenchJob(request_id=str(uuid.uuid4()), label=path.name, backend=backend, batch_size=batch_size,
                   threads=options.threads, precision=options.precision, warmup=options.warmup,
                   min_time_s=options.min_time_s, max_iters=options.max_iters,
                   path=None if send_file else str(path.resolve()), bin_bytes=len(weights))
    return _enqueue(queue_url, queue_name, job, data + weights)


def _check(options: RuntimeOptions, queue_name: str, batch_size: int) -> str:
    check_queue_name(queue_name)
    backend = check_backend(options.backend)
    if batch_size < 1:
        raise TrimkitError(f"batch size must be at least 1, got {batch_size}")
    return backend


def submit_files(paths: Sequence[str | os.PathLike], options: RuntimeOptions, plan: TimingPlan, *, queue_url: str,
                 queue_name: str, batch_size: int = 1, label: str = "files", group: int | None = None) -> Submitted:
    """Put ONNX files in the queue of device ``queue_name``, to be timed there
    interleaved by ``plan`` (``group`` at a time); returns at once
    (:func:`time_files_remotely` waits)."""
    backend = _check(options, queue_name, batch_size)
    datas = []
    for path in map(Path, paths):
        if path.suffix != ".onnx" or not path.is_file():
            raise TrimkitError(f"{path}: a group job takes ONNX files that exist")
        datas.append((path.name, path.read_bytes()))
    ensure_installed(queue_url)
    job = BenchJob(request_id=str(uuid.uuid4()), label=f"{label} ({len(datas)} files)", backend=backend,
                   batch_size=batch_size, threads=options.threads, precision=options.precision, warmup=plan.warmup,
                   min_time_s=plan.min_time_s, max_iters=plan.max_iters, min_iters=plan.min_iters,
                   round_s=plan.round_s, files=[[name, len(data)] for name, data in datas], group=group)
    return _enqueue(queue_url, queue_name, job, b"".join(data for _name, data in datas))


def time_files_remotely(paths: Sequence[str | os.PathLike], options: RuntimeOptions, plan: TimingPlan, *,
                        queue_url: str, queue_name: str, batch_size: int = 1, timeout_s: float = 600.0,
                        group: int | None = None) -> tuple[list, dict, str]:
    """The times of ONNX files timed interleaved by the benchmark worker of device
    ``queue_name``, where it timed them (its CPU, instruction sets, CPUs, threads and
    runtime version), and the device. No files asks only where."""
    from trimkit.measure._timer import FileTime

    submitted = submit_files(paths, options, plan, queue_url=queue_url, queue_name=queue_name,
                             batch_size=batch_size, label="probe" if not paths else "files", group=group)
    # a table is many short jobs one after another: look for each answer often
    answer, env, device, _worker, _attempts = _answer(submitted, timeout_s, poll_s=0.05)
    times = [FileTime(float(p50), float(p90), int(calls)) for p50, p90, calls in answer["files"]]
    if len(times) != len(paths):
        raise TrimkitError(f"benchmark worker {device} timed {len(times)} of {len(paths)} files; is it an older "
                           "trimkit? update it")
    return times, env, device


def _enqueue(queue_url: str, queue_name: str, job: BenchJob, data: bytes) -> Submitted:
    payload = job.encode(data)
    backend = job.backend
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


def _weights(path: Path) -> bytes:
    """The ``.bin`` of an OpenVINO IR, which travels after its ``.xml``; nothing for ONNX."""
    if path.suffix != ".xml":
        return b""
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise TrimkitError(f"{path} is an OpenVINO IR without its weights {weights.name} beside it")
    return weights.read_bytes()


def wait(submitted: Submitted, timeout_s: float = 600.0, poll_s: float = 0.5) -> RemoteMeasurement:
    """The measurement of a submitted job, once a worker has made it. After
    ``timeout_s`` seconds the job is withdrawn and the error says how far it got."""
    record, env, device, worker, attempts = _answer(submitted, timeout_s, poll_s)
    return RemoteMeasurement(LatencyRecord(**record), device, worker, attempts, env)


def _answer(submitted: Submitted, timeout_s: float, poll_s: float = 0.5) -> tuple[dict, dict, str, str, int]:
    """A finished job's answer, its environment, device, worker and attempts."""
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
                               f"({first_line(error)})") from None
        finally:
            with contextlib.suppress(psycopg.Error):  # a lost connection must not hide the error raised
                connection.execute(f"DELETE FROM {RESULTS_TABLE} WHERE request_id = %s", (submitted.request_id,))
    if error is not None:
        raise TrimkitError(f"benchmark worker {device} could not measure {submitted.label}: {error}")
    return record, env or {}, device, worker, attempts


def _timeout_message(submitted: Submitted, timeout_s: float, attempts: int, device: str | None) -> str:
    if attempts == 0:
        return (f"no benchmark worker took {submitted.label} from queue {submitted.queue_name!r} "
                f"({submitted.backend}) within {timeout_s:g} s; start one on that device: trimkit bench-worker "
                f"--queue {hide_password(submitted.url)} --device-name {submitted.queue_name} "
                f"--backend {submitted.backend}")
    return (f"benchmark worker {device} started {submitted.label} ({attempts} attempt"
            f"{'' if attempts == 1 else 's'}) but did not finish within {timeout_s:g} s; allow more time "
            "(timeout_s) or measure for less (min_time_s)")


def remote_measurement(onnx_path: str | os.PathLike, options: RuntimeOptions | None = None, *, queue_url: str,
                       queue_name: str, batch_size: int = 1, timeout_s: float = 600.0, send_file: bool = True,
                       **settings: Any) -> RemoteMeasurement:
    """Have the benchmark worker of device ``queue_name`` time ``onnx_path``; wait for it
    (see :func:`submit` and :func:`wait`)."""
    submitted = submit(onnx_path, options, queue_url=queue_url, queue_name=queue_name, batch_size=batch_size,
                       send_file=send_file, **settings)
    return wait(submitted, timeout_s)


def measure_remote(onnx_path: str | os.PathLike, options: RuntimeOptions | None = None, *, queue_url: str,
                   queue_name: str, batch_size: int = 1, timeout_s: float = 600.0, send_file: bool = True,
                   **settings: Any) -> LatencyRecord:
    """The latency of ``onnx_path`` as the benchmark worker of device ``queue_name``
    measures it (the record ``trimkit bench`` would make there), run and timed by
    ``options`` (:class:`~trimkit.measure.RuntimeOptions`, or its fields as keywords).

    ``threads`` None lets the worker choose (its ``--threads``, else all its CPUs). A
    worker killed mid-benchmark costs time, not the job: it is measured again by the
    next worker on that queue. Raises :class:`TrimkitError` when the queue is
    unreachable, the worker cannot measure the file, or nothing comes back in
    ``timeout_s`` seconds."""
    return remote_measurement(onnx_path, options, queue_url=queue_url, queue_name=queue_name, batch_size=batch_size,
                              timeout_s=timeout_s, send_file=send_file, **settings).record
