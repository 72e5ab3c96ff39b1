"""Retail programs: tariffs and carbon pricing."""

from transactive._lazy import attach

_EXPORTS = {
    "CarbonLines": "transactive.programs.carbon",
    "CarbonPrices": "transactive.programs.carbon",
    "Tariff": "transactive.programs.tariffs",
    "carbon_lines": "transactive.programs.carbon",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
