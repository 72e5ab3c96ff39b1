"""Scenario sections of the flexible devices: ``[flexibility]``, ``[ev]``,
``[heat_pump]``, ``[shiftable]`` (see :mod:`transactive.sim.scenario`), and
of the programs: ``[demand_response]``, ``[vpp]``, ``[retail]``.

A device is in the community when its ``share`` is above 0 (the share of
households that own one). ``[flexibility] control`` says how every device
runs: ``"market"`` (transactive control: each device bids its flexibility
and is dispatched by the market, :mod:`transactive.agents.flexibility`),
``"mpc"`` (model-predictive control: every interval each home's battery, EV
and heat pump are planned by one LP over ``horizon_h`` hours of the tariff,
:mod:`transactive.agents.mpc`, and the plan's first interval is ordered as
must-run; appliances bid by their own rule) or ``"rules"`` (plain rules,
price-blind: the battery stores surplus PV and covers deficits, the EV
charges at full power from arrival, the heat pump holds its set point, the
appliance starts when ready).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from transactive.sim._schema import Section

__all__ = ["DemandResponseConfig", "EVConfig", "EntrantConfig", "FlexibilityConfig",
           "HeatPumpConfig", "RetailConfig", "ShiftableConfig", "VppConfig"]


class FlexibilityConfig(Section):
    """How the households' devices run."""

    control: Literal["rules", "market", "mpc"] = Field(
        "rules", description="'market': devices bid and the market dispatches them "
        "(transactive control); 'mpc': each home plans its battery, EV and heat pump by an "
        "LP over the horizon every interval and orders the plan's first interval; 'rules': "
        "plain price-blind rules.")
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
                                 description="Payment per kWh of measured reduction "
                                 "('fixed'), or the price the reduction is offered at "
                                 "('wholesale').")
    compensation: Literal["fixed", "wholesale"] = Field(
        "fixed", description="'fixed': the program pays price_per_kwh; 'wholesale': the "
        "reduction is offered into the wholesale market as supply at price_per_kwh and, in "
        "the event intervals where the day-ahead price reaches the offer, paid that price "
        "(demand response paid as supply, as under FERC Order 745); elsewhere not bought.")
    rebound_hours: float = Field(2.0, ge=0, le=24,
                                 description="Hours after an event in which rebound is measured.")

    @model_validator(mode="after")
    def _hours(self) -> DemandResponseConfig:
        if self.event_end_hour <= self.event_start_hour:
            raise ValueError("event_end_hour must come after event_start_hour")
        return self


class VppConfig(Section):
    """A virtual power plant: an aggregator trades its members' device flexibility
    in the day-ahead market (see :mod:`transactive.sim.vpp`)."""

    enabled: bool = Field(False, description="Enrol households' batteries, EVs, heat pumps "
                          "and appliances with an aggregator that bids their flexibility "
                          "day-ahead at the wholesale price and dispatches them to its award.")
    share: float = Field(1.0, gt=0, le=1, description="Share of the households with such a "
                         "device that enrol.")
    margin_per_kwh: float = Field(0.02, ge=0, le=10, description="What the aggregator keeps "
                                  "per kWh dispatched (its bids are this far inside the "
                                  "devices' limits).")
    sharing: Literal["pro_rata_energy", "marginal"] = Field(
        "pro_rata_energy", description="How the households share the revenue: each kWh at "
        "its device's limit and the surplus by energy, or every kWh at the price less the "
        "margin.")
    gate_closure_h: float = Field(1.0, gt=0, le=24, description="Hours before delivery "
                                  "the aggregator commits an interval's award, from its "
                                  "fleet's flexibility then (1: an intraday market's gate "
                                  "closure; 24: the day-ahead market).")
    network_charge_per_kwh: float = Field(0.10, ge=0, le=100, description="Network "
                                          "charges and levies per kWh the aggregator "
                                          "supplies, on top of the wholesale price.")
    imbalance_price_per_kwh: float = Field(0.05, ge=0, le=100, description="What the "
                                           "aggregator pays per kWh its fleet is off the "
                                           "award (its imbalance settlement).")


class EntrantConfig(Section):
    """A retailer entering against the incumbent (the scenario's ``[tariff]``)."""

    name: str = Field(..., min_length=1, max_length=40, description="The retailer's name.")
    kind: Literal["flat", "tou"] = Field("flat", description="Its tariff: flat or time of use "
                                         "(the incumbent's peak hours).")
    energy_price_per_kwh: float = Field(..., gt=0, le=100,
                                        description="Its price (flat), or off-peak price (tou).")
    peak_price_per_kwh: float | None = Field(None, gt=0, le=100,
                                             description="Its peak price ('tou' only).")
    feed_in_price_per_kwh: float | None = Field(
        None, ge=-100, le=100, description="What it pays for export; unset: the incumbent's "
        "'feed_in_price_per_kwh'.")
    fee_per_month: float = Field(0.0, ge=-1000, le=1000, description="Fixed fee per month.")
    adapt: Literal["best_response", "margin", "fixed"] = Field(
        "best_response", description="How it moves its prices each month: a myopic best "
        "response to the households' logit choice, a margin rule on its share, or not at all.")

    @model_validator(mode="after")
    def _tariff(self) -> EntrantConfig:
        if self.kind == "tou" and self.peak_price_per_kwh is None:
            raise ValueError("peak_price_per_kwh is required for a 'tou' entrant")
        if self.kind == "flat" and self.peak_price_per_kwh is not None:
            raise ValueError("peak_price_per_kwh is for a 'tou' entrant only")
        return self


class RetailConfig(Section):
    """Retail competition against the incumbent, beside the run's P2P market."""

    enabled: bool = Field(False, description="Play retail competition on the households' "
                          "metered profile and compare it with the incumbent and the market.")
    months: int = Field(24, ge=1, le=240, description="Months of competition played.")
    entrants: list[EntrantConfig] = Field(
        default_factory=lambda: [EntrantConfig(name="entrant", energy_price_per_kwh=0.26)],
        min_length=1, max_length=10, description="The retailers entering.")
    sensitivity_per_currency: float = Field(
        0.2, gt=0, le=100, description="Logit price sensitivity per currency unit of a "
        "monthly bill (an assumption, not an estimate).")
    switching_cost: float = Field(45.0, ge=0, le=10_000, description="Inertia, currency: "
                                  "with 0.2, the 1.4 % of households a month Ofgem measured.")
    network_charge_per_kwh: float = Field(
        0.10, ge=0, le=100, description="Every retailer's network charges and levies per kWh "
        "supplied, on top of the wholesale price.")
    cost_per_customer_month: float = Field(0.0, ge=0, le=1000,
                                           description="Every retailer's cost per customer.")
    price_cap_per_kwh: float | None = Field(
        None, gt=0, le=100, description="No retailer's mean price above this; unset: the "
        "incumbent's mean price on the households' imports.")

    @model_validator(mode="after")
    def _names(self) -> RetailConfig:
        names = [e.name for e in self.entrants]
        if "incumbent" in names or len(set(names)) < len(names):
            raise ValueError("entrants need distinct names other than 'incumbent'")
        return self
