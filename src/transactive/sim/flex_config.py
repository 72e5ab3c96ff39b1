"""Scenario sections of the flexible devices: ``[flexibility]``, ``[ev]``,
``[heat_pump]``, ``[shiftable]`` (see :mod:`transactive.sim.scenario`).

A device is in the community when its ``share`` is above 0 (the share of
households that own one). ``[flexibility] control`` says how every device
runs: ``"market"`` (transactive control: each device bids its flexibility
and is dispatched by the market, :mod:`transactive.agents.flexibility`) or
``"rules"`` (plain rules, price-blind: the battery stores surplus PV and
covers deficits, the EV charges at full power from arrival, the heat pump
holds its set point, the appliance starts when ready).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EVConfig", "FlexibilityConfig", "HeatPumpConfig", "ShiftableConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlexibilityConfig(_Section):
    """How the households' devices run."""

    control: Literal["rules", "market"] = Field(
        "rules", description="'market': devices bid and the market dispatches them "
        "(transactive control); 'rules': plain price-blind rules.")
    horizon_h: float = Field(24.0, gt=0, le=168,
                             description="Hours of price forecast a device bids from.")


class EVConfig(_Section):
    """Electric vehicles: trips, plug-in times, charging."""

    share: float = Field(0.0, ge=0, le=1, description="Share of households with an EV.")
    v2g_share: float = Field(0.0, ge=0, le=1,
                             description="Share of EVs that can feed back (vehicle-to-grid).")
    arrival_hour: float = Field(18.0, ge=0, lt=24, description="Mean plug-in time, local.")
    departure_hour: float = Field(7.5, ge=0, lt=24, description="Mean departure time, local.")
    km_per_day: float = Field(40.0, ge=0, le=1000, description="Mean daily distance, km.")
    kwh_per_km: float = Field(0.18, gt=0, le=2, description="Consumption, kWh per km.")
    capacity_kwh_min: float = Field(40.0, gt=0, le=300, description="Smallest battery, kWh.")
    capacity_kwh_max: float = Field(75.0, gt=0, le=300, description="Largest battery, kWh.")
    required_frac: float = Field(0.8, gt=0, le=1,
                                 description="Share of capacity each car must hold at departure.")

    @model_validator(mode="after")
    def _consistent(self) -> EVConfig:
        if self.departure_hour >= self.arrival_hour:
            raise ValueError("departure_hour (morning) must come before arrival_hour (evening)")
        if self.capacity_kwh_min > self.capacity_kwh_max:
            raise ValueError("capacity_kwh_min must not exceed capacity_kwh_max")
        return self


class HeatPumpConfig(_Section):
    """Heat pumps in 1R1C buildings, with a comfort band."""

    share: float = Field(0.0, ge=0, le=1, description="Share of households with a heat pump.")
    setpoint_c: float = Field(20.5, ge=5, le=30, description="Indoor set point, degC.")
    band_k: float = Field(1.0, gt=0, le=10,
                          description="Half-width of the comfort band around the set point, K.")
    comfort_k: float = Field(1.0, ge=0, le=10, description="Price standard deviations a "
                             "kelvin of the band is worth in the bid (Olympic Peninsula 'k').")
    heating_limit_c: float = Field(15.0, ge=-20, le=30,
                                   description="Outdoor temperature above which it does not heat.")
    gains_kw: float = Field(0.3, ge=0, le=10, description="Internal heat gains, kW.")


class ShiftableConfig(_Section):
    """Shiftable appliances: one cycle a day placed within a window."""

    share: float = Field(0.0, ge=0, le=1, description="Share of households with one.")
    ready_hour: float = Field(8.0, ge=0, lt=24, description="Mean hour a cycle is ready, local.")
    due_hour: float = Field(22.0, gt=0, le=24, description="Mean hour it must be done, local.")
    cycle_share: float = Field(0.6, ge=0, le=1, description="Share of days with a cycle.")

    @model_validator(mode="after")
    def _window(self) -> ShiftableConfig:
        if self.due_hour - self.ready_hour < 3:
            raise ValueError("due_hour must come at least 3 hours after ready_hour")
        return self
