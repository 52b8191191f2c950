"""Reports: charts of exploration and sensitivity results."""

from trimkit.report.plots import plot_macs_vs_metric, plot_sensitivity, plot_threshold_functions

__all__ = ["plot_macs_vs_metric", "plot_sensitivity", "plot_threshold_functions"]
