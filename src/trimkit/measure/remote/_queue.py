"""The queue itself: its tables in PostgreSQL (pgqueuer's and the results table), the job
a producer hands a worker, the connection helpers, and the names of device queues."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Coroutine, TypeVar

import psycopg

from trimkit._urls import first_line, hide_password
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
    storage both machines see; otherwise the file's bytes follow the header: an ONNX
    file, or an OpenVINO IR's ``.xml`` then its ``.bin`` (the last ``bin_bytes``).

    With ``files`` ([label, bytes] each), the job is a group of ONNX files, their bytes
    one after another, timed interleaved by the plan (``warmup``, ``min_time_s``,
    ``min_iters``, ``max_iters``, ``round_s``), ``group`` at a time: a latency table's
    layers, or a model beside its unpruned self. No files at all asks only where the worker times."""

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
    bin_bytes: int = 0
    files: list[list] | None = None
    group: int | None = None
    min_iters: int = 10
    round_s: float = 0.1

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


def check_queue_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise TrimkitError(f"queue name {name!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit (one name per device, e.g. rpi4-01)")
    return name


def check_file(path: str, backend: str) -> None:
    """An OpenVINO IR only OpenVINO runs."""
    if path.endswith(".xml") and backend != "openvino":
        raise TrimkitError(f"{path} is an OpenVINO IR; queue it for an openvino worker, or send the ONNX file")


def check_backend(backend: str) -> str:
    if backend not in WORKER_BACKENDS:
        raise TrimkitError(f"backend {backend!r}: a benchmark worker times exported ONNX files on "
                           f"{' or '.join(WORKER_BACKENDS)}")
    return backend


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(connection_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise TrimkitError(f"benchmark queue {hide_password(url)} is unreachable ({first_line(error)}); check the "
                           "host, port, database and password, and that the server runs") from None


async def _connect_async(url: str) -> psycopg.AsyncConnection:
    try:
        return await psycopg.AsyncConnection.connect(connection_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise TrimkitError(f"benchmark queue {hide_password(url)} is unreachable ({first_line(error)}); check the "
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
