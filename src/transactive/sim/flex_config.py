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

from pydantic import Field, model_validator

from transactive.sim._schema import Section

__all__ = ["DemandResponseConfig", "EVConfig", "FlexibilityConfig", "HeatPumpConfig",
           "ShiftableConfig"]


class FlexibilityConfig(Section):
    """How the households' devices run."""

    control: Literal["rules", "market"] = Field(
        "rules", description="'market': devices bid and the market dispatches them "
        "(transactive control); 'rules': plain price-blind rules.")
    horizon_h: float = Field(24.0, gt=0, le=168,
                             description="Hours of price forecast a device bids from.")
    trading: Literal["home", "devices"] = Field(
        "home", description="'home': each home's energy manager matches its own devices "
        "first and orders the rest; 'devices': every device trades in the market as its "
        "own agent (machine to machine), the home matching nothing.")


class EVConfig(Section):
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


class HeatPumpConfig(Section):
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


class ShiftableConfig(Section):
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


class DemandResponseConfig(Section):
    """Demand-response events: negawatts paid against a baseline."""

    enabled: bool = Field(False, description="Call events and pay for measured reductions.")
    events: int = Field(3, ge=1, le=366, description="Event days: the weekdays with the "
                        "dearest event hours that have the baseline's history before them.")
    event_start_hour: float = Field(17.0, ge=0, lt=24, description="Event start, local clock.")
    event_end_hour: float = Field(20.0, gt=0, le=24, description="Event end, local clock.")
    method: Literal["caiso_10in10", "pjm_high4of5", "regression"] = Field(
        "caiso_10in10", description="Baseline: CAISO 10 in 10 (capped day-of adjustment), "
        "PJM high 4 of 5, or a regression on outdoor temperature.")
    price_per_kwh: float = Field(0.5, ge=0, le=100,
                                 description="Payment per kWh of measured reduction.")
    rebound_hours: float = Field(2.0, ge=0, le=24,
                                 description="Hours after an event in which rebound is measured.")

    @model_validator(mode="after")
    def _hours(self) -> DemandResponseConfig:
        if self.event_end_hour <= self.event_start_hour:
            raise ValueError("event_end_hour must come after event_start_hour")
        return self
