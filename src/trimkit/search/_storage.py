"""Storage is a URL: where the study lives, and how a dead worker's trial is noticed.

- ``journal:PATH`` (or a plain path, or nothing: ``RUN_DIR/study.journal``): Optuna's
  ``JournalStorage`` over a file, for several processes on one machine. Optuna's own
  docs steer multi-process use away from SQLite (its locking makes writers fail with
  "database is locked" under contention and is broken on NFS); the journal file is an
  append-only log with its own lock. It has no heartbeats, so a dead worker is found by
  its process: each trial records the host and process id running it, and a RUNNING
  trial of this host whose process is gone is failed and re-queued.
- ``postgresql://...`` (also ``mysql://``, ``sqlite:///``): Optuna's ``RDBStorage`` with
  heartbeats; a trial whose worker stopped beating for ``grace_period`` seconds is failed
  and re-queued by ``RetryHeartbeatStaleTrialCallback`` (on any machine).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from trimkit._urls import first_line, hide_password
from trimkit.errors import TrimkitError

#: the trial's user attribute naming the process that runs it (file stores)
WORKER_ATTR = "worker"
JOURNAL_FILE = "study.journal"
_RDB_SCHEMES = ("postgresql", "postgres", "mysql", "sqlite")
_SCHEMA_LOCK = 0x7472_696D_6B69_75  # pg_advisory_lock key while Optuna creates its tables


def storage_url(storage: str | None, run_dir: Path) -> str:
    """The URL a search uses: ``storage`` as given, or the journal file in ``run_dir``."""
    if not storage:
        return f"journal:{run_dir / JOURNAL_FILE}"
    return storage


def is_file_store(url: str) -> bool:
    return url.startswith("journal:") or "://" not in url


def open_storage(url: str, *, heartbeat_interval: int = 30, grace_period: int = 120,
                 max_retry: int = 2) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; an unreachable one is one line naming it."""
    if is_file_store(url):
        path = Path(url.removeprefix("journal:"))
        if path.is_dir():
            raise TrimkitError(f"storage {url}: {path} is a folder; give a file such as {path / JOURNAL_FILE}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
        except OSError as error:
            raise TrimkitError(f"storage {url}: cannot write {path} ({error.strerror or error}); choose a "
                               "writable place") from None
        return optuna.storages.JournalStorage(backend)
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in _RDB_SCHEMES:
        raise TrimkitError(f"storage {url}: unknown kind {scheme!r}; give postgresql://USER@HOST/DB, "
                           "journal:FILE, or leave --storage out for a file in the run folder")
    try:
        with warnings.catch_warnings(), _schema_lock(url):
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                _driver(url), heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                heartbeat_stale_trial_callback=retry_callback(max_retry),
                engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)
    except Exception as error:  # sqlalchemy's connection errors, a missing driver
        raise TrimkitError(f"storage {hide_password(url)} is unreachable ({first_line(error)}); check the "
                           "host, the database name and that the server runs") from None


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while Optuna creates its tables: workers started at
    the same moment on an empty database would otherwise race in ``create_all`` (one dies
    with "relation studies already exists"; optuna/optuna#1092)."""
    if not url.startswith(("postgresql://", "postgres://")) or importlib.util.find_spec("psycopg") is None:
        yield
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def _driver(url: str) -> str:
    """``postgresql://`` with whichever PostgreSQL driver is installed (psycopg2 or psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix) and importlib.util.find_spec("psycopg2") is None \
                and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith("postgres://"):
        return "postgresql://" + url.removeprefix("postgres://")
    return url


def worker_identity(trial_number: int) -> dict[str, object]:
    """Who runs trial ``trial_number``; a retry inherits its predecessor's attributes, so
    the number says whether the record is this trial's own."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid()),
            "trial": trial_number}


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks (``/proc``), so a reused pid is not taken
    for the process that died."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(worker: dict[str, object]) -> bool:
    pid = int(worker.get("pid", 0))  # type: ignore[arg-type]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no /proc: the pid answering is all there is to go on
    if stat[0] == "Z":
        return False  # killed, not yet reaped by its parent
    started = worker.get("started")
    return started is None or stat[19] == started


def retry_callback(max_retry: int | None) -> RetryHeartbeatStaleTrialCallback:
    """Optuna's callback that queues a failed trial again with the same values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def fail_dead_trials(study: optuna.Study, url: str, *, max_retry: int = 2,
                     unclaimed_after_s: float = 60.0) -> list[int]:
    """Fail the RUNNING trials whose worker is gone, and queue each again (up to
    ``max_retry`` times). Returns the numbers of the trials failed by this call.

    On a file store a worker is gone when its process on this host is; a trial that
    never recorded its worker counts as gone ``unclaimed_after_s`` after it started. On
    a database, Optuna's heartbeats decide (``fail_stale_trials``)."""
    if not is_file_store(url):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        return sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    host = socket.gethostname()
    failed = []
    retry = retry_callback(max_retry)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is not None and worker.get("trial") != trial.number:
            worker = None  # inherited from the trial this one retries
        if worker is None:
            started = trial.datetime_start or datetime.now()
            if datetime.now() - started < timedelta(seconds=unclaimed_after_s):
                continue
        elif worker.get("host") != host or _alive(worker):
            continue
        try:
            won = study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first, and queued it again
        if won is False:
            continue
        retry(study, study._storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def retried_from(trial: FrozenTrial) -> int | None:
    """The number of the trial this one repeats (queued again after its worker died)."""
    value = trial.system_attrs.get("failed_trial")
    return None if value is None else int(value)
