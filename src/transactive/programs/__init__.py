"""Retail programs: tariffs, carbon pricing and demand response (baselines,
negawatt settlement)."""

from transactive._lazy import attach

_EXPORTS = {
    "BaselineErrors": "transactive.programs.baseline",
    "CarbonLines": "transactive.programs.carbon",
    "CarbonPrices": "transactive.programs.carbon",
    "DayType": "transactive.programs.dr",
    "Negawatts": "transactive.programs.dr",
    "Tariff": "transactive.programs.tariffs",
    "baseline": "transactive.programs.baseline",
    "baseline_errors": "transactive.programs.baseline",
    "carbon_lines": "transactive.programs.carbon",
    "day_types": "transactive.programs.dr",
    "event_windows": "transactive.programs.dr",
    "negawatts": "transactive.programs.dr",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
