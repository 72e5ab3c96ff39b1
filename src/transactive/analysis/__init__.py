"""Analysis of a run: metrics and the HTML report."""

from transactive.analysis.metrics import gini, lorenz_curve, summary
from transactive.analysis.report import (
    render_comparison,
    render_report,
    write_comparison,
    write_report,
)

__all__ = ["gini", "lorenz_curve", "render_comparison", "render_report", "summary",
           "write_comparison", "write_report"]
