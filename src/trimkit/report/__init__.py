"""Reports: charts of exploration and sensitivity results, and one self-contained HTML
report per run folder."""

from trimkit.report.html import write_report
from trimkit.report.plots import plot_macs_vs_metric, plot_sensitivity, plot_threshold_functions

__all__ = ["plot_macs_vs_metric", "plot_sensitivity", "plot_threshold_functions", "write_report"]
