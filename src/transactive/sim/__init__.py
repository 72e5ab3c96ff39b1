"""Simulation: scenario files, the community builder, the interval loop, the results store."""

from transactive.sim.engine import SimulationResult, simulate
from transactive.sim.recorder import read_results, write_results
from transactive.sim.scenario import Scenario, load_scenario

__all__ = ["Scenario", "SimulationResult", "load_scenario", "read_results", "simulate",
           "write_results"]
