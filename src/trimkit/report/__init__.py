"""Reports: one self-contained HTML report per run folder, drawn from what its stages
logged; and PNG charts of exploration and sensitivity results (matplotlib, imported on
first use)."""

from trimkit._lazy import attach
from trimkit.report.html import write_report

_PLOTS = dict.fromkeys(("plot_macs_vs_metric", "plot_sensitivity", "plot_threshold_functions"), "trimkit.report.plots")
__getattr__, __dir__, _lazy_names = attach(__name__, names=_PLOTS)
__all__ = ["write_report", *_lazy_names]
