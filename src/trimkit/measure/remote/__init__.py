"""Remote measurement: benchmark workers on the target device (the edge seed's consumer).

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
on storage both machines see). A group job carries several ONNX files (a latency
table's layers, a pruned model beside its unpruned self) that the worker times
interleaved, as this machine would; the answer is each file's median, 90th percentile
and calls, with the worker's CPU, instruction sets and runtime version, so that a table
measured there is keyed by that device. The answer travels through ``trimkit_bench_results``:
one row per request, written by the producer when it submits, updated by the worker
when it starts (``attempts``) and when it ends (the record, or the error), read and
deleted by the producer. A producer that gives up deletes its row; a worker that later
picks the job finds no row and drops the job unmeasured.
"""

from trimkit.measure.remote._producer import (Submitted, measure_remote, remote_measurement, submit, submit_files,
                                              time_files_remotely, wait)
from trimkit.measure.remote._queue import (DEFAULT_HEARTBEAT_S, WORKER_BACKENDS, BenchJob, RemoteMeasurement,
                                           ensure_installed, entrypoint, install)
from trimkit.measure.remote._worker import WorkerEvent, measure_files, measure_job, serve

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "WORKER_BACKENDS",
    "BenchJob",
    "RemoteMeasurement",
    "Submitted",
    "WorkerEvent",
    "ensure_installed",
    "entrypoint",
    "install",
    "measure_files",
    "measure_job",
    "measure_remote",
    "remote_measurement",
    "serve",
    "submit",
    "submit_files",
    "time_files_remotely",
    "wait",
]
