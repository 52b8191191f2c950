"""Latency tables and budget rounds timed by a device's benchmark worker, against a real
PostgreSQL server: the worker times a group of files interleaved with the code this
machine uses, and a table measured there is keyed by the worker's machine."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bench_workers import ThreadWorker
from trimkit.cli import app
from trimkit.measure import _latency_table as tables
from trimkit.measure._timer import LocalTimer
from trimkit.measure._timing import TimingPlan
from trimkit.prune import PruneTarget, _budget_cut, latency_table

pytestmark = pytest.mark.heavy  # a PostgreSQL server and a worker

EXAMPLE = torch.randn(2, 3, 12, 12)
FAST = {"threads": 1, "backend": "onnxruntime"}


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


def test_a_table_and_a_round_are_timed_by_the_device_and_hold_for_it(postgres_url, tmp_path, monkeypatch):
    """The worker says where it times (a probe job with no files), times a latency table's
    layers in group jobs, and a pruned model beside its unpruned self in one job."""
    monkeypatch.setenv("TRIMKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tables, "TABLE_PLAN", TimingPlan(warmup=2, min_time_s=0.005, min_iters=3, max_iters=50,
                                                         round_s=0.002))
    monkeypatch.setattr(_budget_cut, "WHOLE_MODEL_TIME_S", 0.05)
    target = {**FAST, "queue": postgres_url, "device_name": "table-dev", "timeout_s": 60}
    worker = ThreadWorker(postgres_url, "table-dev")
    try:
        table = latency_table(tiny(), EXAMPLE, target)
        timer = PruneTarget(**target).timer()
        options = PruneTarget(**FAST).runtime()
        # the worker runs here with one thread: its machine is this one
        assert timer.machine(options) == replace(LocalTimer().machine(options), where="device table-dev")
        half = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 4)).eval()
        quick = options.model_copy(update={"min_time_s": 0.02, "warmup": 2})
        times = timer.time_models([tiny(), half], quick, 2, [(3, 12, 12)])
    finally:
        worker.close()
    local = tables.TableSettings.of(PruneTarget(**FAST).runtime(), 1)
    assert table.settings == local  # the same machine and settings: the same key as a table built here
    assert (tmp_path / "cache" / "latency" / f"{local.key}.json").is_file()
    # every count of both convs' outputs (4, 8) and the inputs they feed
    assert sorted(len(points) for points in table.points.values()) == [2, 2, 4]
    assert len(times) == 2 and all(t.p50_ms > 0 and t.p90_ms >= t.p50_ms and t.iterations >= 10 for t in times)
    jobs = [event.label for event in worker.events if event.kind == "done"]
    # where it times (asked once per queue), the table's 8 layers, the model and its half for the
    # calibration, then the two models timed above
    assert jobs == ["probe (0 files)", "files (8 files)", "files (2 files)", "files (2 files)"]


@pytest.mark.parametrize("arguments, message", [
    (["--speedup", "2", "--queue", "postgresql://u@h/db"], "queue (its benchmark queue's PostgreSQL URL) and "
                                                           "device_name"),
    (["--ratio", "0.5", "--device-name", "dev"], "--queue and --device-name time a latency budget"),
])
def test_a_remote_budget_needs_queue_and_device_name(tmp_path, arguments, message):
    result = CliRunner().invoke(app, ["prune", "lenet5", "--out", str(tmp_path / "p.pt"), *arguments])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "p.pt").exists()
