"""What a search found: the best trials (or the Pareto front) as rows, ``results.json``,
and plots (history, Pareto front, parameter importances), each file written whole."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
from optuna.trial import FrozenTrial, TrialState

from trimkit._atomic import atomic_path, write_text_atomic
from trimkit.search._latency import estimate_error, measured_key

RESULTS_FILE = "results.json"


def trial_row(trial: FrozenTrial, study_attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One trial as the table and ``results.json`` show it; ``study_attrs`` (the study's
    user attributes) add the real latency of a reported trial whose latency was estimated."""
    figures = trial.user_attrs
    return {"number": trial.number, "state": trial.state.name.lower(), "values": trial.values,
            "overrides": trial.user_attrs.get("overrides") or {}, "macs": figures.get("macs"),
            "bytes": figures.get("bytes"), "params": figures.get("params"), "latency_ms": figures.get("latency_ms"),
            **latency_figures(figures, (study_attrs or {}).get(measured_key(trial.number))),
            "metric": figures.get("metric"), "drop": figures.get("drop"), "metrics": figures.get("metrics") or {},
            "feasible": _feasible(trial),
            "constraints": dict(trial.constraints),
            "seconds": trial.user_attrs.get("seconds"), "run_dir": trial.user_attrs.get("run_dir"),
            "error": trial.user_attrs.get("error"), "retry_of": trial.system_attrs.get("failed_trial")}


def latency_figures(figures: Mapping[str, Any], timed_later: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Where ``latency_ms`` came from (``table`` or ``measured``), the estimate, the real
    latency (timed with the trial, or ``timed_later`` for a reported one) and the
    estimate's error, ``(estimate - measured) / measured``; ``latency`` is the runtime's
    record of the real one."""
    record = figures.get("latency") or timed_later
    measured = figures.get("latency_measured_ms")
    if measured is None and record is not None:
        measured = record.get("latency_ms")
    estimate = figures.get("latency_estimate_ms")
    return {"latency_source": figures.get("latency_source"), "latency_estimate_ms": estimate,
            "latency_measured_ms": measured, "latency_estimate_error": estimate_error(estimate, measured),
            "latency_note": figures.get("latency_note"), "latency": record}


def _feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def best_trials(study: optuna.Study, top: int = 5) -> list[FrozenTrial]:
    """The Pareto front (several objectives), or the ``top`` best feasible trials (one)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if _feasible(t) and t.values and all(math.isfinite(v) for v in t.values)]
    if len(study.directions) > 1:
        front = [t for t in study.best_trials if _feasible(t)]
        return sorted(front, key=lambda t: t.values[0])
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(complete, key=lambda t: sign * t.values[0])[:top]


def results_record(study: optuna.Study, *, storage: str, run_dir: Path) -> dict[str, Any]:
    from trimkit.search.study import counted_trials

    trials = study.get_trials(deepcopy=False)
    counted = counted_trials(study)
    attrs = study.user_attrs
    baseline = attrs.get("baseline")
    return {
        "study": study.study_name, "storage": storage, "run_dir": str(run_dir),
        "directions": [d.name.lower() for d in study.directions],
        "objectives": attrs.get("objectives"), "metric": attrs.get("metric"),
        "baseline": baseline if baseline is None else {**baseline, **latency_figures(baseline)},
        "latency_table": attrs.get("latency_table"),
        "counts": {"ended": len(counted), "complete": sum(t.state == TrialState.COMPLETE for t in counted),
                   "failed": sum(t.state == TrialState.FAIL for t in counted),
                   "feasible": sum(t.state == TrialState.COMPLETE and _feasible(t) for t in counted),
                   "running": sum(t.state == TrialState.RUNNING for t in trials),
                   "waiting": sum(t.state == TrialState.WAITING for t in trials)},
        "best": [trial_row(t, attrs) for t in best_trials(study)],
        "trials": [trial_row(t, attrs) for t in counted],
    }


