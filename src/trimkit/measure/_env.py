"""Where a measurement was taken: CPU, the instruction sets that decide kernel speed,
threads, load and library versions."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path

from trimkit._cpu import cpu_flags, cpu_model

# what each ISA entry of the record means, as /proc/cpuinfo flags (all must be present)
ISA_FLAGS = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "avx512_vnni": ("avx512_vnni",),
    "avx512_bf16": ("avx512_bf16",),
    "amx": ("amx_tile",),
    "amx_bf16": ("amx_bf16",),
    "amx_int8": ("amx_int8",),
}
LIBRARIES = ("torch", "numpy", "onnx", "onnxruntime", "openvino")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), the default number of threads."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def isa() -> dict[str, bool]:
    flags = cpu_flags()
    return {name: all(flag in flags for flag in needed) for name, needed in ISA_FLAGS.items()}


def busy_cpus(interval_s: float = 0.2) -> float | None:
    """How many CPUs other processes keep busy, from /proc/stat over ``interval_s``
    while this process sleeps; None where /proc/stat is missing. Unlike the load
    average it does not count this process's own earlier work."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    first = _cpu_ticks(stat)
    time.sleep(interval_s)
    second = _cpu_ticks(stat)
    busy = second[0] - first[0]
    total = second[1] - first[1]
    return round(busy / total * (os.cpu_count() or 1), 2) if total > 0 else 0.0


def _cpu_ticks(stat: Path) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs; idle and iowait are not busy."""
    fields = [int(value) for value in stat.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "trimkit": _version("trimkit")}
    versions.update({name: _version(name) for name in LIBRARIES})
    return {name: version for name, version in versions.items() if version is not None}


def environment(threads: int) -> dict:
    """The environment record of a measurement taken with ``threads`` threads."""
    return {
        "cpu": cpu_model(),
        "cpus_available": available_cpus(),
        "isa": isa(),
        "threads": threads,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "busy_cpus_at_start": busy_cpus(),
        "platform": platform.platform(),
        "versions": library_versions(),
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
