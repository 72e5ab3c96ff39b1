"""Simulation: scenario files, the community builder, the interval loop, the results store."""

from transactive._lazy import attach

_EXPORTS = {
    "Scenario": "transactive.sim.scenario",
    "SimulationResult": "transactive.sim.result",
    "load_scenario": "transactive.sim.scenario",
    "read_results": "transactive.sim.recorder",
    "simulate": "transactive.sim.engine",
    "write_results": "transactive.sim.recorder",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
