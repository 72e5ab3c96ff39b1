"""Retail programs: tariffs (and, later, demand response and carbon pricing)."""

from transactive.programs.tariffs import Tariff

__all__ = ["Tariff"]
