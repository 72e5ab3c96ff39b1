"""The outcome of one run: its frames, its settlement and run-level figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from transactive.sim.scenario import Scenario
from transactive.sim.settling import SettlementSummary

__all__ = ["SimulationResult"]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Frames of one run (see :mod:`transactive.sim.recorder` for the columns).

    ``figures`` holds the run-level figures the frames do not carry:
    ``kw_per_unit`` (feeder kW per simulated kW, derived from the feeder's
    design load unless the scenario set it; None without a feeder) and, for
    a pool design, ``pool_opening_value`` (the pool's opening reserves at its
    opening price, money).
    """

    scenario: Scenario
    intervals: pd.DataFrame
    households: pd.DataFrame
    household_days: pd.DataFrame
    household_intervals: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    nodes: pd.DataFrame | None = None
    retail: pd.DataFrame | None = None
    dr_events: pd.DataFrame | None = None
    vpp: pd.DataFrame | None = None
    ev_departures: pd.DataFrame | None = None
    settlement: SettlementSummary | None = None
    figures: Mapping[str, float | None] = field(default_factory=dict)
    elapsed_s: float = field(default=0.0, compare=False)
