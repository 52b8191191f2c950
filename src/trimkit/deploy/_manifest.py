"""``manifest.json``: what a deployment is, how to run it, what it was measured to do and
on which machine; and each candidate's row, as the table, the log and the manifest hold
it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import trimkit
from trimkit.deploy._candidates import BF16_FLAGS, INT8_FLAGS
from trimkit.deploy._decide import Decision, Row
from trimkit.deploy._loader import FORMAT

#: flags of /proc/cpuinfo that decide which precision runs fast (besides measure's ISA record)
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512vl", *INT8_FLAGS, *BF16_FLAGS, "amx_tile", "avx512_fp16")


@dataclass(frozen=True)
class Scored:
    """How the metric was computed: on ``samples`` images of ``split`` of ``data``."""

    metric: str
    split: str
    samples: int
    data: str | None


def row_record(row: Row) -> dict[str, Any]:
    """One candidate's row: what it is, its latency, metric, drop, speed-up, and why it
    was (not) chosen."""
    candidate, latency = row.candidate, row.outcome.latency
    return {
        "label": candidate.label, "runtime": candidate.runtime, "precision": candidate.precision,
        "int8_recipe": candidate.recipe, "threads": candidate.threads, "file": candidate.artifact,
        "precision_reported": None if latency is None else latency.precision,
        "p50_ms": None if latency is None else latency.latency_ms,
        "p90_ms": None if latency is None else latency.p90_ms,
        "p99_ms": None if latency is None else latency.p99_ms,
        "throughput": None if latency is None else latency.throughput,
        "iterations": None if latency is None else latency.iterations,
        "metric": row.outcome.metric, "drop": row.drop, "speedup": row.speedup,
        "chosen": row.chosen, "reason": row.reason,
    }


def manifest_of(decision: Decision, *, artifact: str, source: str, io: dict[str, Any], scored: Scored,
                env: dict[str, Any], runtime_version: str, runtime_settings: dict[str, Any], notes: list[str],
                baseline: dict[str, Any] | None = None, device: str | None = None) -> dict[str, Any]:
    """The manifest of the chosen deployment."""
    row = decision.chosen
    candidate, latency = row.candidate, row.outcome.latency
    reference = decision.reference_latency
    flags = env.get("flags") or []
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "trimkit": trimkit.__version__,
        "source": source,
        "artifact": artifact,
        "precision": candidate.precision,
        "int8_recipe": candidate.recipe,
        "runtime": {"name": candidate.runtime, "version": runtime_version, "threads": candidate.threads,
                    "inference_precision": candidate.runtime_precision, "precision_reported": latency.precision,
                    "settings": runtime_settings},
        "batch_size": latency.batch_size,
        **io,
        "latency": {"p50_ms": latency.latency_ms, "p90_ms": latency.p90_ms, "p99_ms": latency.p99_ms,
                    "mean_ms": latency.mean_ms, "cv": latency.cv, "throughput": latency.throughput,
                    "iterations": latency.iterations},
        "speedup_vs_onnxruntime_fp32": row.speedup,
        "onnxruntime_fp32": None if reference is None else {
            "p50_ms": reference.latency_ms, "threads": reference.threads, "throughput": reference.throughput},
        "metric": {"name": decision.metric, "value": row.outcome.metric, "reference": decision.reference,
                   "reference_by": "onnxruntime fp32", "drop": row.drop, "max_drop": decision.max_drop,
                   "split": scored.split, "samples": scored.samples, "data": scored.data},
        "baseline": baseline,
        "machine": {"device": device or "this machine", "cpu": env.get("cpu"), "flags": flags,
                    "isa": env.get("isa"), "cpus_available": env.get("cpus_available"),
                    "platform": env.get("platform"), "load_average_1m": env.get("load_average_1m"),
                    "busy_cpus_at_start": env.get("busy_cpus_at_start"), "versions": env.get("versions")},
        "candidates": [row_record(item) for item in decision.rows],
        "notes": notes,
    }
