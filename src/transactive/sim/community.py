"""Build a prosumer community from a scenario: who has what, and their profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.agents.devices import BatteryFleet
from transactive.agents.profiles import load_profiles, pv_profiles
from transactive.sim.scenario import CommunityConfig
from transactive.timeline import Timeline

__all__ = ["Community", "build_community"]


@dataclass(frozen=True, eq=False)
class Community:
    """Households as arrays (index ``h`` = participant id) and their profiles.

    ``load_kw`` and ``pv_kw`` have shape (intervals, households), float32.
    ``node`` is the feeder bus of each household (0-based bus index).
    """

    annual_kwh: npt.NDArray[np.float64]
    pv_capacity_kw: npt.NDArray[np.float64]
    batteries: BatteryFleet
    node: npt.NDArray[np.int64]
    load_kw: npt.NDArray[np.float32]
    pv_kw: npt.NDArray[np.float32]

    @property
    def size(self) -> int:
        return int(self.annual_kwh.shape[0])

    def households_frame(self) -> pd.DataFrame:
        """One row per household: its devices and node."""
        return pd.DataFrame({
            "household": np.arange(self.size),
            "node": self.node,
            "annual_kwh": self.annual_kwh,
            "pv_kw": self.pv_capacity_kw,
            "battery_kwh": self.batteries.capacity_kwh,
            "battery_kw": self.batteries.power_kw,
        })


def build_community(
    config: CommunityConfig,
    timeline: Timeline,
    rng: np.random.Generator,
    *,
    n_nodes: int = 1,
) -> Community:
    """Draw the households' devices and profiles from ``config``.

    PV goes to a random ``pv_share`` of households, batteries to a random
    ``battery_share`` of all households chosen among the PV owners. Households
    are spread evenly over ``n_nodes`` buses (bus 0, the substation, is left
    out when there is more than one bus).
    """
    n = config.households
    device_rng, load_rng, pv_rng, battery_rng = rng.spawn(4)
    order = device_rng.permutation(n)
    n_pv = round(config.pv_share * n)
    n_battery = min(round(config.battery_share * n), n_pv)
    has_pv = np.zeros(n, dtype=bool)
    has_pv[order[:n_pv]] = True
    has_battery = np.zeros(n, dtype=bool)
    has_battery[order[:n_battery]] = True
    pv_capacity_kw = np.where(
        has_pv, device_rng.uniform(config.pv_kw_min, config.pv_kw_max, n).round(1), 0.0
    )
    annual_kwh = config.annual_kwh_mean * np.exp(
        config.annual_kwh_sigma * device_rng.standard_normal(n)
        - config.annual_kwh_sigma**2 / 2
    )
    batteries = BatteryFleet.build(
        has_battery, battery_rng,
        capacity_kwh=(config.battery_kwh_min, config.battery_kwh_max),
        power_kw=(config.battery_kw_min, config.battery_kw_max),
        efficiency=config.battery_efficiency,
    )
    if n_nodes > 1:
        node = 1 + device_rng.permutation(np.arange(n) % (n_nodes - 1))
    else:
        node = np.zeros(n, dtype=np.int64)
    return Community(
        annual_kwh=annual_kwh,
        pv_capacity_kw=pv_capacity_kw,
        batteries=batteries,
        node=node.astype(np.int64),
        load_kw=load_profiles(timeline, annual_kwh, load_rng),
        pv_kw=pv_profiles(timeline, pv_capacity_kw, pv_rng,
                          latitude_deg=config.latitude_deg,
                          longitude_deg=config.longitude_deg),
    )
