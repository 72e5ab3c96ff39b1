"""Agents: device fleets and profiles of households, and their bidding strategies.

Everything here works on arrays over households (index ``h``) and, for
profiles, intervals (index ``t``) of a :class:`~transactive.timeline.Timeline`.
"""

from transactive._lazy import attach

_EXPORTS = {
    "BatteryFleet": "transactive.agents.devices",
    "BatteryStep": "transactive.agents.devices",
    "STRATEGIES": "transactive.agents.strategies",
    "Strategy": "transactive.agents.strategies",
    "limit_prices": "transactive.agents.strategies",
    "load_profiles": "transactive.agents.profiles",
    "net_orders": "transactive.agents.strategies",
    "pv_profiles": "transactive.agents.profiles",
    "solar_elevation_deg": "transactive.agents.profiles",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
