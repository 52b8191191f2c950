"""The same choice with the candidates timed on another device, through its benchmark
workers (one per runtime) over a real PostgreSQL queue: ONNX files and OpenVINO IRs
travel, the latencies come back from the device, the scores are made here."""

from __future__ import annotations

import pytest

from bench_workers import ThreadWorker
from trimkit import data, deploy, models, tasks
from trimkit.errors import TrimkitError

pytestmark = pytest.mark.heavy  # a PostgreSQL server and worker threads


def test_candidates_are_timed_by_the_device_s_workers(postgres_url, tmp_path):
    model = models.create("lenet5")
    normalization = models.origin(model).normalization()
    task = tasks.as_task(data.load("mnist5k", "train", normalization=normalization).subset(64),
                         data.load("mnist5k", "val", normalization=normalization))
    workers = [ThreadWorker(postgres_url, "edge-1", backend) for backend in ("onnxruntime", "openvino")]
    try:
        found = deploy.choose(model, task=task, out=tmp_path / "edge", queue=postgres_url, device_name="edge-1",
                              threads=[1], precisions=["fp32", "int8"], int8_recipes=["qdq-u8s8"], samples=64,
                              calibration_samples=16, min_time_s=0.02, min_iters=3, warmup=2)
    finally:
        for worker in workers:
            worker.close()
    timed = [event.label for worker in workers for event in worker.events if event.kind == "done"]
    assert sorted(timed) == ["fp32.onnx", "fp32.xml", "int8-qdq-u8s8.onnx", "int8-qdq-u8s8.xml"]
    assert all(row.outcome.latency is not None and row.outcome.latency.threads == 1 for row in found.decision.rows)
    assert found.manifest["machine"]["device"] == "edge-1"
    assert found.manifest["machine"]["cpu"]  # the worker's environment record came back
    assert (tmp_path / "edge" / "manifest.json").is_file()


def test_timing_on_a_device_needs_its_name_and_thread_counts(tmp_path):
    model = models.create("lenet5")
    task = tasks.as_task(data.load("mnist5k", "train").subset(16), data.load("mnist5k", "val").subset(16))
    with pytest.raises(TrimkitError, match=r"^timing on another device needs its thread counts: --threads"):
        deploy.choose(model, task=task, queue="postgresql://u@127.0.0.1:9/d", device_name="edge-1")
