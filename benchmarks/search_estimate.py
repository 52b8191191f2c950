"""A search's latency measured per trial against estimated from the latency table
(``search.latency.estimate``): examples/recipes/lenet5-search.yaml at a small budget, run
once in each mode into fresh folders (and a fresh table cache), on this machine's CPU.

Prints, per mode: the seconds each trial's latency took (the export timed, or the table's
prediction of its model), the one-off costs (the table, built once; the reported trials
timed for real at the end) and, for the table, each reported trial's estimate against its
measured latency. The machine's CPU, flags and load average are printed with them.

    python benchmarks/search_estimate.py [--trials 8] [--min-time-s 0.5] [--train-samples 512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trimkit import search
from trimkit._cpu import cpu_flags, cpu_model
from trimkit.search import _latency, study

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "recipes" / "lenet5-search.yaml"
console = Console(width=150)


class Stopwatch:
    """Seconds spent in each wrapped function, call by call."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds.setdefault(label, []).append(time.perf_counter() - started)

        setattr(owner, name, timed)


def run(mode: str, args, folder: Path) -> tuple[Stopwatch, dict]:
    os.environ["TRIMKIT_CACHE"] = str(folder / "cache")
    watch = Stopwatch()
    saved = {(owner, name): getattr(owner, name) for owner, name in (
        (_latency.Latencies, "of_trial"), (_latency.TableEstimate, "build"), (study, "measure_reported"))}
    watch.wrap(_latency.Latencies, "of_trial", "trial latency")
    watch.wrap(_latency.TableEstimate, "build", "table (once)")
    watch.wrap(study, "measure_reported", "reported trials timed (at the end)")
    try:
        recipe = search.load_search_recipe(RECIPE, [
            f"task.train_samples={args.train_samples}", "task.val_samples=500", "stages.0.epochs=1",
            f"search.n_trials={args.trials}", "search.epochs=0", f"search.latency.min_time_s={args.min_time_s}",
            f"search.latency.estimate={mode}"])
        result = search.run_search(recipe, folder / "run")
        record = search.results_record(result.study, storage=result.storage, run_dir=folder / "run")
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)
    return watch, record


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--min-time-s", type=float, default=0.5)
    parser.add_argument("--train-samples", type=int, default=512)
    args = parser.parse_args()
    flags = ",".join(sorted(flag for flag in cpu_flags() if flag.startswith(("avx512", "amx", "avx2"))))
    console.print(f"# search latency, measured vs table: {cpu_model()} [{flags}], {os.cpu_count()} CPUs, load "
                  f"average {os.getloadavg()[0]:.2f} at the start", markup=False)
    summary = Table(title=f"lenet5-search, {args.trials} trials, latency min_time_s {args.min_time_s}")
    for column in ("estimate", "what", "calls", "median s", "total s"):
        summary.add_column(column, justify="left" if column in ("estimate", "what") else "right")
    errors = Table(title="estimate: table — the reported trials")
    for column in ("#", "overrides", "estimate ms", "measured ms", "error"):
        errors.add_column(column, justify="left" if column == "overrides" else "right")
    with tempfile.TemporaryDirectory(prefix="trimkit-search-estimate-") as root:
        for mode in ("measure", "table"):
            watch, record = run(mode, args, Path(root) / mode)
            for what, seconds in watch.seconds.items():
                summary.add_row(mode, what, str(len(seconds)), f"{statistics.median(seconds):.3f}",
                                f"{sum(seconds):.2f}")
            if mode == "table":
                for row in [*record["best"], {**record["baseline"], "number": "base", "overrides": {}}]:
                    error = row.get("latency_estimate_error")
                    errors.add_row(str(row["number"]), escape(str(row["overrides"])),
                                   _ms(row.get("latency_estimate_ms")), _ms(row.get("latency_measured_ms")),
                                   "-" if error is None else f"{100 * error:+.1f} %")
    console.print(summary)
    console.print(errors)
    console.print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