def write_results(study: optuna.Study, run_dir: str | os.PathLike, *, storage: str) -> dict[str, Any]:
    """``results.json`` and the plots in ``run_dir``; returns the record (with the plot paths)."""
    folder = Path(run_dir)
    record = results_record(study, storage=storage, run_dir=folder)
    record["plots"] = {name: str(path) for name, path in
                       (("history", plot_history(study, folder / "history.png")),
                        ("pareto", plot_front(study, folder / "pareto.png")),
                        ("importances", plot_importances(study, folder / "importances.png")))
                       if path is not None}
    write_text_atomic(folder / RESULTS_FILE, json.dumps(finite(record), indent=2))
    return record


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float as ``None`` (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
    return path


def _labels(study: optuna.Study) -> list[str]:
    names = study.user_attrs.get("objectives") or []
    return [names[i] if i < len(names) else f"objective {i}" for i in range(len(study.directions))]


def plot_history(study: optuna.Study, path: Path) -> Path | None:
    """Each objective by trial number, feasible trials filled, with the best so far."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not trials:
        return None
    labels = _labels(study)
    figure, axes = plt.subplots(len(labels), 1, figsize=(7, 2.6 * len(labels)), squeeze=False)
    for index, (axis, label) in enumerate(zip(axes[:, 0], labels)):
        ok = [t for t in trials if math.isfinite(t.values[index])]
        axis.scatter([t.number for t in ok if _feasible(t)], [t.values[index] for t in ok if _feasible(t)], s=14,
                     label="feasible")
        axis.scatter([t.number for t in ok if not _feasible(t)], [t.values[index] for t in ok if not _feasible(t)],
                     s=14, facecolors="none", edgecolors="grey", label="infeasible")
        minimise = study.directions[index] == optuna.study.StudyDirection.MINIMIZE
        best, xs, ys = None, [], []
        for trial in sorted((t for t in ok if _feasible(t)), key=lambda t: t.number):
            value = trial.values[index]
            best = value if best is None else (min(best, value) if minimise else max(best, value))
            xs.append(trial.number)
            ys.append(best)
        if xs:
            axis.step(xs, ys, where="post", color="C1", label="best so far")
        axis.set_xlabel("trial")
        axis.set_ylabel(label)
        axis.legend(fontsize=7)
    figure.suptitle(f"search history: {study.study_name}")
    figure.tight_layout()
    return _save(figure, path)


def plot_front(study: optuna.Study, path: Path) -> Path | None:
    """The first two objectives (or, with one, latency against the metric when both
    were measured) for every trial, the Pareto front / best trials marked."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    labels = _labels(study)
    if len(labels) >= 2:
        points = [(t, t.values[0], t.values[1]) for t in trials]
        xlabel, ylabel = labels[0], labels[1]
    else:
        points = [(t, t.user_attrs.get("latency_ms"), t.user_attrs.get("metric")) for t in trials]
        xlabel, ylabel = "latency_ms", study.user_attrs.get("metric") or "metric"
    points = [(t, x, y) for t, x, y in points if x is not None and y is not None and math.isfinite(x)
              and math.isfinite(y)]
    if not points:
        return None
    best = {t.number for t in best_trials(study)}
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for group, style in ((False, {"facecolors": "none", "edgecolors": "grey"}), (True, {"color": "C3"})):
        chosen = [(x, y) for t, x, y in points if (t.number in best) == group]
        if chosen:
            axis.scatter(*zip(*chosen), s=18, label="Pareto front" if group and len(labels) > 1 else
                         ("best" if group else "other trials"), **style)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=8)
    axis.set_title(f"{study.study_name}: {len(points)} trials")
    figure.tight_layout()
    return _save(figure, path)


def plot_importances(study: optuna.Study, path: Path) -> Path | None:
    """Optuna's parameter importances (fANOVA) for each objective; none before two
    complete trials with different values."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values and all(math.isfinite(v) for v in t.values)]
    if len(complete) < 2:
        return None
    labels = _labels(study)
    rows = []
    for index, label in enumerate(labels):
        try:
            warnings.filterwarnings("ignore", message=".*computes the importances of params to achieve low")
            # the evaluator ranks parameters by how they lead to low values: negate a maximised objective
            sign = 1.0 if study.directions[index] == optuna.study.StudyDirection.MINIMIZE else -1.0
            importances = optuna.importance.get_param_importances(study, target=lambda t, i=index, s=sign:
                                                                  s * t.values[i])
        except (RuntimeError, ValueError, ZeroDivisionError):
            continue
        if importances:
            rows.append((label, importances))
    if not rows:
        return None
    figure, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 0.5 + 0.4 * len(rows[0][1]) + 1.5),
                                squeeze=False)
    for axis, (label, importances) in zip(axes[0], rows):
        names = list(importances)[::-1]
        axis.barh(names, [importances[n] for n in names])
        axis.set_xlabel("importance")
        axis.set_title(label)
    figure.tight_layout()
    return _save(figure, path)
