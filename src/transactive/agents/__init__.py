"""Agents: device fleets and profiles of households, and their bidding strategies.

Everything here works on arrays over households (index ``h``) and, for
profiles, intervals (index ``t``) of a :class:`~transactive.timeline.Timeline`.
"""

from transactive.agents.devices import BatteryFleet, BatteryStep
from transactive.agents.profiles import load_profiles, pv_profiles, solar_elevation_deg
from transactive.agents.strategies import STRATEGIES, Strategy, limit_prices, net_orders

__all__ = [
    "STRATEGIES",
    "BatteryFleet",
    "BatteryStep",
    "Strategy",
    "limit_prices",
    "load_profiles",
    "net_orders",
    "pv_profiles",
    "solar_elevation_deg",
]
