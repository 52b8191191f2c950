"""Where a latency table and a budget's rounds are timed: on this machine, or by the
benchmark worker of another device (``trimkit bench-worker``), which runs the same
timing code on the files it is sent.

A timer times ONNX files interleaved (every file's calls in rounds, so a change of load
falls on all alike) and says which machine and runtime its times hold for, so that a
table measured on a device is cached under that device's fingerprint."""

from __future__ import annotations

import contextlib
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from trimkit.measure._backend import check_precision
from trimkit.measure._env import ISA_FLAGS, available_cpus, cpu_model, isa
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._registry import get_backend
from trimkit.measure._stats import summarize
from trimkit.measure._target import resolve_target
from trimkit.measure._timing import TimingPlan, time_calls


@dataclass(frozen=True)
class FileTime:
    """One file's time per call: median, 90th percentile, and how many calls were timed."""

    p50_ms: float
    p90_ms: float
    iterations: int


@dataclass(frozen=True)
class Machine:
    """What a timer's times hold for: the machine's fingerprint (CPU, instruction sets,
    CPUs), the runtime's version, and the threads it runs with."""

    fingerprint: str
    backend_version: str
    threads: int
    where: str  # "this machine", or "device NAME"


def fingerprint(cpu: str, flags: dict[str, bool], cpus: int) -> str:
    """The machine a time holds for; ``flags`` in the record's order, however it travelled."""
    return f"{cpu} [{','.join(name for name in ISA_FLAGS if flags.get(name))}] x{cpus}"


def machine_fingerprint() -> str:
    """This machine's fingerprint."""
    return fingerprint(cpu_model(), isa(), available_cpus())


def backend_version(backend: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(get_backend(backend).versions().items()))


def export_onnx(module: nn.Module, folder: Path, input_shapes: Sequence[Sequence[int]]) -> Path:
    """``module`` as ONNX in ``folder`` (parity checked), to be timed."""
    path = resolve_target(module, folder, need_onnx=True, input_shapes=input_shapes).onnx_path
    assert path is not None
    return path


def time_onnx_files(paths: Sequence[Path], backend: str, *, batch_size: int, threads: int, precision: str,
                    plan: TimingPlan, group: int | None = None) -> list[FileTime]:
    """Each ONNX file opened on ``backend`` and timed interleaved with the others; with
    ``group``, the files are timed that many at a time (each group interleaved)."""
    if group is not None and len(paths) > group:
        return [time for start in range(0, len(paths), group)
                for time in time_onnx_files(paths[start:start + group], backend, batch_size=batch_size,
                                            threads=threads, precision=precision, plan=plan)]
    runtime = get_backend(backend)
    with contextlib.ExitStack() as stack:
        sessions = []
        for path in paths:
            session = runtime.open(resolve_target(path, Path(path).parent, need_onnx=True), batch_size=batch_size,
                                   threads=threads, precision=check_precision(precision))
            stack.callback(session.close)
            sessions.append(session)
        samples = time_calls([session.run for session in sessions], plan)
    stats = [summarize(times, batch_size) for times in samples]
    return [FileTime(s.p50_ms, s.p90_ms, s.iterations) for s in stats]


class Timer(ABC):
    """Times ONNX files (and modules, exported first) on the runtime ``options`` name.
    ``files_per_call``: how many files a caller with many (a latency table) hands
    :meth:`time_files` at once; ``group``: how many of them are timed interleaved."""

    files_per_call = 12

    @abstractmethod
    def machine(self, options: RuntimeOptions) -> Machine:
        """The machine and runtime setting the times hold for."""

    @abstractmethod
    def time_files(self, paths: Sequence[Path], options: RuntimeOptions, batch_size: int,
                   plan: TimingPlan, group: int | None = None) -> list[FileTime]:
        """Each file's time, the files timed interleaved (``group`` at a time)."""

    def time_models(self, models: Sequence[nn.Module | Path], options: RuntimeOptions, batch_size: int,
                    input_shapes: Sequence[Sequence[int]]) -> list[FileTime]:
        """Each module exported to ONNX (an ONNX path as it is), then all timed
        interleaved by ``options``' plan."""
        with tempfile.TemporaryDirectory(prefix="trimkit-timer-") as workdir:
            paths = [model if isinstance(model, Path) else export_onnx(model, Path(workdir) / str(index), input_shapes)
                     for index, model in enumerate(models)]
            return self.time_files(paths, options, batch_size, options.plan())


class LocalTimer(Timer):
    """Times on this machine."""

    def machine(self, options: RuntimeOptions) -> Machine:
        return Machine(machine_fingerprint(), backend_version(options.backend),
                       options.threads or available_cpus(), "this machine")

    def time_files(self, paths: Sequence[Path], options: RuntimeOptions, batch_size: int,
                   plan: TimingPlan, group: int | None = None) -> list[FileTime]:
        return time_onnx_files(paths, options.backend, batch_size=batch_size,
                               threads=options.threads or available_cpus(), precision=options.precision, plan=plan,
                               group=group)


class RemoteTimer(Timer):
    """Times on the device whose ``trimkit bench-worker`` serves queue ``device_name`` of
    the PostgreSQL benchmark queue at ``queue_url``: each call is one job, its files
    timed interleaved there. ``threads`` None lets the worker choose. A worker here took
    about a second to start each job after the first two (probes in a row: 0.11, 0.03,
    1.05, 1.06, 1.06 s; pgqueuer 1.6.0, cause not traced), so a table's layers travel 96
    to a job, timed there 12 at a time."""

    files_per_call = 96

    def __init__(self, queue_url: str, device_name: str, timeout_s: float = 600.0) -> None:
        self.queue_url = queue_url
        self.device_name = device_name
        self.timeout_s = timeout_s
        self._machines: dict[tuple, Machine] = {}

    def machine(self, options: RuntimeOptions) -> Machine:
        key = (options.backend, options.threads)
        if key not in self._machines:
            from trimkit.measure.remote import time_files_remotely

            _times, env, device = time_files_remotely([], options, TimingPlan(), queue_url=self.queue_url,
                                                      queue_name=self.device_name, batch_size=1,
                                                      timeout_s=self.timeout_s)
            self._machines[key] = Machine(fingerprint(env["cpu"], env["isa"], env["cpus_available"]),
                                          env["backend_version"], env["threads"], f"device {device}")
        return self._machines[key]

    def time_files(self, paths: Sequence[Path], options: RuntimeOptions, batch_size: int,
                   plan: TimingPlan, group: int | None = None) -> list[FileTime]:
        from trimkit.measure.remote import time_files_remotely

        times, _env, _device = time_files_remotely(paths, options, plan, queue_url=self.queue_url,
                                                   queue_name=self.device_name, batch_size=batch_size,
                                                   timeout_s=self.timeout_s, group=group)
        return times
