"""Analysis of a run: metrics and the HTML report."""

from transactive._lazy import attach

_EXPORTS = {
    "gini": "transactive.analysis.metrics",
    "lorenz_curve": "transactive.analysis.metrics",
    "render_comparison": "transactive.analysis.report",
    "render_report": "transactive.analysis.report",
    "summary": "transactive.analysis.metrics",
    "write_comparison": "transactive.analysis.report",
    "write_report": "transactive.analysis.report",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
