"""Retail programs: tariffs and carbon pricing."""

from transactive.programs.carbon import CarbonLines, CarbonPrices, carbon_lines
from transactive.programs.tariffs import Tariff

__all__ = ["CarbonLines", "CarbonPrices", "Tariff", "carbon_lines"]
