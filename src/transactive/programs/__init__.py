"""Retail programs: tariffs, carbon pricing and demand response (baselines,
negawatt settlement).

The baseline function itself is imported from its module,
``from transactive.programs.baseline import baseline``: a public name equal to
its submodule's name would be replaced by the module once the submodule is
imported."""

from transactive._lazy import attach

_EXPORTS = {
    "BaselineErrors": "transactive.programs.baseline",
    "CarbonLines": "transactive.programs.carbon",
    "CarbonPrices": "transactive.programs.carbon",
    "DayType": "transactive.programs.dr",
    "Negawatts": "transactive.programs.dr",
    "Tariff": "transactive.programs.tariffs",
    "baseline_errors": "transactive.programs.baseline",
    "carbon_lines": "transactive.programs.carbon",
    "day_types": "transactive.programs.dr",
    "event_windows": "transactive.programs.dr",
    "negawatts": "transactive.programs.dr",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
