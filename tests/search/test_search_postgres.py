"""Search on PostgreSQL, as on many machines: two ``trimkit search`` processes share one
study in a real PostgreSQL server and time every trial's export through one
``trimkit bench-worker``. ``kill -9`` of the benchmark worker mid-benchmark and of a
search worker mid-trial: no finished trial is lost, the dead worker's trial is failed
by its stale heartbeat and run again, the killed benchmark is measured by the
restarted benchmark worker, and the study ends with exactly ``n_trials``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import psycopg
import pytest
import yaml
from optuna.trial import TrialState

from trimkit import search

pytestmark = pytest.mark.heavy  # a PostgreSQL server and worker processes

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 6


def _recipe(tmp_path: Path, url: str) -> Path:
    """LeNet-5 pruned at a searched ratio on 64 images (no training: about a second a
    trial), each trial's export timed by the benchmark worker of queue ``edge``."""
    recipe = {
        "name": "pg-search",
        "model": {"name": "lenet5"},
        "task": {"data": "mnist5k", "train_samples": 64, "val_samples": 100},
        "stages": [{"stage": "prune", "ratio": 0.0, "layers": "both", "mode": "static", "calibration_samples": 8}],
        "search": {
            "method": "random", "n_trials": N_TRIALS,
            "parameters": {"stages.0.ratio": {"min": 0.0, "max": 0.8}},
            "objectives": ["latency_ms", "top1"],
            "latency": {"backend": "onnxruntime", "threads": 1, "min_time_s": 1.5, "queue": url,
                        "queue_name": "edge", "timeout_s": 240},
            "heartbeat_interval": 1, "grace_period": 6,
        },
    }
    path = tmp_path / "pg-search.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


class Process:
    """A trimkit command in its own process, its output collected line by line."""

    def __init__(self, *arguments: str, stderr: Path | None = None) -> None:
        """Standard error goes to the file ``stderr`` where given, else with the output."""
        self.popen = subprocess.Popen([sys.executable, "-m", "trimkit.cli", *arguments], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT if stderr is None else stderr.open("w"), text=True,
                                      cwd=ROOT)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip())

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for(self, marker: str, timeout_s: float, count: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [line for line in self.lines if marker in line]
            if len(found) >= count:
                return found
            if self.popen.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {marker!r} (x{count}) from pid {self.pid}; it printed: {self.lines[-30:]}")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.popen.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(60)
        self.reader.join(10)


def _bench_worker(url: str) -> Process:
    worker = Process("bench-worker", "--queue", url, "--device-name", "edge", "--threads", "1", "--heartbeat", "3")
    worker.wait_for("serving queue 'edge'", 120)
    return worker


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="pg-search", storage=search.open_storage(url))


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return _study(url).get_trials()
    except KeyError:  # not created yet
        return []


_OPEN = """
import sys, optuna
from trimkit import search
storage = search.open_storage(sys.argv[1])
optuna.create_study(study_name="race", storage=storage, load_if_exists=True)
"""


def test_workers_started_together_on_an_empty_database_all_join(postgres_url):
    """Optuna's create_all races on an empty database (optuna/optuna#1092); open_storage
    holds an advisory lock around it, so four workers started at once all get the study."""
    workers = [subprocess.Popen([sys.executable, "-c", _OPEN, postgres_url], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, errors
    assert len(optuna.get_all_study_names(storage=search.open_storage(postgres_url))) == 1


@pytest.mark.slow
def test_two_search_workers_and_a_bench_worker_survive_kill_9(tmp_path, postgres_url):
    url = postgres_url
    recipe = _recipe(tmp_path, url)
    run = tmp_path / "run"
    bench = [_bench_worker(url)]
    searches = []
    try:
        for index in range(2):
            searches.append(Process("search", str(recipe), "--storage", url, "--out", str(run), "--json",
                                    stderr=tmp_path / f"search-{index}.err"))
        # the benchmark worker dies in the middle of its second benchmark, a trial waiting on it
        measuring = bench[0].wait_for("measuring ", 300, count=2)[-1]
        bench[0].kill()
        killed_request = measuring.split("(request ", 1)[1].split(")", 1)[0]
        bench.append(_bench_worker(url))

        # then a search worker dies in the middle of a trial, once some trial has ended
        victim, survivor = searches
        deadline = time.monotonic() + 300
        killed_trial = None
        while time.monotonic() < deadline and victim.popen.poll() is None:
            trials = _trials(url)
            running = [t for t in trials if t.state == TrialState.RUNNING and t.params
                       and (t.user_attrs.get("worker") or {}).get("pid") == victim.pid]
            if running and any(t.state == TrialState.COMPLETE for t in trials):
                before = {t.number: t.values for t in trials if t.state == TrialState.COMPLETE}
                killed_trial = running[0].number
                victim.kill()
                break
            time.sleep(0.1)
        assert killed_trial is not None, f"no trial of the first search worker to kill: {victim.lines[-20:]}"

        assert survivor.popen.wait(600) == 0, (tmp_path / "search-1.err").read_text()[-3000:]
        survivor.reader.join(10)
        bench[1].wait_for(f"(request {killed_request}) (attempt 2: a worker stopped mid-job)", 60)
        bench[1].wait_for(f"(request {killed_request}): p50 ", 120)
        # a job the killed search worker left in the queue is still measured (nobody reads it)
        with psycopg.connect(url) as connection:
            deadline = time.monotonic() + 60
            while connection.execute("SELECT count(*) FROM pgqueuer").fetchone() != (0,):
                assert time.monotonic() < deadline, "jobs left in the queue"
                time.sleep(0.2)
    finally:
        for process in bench + searches:
            process.stop()

    study = _study(url)
    trials = study.get_trials()
    complete = {t.number: t for t in trials if t.state == TrialState.COMPLETE}
    counted = search.counted_trials(study)
    assert len(complete) == N_TRIALS and len(counted) == N_TRIALS
    assert all(complete[number].values == values for number, values in before.items())  # nothing finished is lost
    dead = next(t for t in trials if t.number == killed_trial)
    assert dead.state == TrialState.FAIL  # failed by its stale heartbeat
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed_trial)
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.user_attrs["worker"]["pid"] == survivor.pid
    for trial in complete.values():
        latency = trial.user_attrs["latency"]
        assert (latency["backend"], latency["threads"], latency["batch_size"]) == ("onnxruntime", 1, 1)
        assert trial.values[0] == latency["latency_ms"] > 0 and latency["iterations"] >= 10
    result = json.loads("\n".join(survivor.lines))
    assert result["counts"]["ended"] == N_TRIALS
