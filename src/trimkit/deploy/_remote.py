"""Timing the candidates on the device they are for, through its benchmark workers.

Each candidate's file goes to the queue of device ``device_name`` for its runtime (an
ONNX file, or an OpenVINO IR with its weights), with its threads, precision and batch;
the device's ``trimkit bench-worker`` (one per runtime) times it with the same code
``trimkit bench`` runs. All are submitted at once and the worker takes them one at a
time: a worker times one job at a time, so the candidates are *not* interleaved there
as they are on this machine, and a change of load on the device during the run falls
on some of them only. Scoring stays on this machine (a worker measures latency only):
the metric is the one the same runtime and precision compute here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trimkit.deploy._candidates import Candidate, CandidatePlan
from trimkit.deploy._options import DeployOptions
from trimkit.deploy._timing import Timed
from trimkit.errors import TrimkitError
from trimkit.record import LatencyRecord


def time_remotely(plan: CandidatePlan, files: dict[str, Path | str], fp32: Path, base_file: Path | None,
                  options: DeployOptions, say: Callable[[str], None]) -> Timed:
    from trimkit.measure import remote  # psycopg and pgqueuer: only where a queue is named

    if not options.device_name:
        raise TrimkitError("timing on another device needs its queue name: --device-name (as its trimkit "
                           "bench-worker serves it)")
    most = max(c.threads for c in plan.candidates)
    reference = Candidate("onnxruntime", "fp32", most)
    jobs: list[tuple[str, Path | str, Candidate]] = [(c.label, files.get(c.artifact, "not made"), c)
                                                     for c in plan.candidates]
    if "onnxruntime" in {c.runtime for c in plan.candidates}:
        if reference not in plan.candidates:
            jobs.append(("reference", fp32, reference))
        if base_file is not None:
            jobs.append(("baseline", base_file, reference))
    say(f"queueing {len(jobs)} runs for device {options.device_name}: its benchmark workers time them one by one")
    submitted = {}
    for label, file, candidate in jobs:
        if isinstance(file, Path):
            submitted[label] = remote.submit(file, options.timing(), queue_url=options.queue,
                                             queue_name=options.device_name, batch_size=options.batch_size,
                                             backend=candidate.runtime, threads=candidate.threads,
                                             precision=candidate.runtime_precision)
    measured: dict[str, LatencyRecord | str] = {}
    env: dict = {}
    for label, job in submitted.items():
        try:
            result = remote.wait(job, options.remote_timeout_s)
        except TrimkitError as error:
            measured[label] = str(error)
            continue
        measured[label] = result.record
        env = env or {**result.env, "device": result.device}
    by_candidate = {c: measured.get(c.label, files.get(c.artifact) if isinstance(files.get(c.artifact), str)
                                    else "not timed") for c in plan.candidates}
    reference_latency = measured.get(reference.label if reference in plan.candidates else "reference")
    baseline = measured.get("baseline")
    return Timed(by_candidate, reference_latency if isinstance(reference_latency, LatencyRecord) else None,
                 baseline if isinstance(baseline, LatencyRecord) else None, env)
