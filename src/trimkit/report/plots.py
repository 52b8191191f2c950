"""PNG charts of exploration results (matplotlib, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from trimkit._atomic import atomic_path
from trimkit.prune.explore import CriteriaComparison
from trimkit.prune.sensitivity import SensitivityResult


def plot_threshold_functions(comparison: CriteriaComparison, path: str | os.PathLike, title: str,
                             metric: str = "top-1 accuracy (%)") -> Path:
    """All criteria's threshold functions on one chart, as Bonsai Figs. 1-2."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, curve in comparison.curves.items():
        points = sorted(curve.points, key=lambda p: p.filters_pruned)
        axes.plot([100 * p.filters_pruned for p in points], [p.metric for p in points], marker="o", markersize=3,
                  label=f"{name} (AUC {curve.auc:.3f})")
    axes.set_xlabel("filters and neurons pruned (%)")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_sensitivity(result: SensitivityResult, path: str | os.PathLike, title: str,
                     metric: str = "top-1 accuracy (%)") -> Path:
    """Metric against sparsity, one line per channel group, as Distiller draws it."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for group, levels in result.metrics.items():
        sparsities = sorted(levels)
        axes.plot([100 * s for s in sparsities], [levels[s] for s in sparsities], marker=".", linewidth=1,
                  label=group)
    axes.axhline(result.baseline, color="black", linestyle="--", linewidth=0.8, label="unpruned")
    axes.set_xlabel("channels of the group pruned (%)")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len(result.metrics) <= 20:
        axes.legend(fontsize=6, ncol=2)
    return _save(figure, path)


def plot_macs_vs_metric(series: dict[str, list[tuple[int, float]]], path: str | os.PathLike, title: str,
                        metric: str = "top-1 accuracy (%)") -> Path:
    """A scatter of (MACs, metric) points, one colour per series."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, points in series.items():
        axes.scatter([m / 1e6 for m, _ in points], [v for _, v in points], s=14, label=name)
    axes.set_xlabel("MACs per image (millions)")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _save(figure, path: str | os.PathLike) -> Path:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    return Path(path)
