"""Timing on this machine: every candidate in one interleaved loop, beside ONNX Runtime
fp32 at the most threads (the reference of every speed-up) and the user's starting
point, if given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trimkit import measure
from trimkit._cpu import cpu_flags
from trimkit.deploy._candidates import Candidate, CandidatePlan
from trimkit.deploy._manifest import RELEVANT_FLAGS
from trimkit.deploy._options import DeployOptions
from trimkit.record import LatencyRecord


@dataclass(frozen=True)
class Timed:
    """Latencies by candidate (or why it could not be timed), of the reference and the
    baseline, and where they were taken."""

    by_candidate: dict[Candidate, LatencyRecord | str]
    reference: LatencyRecord | None
    baseline: LatencyRecord | None
    env: dict[str, Any]


def time_locally(plan: CandidatePlan, files: dict[str, Path | str], fp32: Path, base_file: Path | None,
                 options: DeployOptions, bar, say: Callable[[str], None]) -> Timed:
    most = max(c.threads for c in plan.candidates)
    reference = Candidate("onnxruntime", "fp32", most)
    extra = [] if reference in plan.candidates else [("reference", fp32, reference)]
    if base_file is not None:
        extra.append(("baseline", base_file, reference))
    named = [(c.label, files.get(c.artifact), c) for c in plan.candidates] + extra
    runnable = [(label, file, c) for label, file, c in named if isinstance(file, Path)]
    runs = [measure.TimedRun(measure.resolve_target(file, file.parent, need_onnx=True, label=label),
                             measure.get_backend(c.runtime), c.threads, c.runtime_precision)
            for label, file, c in runnable]
    say(f"timing {len(runs)} run{'' if len(runs) == 1 else 's'} interleaved at batch {options.batch_size}, at least "
        f"{options.min_time_s:g} s each (about {len(runs) * options.min_time_s:.0f} s)")
    step = bar.add_task("deploy: timing, interleaved", total=100, stats="")
    failures: dict[int, str] = {}
    latencies = measure.measure_runs(runs, options.batch_size, options.timing().plan(), failures=failures,
                                     on_round=lambda done: bar.update(step, completed=round(100 * done)))
    bar.remove_task(step)
    measured = {label: (measure.latency_record(result) if result is not None else failures[index])
                for index, ((label, _, _), result) in enumerate(zip(runnable, latencies, strict=True))}
    by_candidate = {c: measured.get(c.label, _missing(files.get(c.artifact))) for c in plan.candidates}
    reference_latency = measured.get(reference.label if reference in plan.candidates else "reference")
    env = next((result.env for result in latencies if result is not None), measure.environment(most))
    env = {**env, "flags": sorted(flag for flag in RELEVANT_FLAGS if flag in cpu_flags())}
    return Timed(by_candidate, _record(reference_latency), _record(measured.get("baseline")), env)


def _missing(file: Path | str | None) -> str:
    return file if isinstance(file, str) else "its file was not made"


def _record(value: LatencyRecord | str | None) -> LatencyRecord | None:
    return value if isinstance(value, LatencyRecord) else None
