"""The flexible devices of a run: fleets built from the scenario, stepped by
rules or bidding through the household's energy manager.

:class:`Devices` holds every fleet of a community (battery state of charge,
EVs, heat pumps, shiftable appliances, the outdoor temperature) and moves
them one interval at a time, either

- by plain rules (:meth:`Devices.by_rules`): the battery stores surplus PV
  and covers deficits, an EV charges at full power from plug-in until it
  holds what it needs, a heat pump holds its set point, an appliance starts
  as soon as it is ready; the result is each household's net energy, which
  the engine orders as before; or
- as bidders (:meth:`Devices.segments` then :meth:`Devices.dispatch`): each
  fleet states its flexibility as segments from its state and the price
  forecast (the tariff's retail prices of the next ``horizon_h`` hours), the
  base load bids the price cap and PV offers at the floor, the energy
  manager matches in the home and orders the rest
  (:mod:`transactive.agents.flexibility`), and after clearing every fleet
  advances by what its segments got.

A run with ``[flexibility] control = "market"`` keeps a second set of the
same devices on rules, stepped in lockstep: the utility-only baseline, the
same households with the same devices and no market.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.agents.devices import BatteryFleet, arbitrage_prices
from transactive.agents.ev import EVFleet
from transactive.agents.flexibility import Part, Segments, part_prices
from transactive.agents.heatpump import HeatPumpFleet
from transactive.agents.mpc import DEVICES as MPC_DEVICES
from transactive.agents.mpc import MPCController, Plan
from transactive.agents.shiftable import ShiftableFleet
from transactive.agents.weather import annual_cycle_c, outdoor_temperature_c
from transactive.orders import BUY, SELL
from transactive.sim.scenario import Scenario
from transactive.timeline import Timeline

__all__ = ["FLEETS", "Devices"]

FloatArray = npt.NDArray[np.float64]

#: Codes of the segment owners, in order: what :meth:`Devices.segments` tags.
FLEETS = ("load", "pv", "battery", "ev", "heat_pump", "shiftable")
_CODE = {name: k for k, name in enumerate(FLEETS)}


@dataclass(eq=False)
class Devices:
    """Every device of a community's households, with its state."""

    batteries: BatteryFleet
    soc_kwh: FloatArray
    ev: EVFleet | None
    heat_pump: HeatPumpFleet | None
    shiftable: ShiftableFleet | None
    outdoor_c: FloatArray
    dt_h: float
    horizon: int
    """Intervals of price forecast a device bids from."""
    last_flex_kwh: FloatArray | None = None
    """Per household, what its EV, heat pump and appliance drew in the last
    interval stepped (kWh)."""

    @classmethod
    def build(cls, scenario: Scenario, timeline: Timeline, batteries: BatteryFleet,
              rng: np.random.Generator) -> Devices:
        """The fleets of the scenario's sections, drawn from ``rng``."""
        n, dt_h = scenario.community.households, timeline.dt_h
        weather_rng, own_rng, ev_rng, hp_rng, app_rng = rng.spawn(5)
        c = scenario.community
        outdoor = outdoor_temperature_c(timeline, weather_rng, latitude_deg=c.latitude_deg,
                                        longitude_deg=c.longitude_deg)
        share = own_rng.random((3, n))
        e, h, s = scenario.ev, scenario.heat_pump, scenario.shiftable
        ev = None if e.share == 0 else EVFleet.draw(
            timeline, share[0] < e.share, ev_rng, arrival_hour=e.arrival_hour,
            departure_hour=e.departure_hour, km_per_day=e.km_per_day, kwh_per_km=e.kwh_per_km,
            capacity_kwh=(e.capacity_kwh_min, e.capacity_kwh_max),
            required_frac=e.required_frac, v2g_share=e.v2g_share)
        hp = None if h.share == 0 else HeatPumpFleet.draw(
            share[1] < h.share, hp_rng, dt_h=dt_h, setpoint_c=h.setpoint_c, band_k=h.band_k)
        if hp is not None:
            hp.comfort_k, hp.heating_limit_c, hp.gains_kw = (h.comfort_k, h.heating_limit_c,
                                                             h.gains_kw)
        app = None if s.share == 0 else ShiftableFleet.draw(
            timeline, share[2] < s.share, app_rng, ready_hour=s.ready_hour,
            due_hour=s.due_hour, cycle_share=s.cycle_share)
        horizon = max(round(scenario.flexibility.horizon_h / dt_h), 1)
        return cls(batteries, batteries.initial_soc_kwh(), ev, hp, app, outdoor, dt_h, horizon)

    def annual_kwh(self, latitude_deg: float) -> float:
        """The devices' yearly consumption, estimated (kWh): EVs' daily trips,
        heat pumps' heat over the site's climatological heating degree days
        at a seasonal COP of 3, appliances' cycles. With the households' own
        consumption it sizes the feeder a community stands for
        (:func:`~transactive.sim.market.feeder_scale`), so a community with
        EVs and heat pumps loads its feeder as one designed for them."""
        total = 0.0
        if self.ev is not None:
            days = self.ev.trip_kwh.shape[0] * self.dt_h / 24.0
            total += float(self.ev.trip_kwh.sum() / self.ev.efficiency.mean()) * 365.0 / days
        if self.heat_pump is not None:
            hp = self.heat_pump
            mean, amplitude, coldest = annual_cycle_c(latitude_deg)
            doy = np.arange(365)
            daily = mean - amplitude * np.cos(2 * np.pi * (doy - coldest) / 365.25)
            degree_days = np.maximum(hp.heating_limit_c - daily, 0.0).sum()
            ua = 1.0 / hp.r_k_per_kw[hp.p_max_kw > 0]
            total += float(ua.sum()) * degree_days * 24.0 / 3.0
        if self.shiftable is not None:
            app = self.shiftable
            cycles = (app.earliest >= 0).sum(axis=0) * 365.0 / app.earliest.shape[0]
            total += float((app.energy_per_cycle_kwh * cycles).sum())
        return total

    def figures(self) -> dict[str, float | int | None]:
        """The devices' run figures: energy EVs lacked at their departures
        (kWh), how many departures there were and the share that left with
        what they needed, kelvin-hours houses spent outside their comfort
        band; None for a device the community does not have."""
        ev, hp = self.ev, self.heat_pump
        departures = ready = 0
        if ev is not None:
            for _, cars, soc in ev.soc_at_departure_kwh:
                departures += int(cars.size)
                ready += int((soc >= ev.required_kwh[cars] - 1e-6).sum())
        return {
            "ev_shortfall_kwh": None if ev is None else float(ev.shortfall_kwh.sum()),
            "ev_unmet_trip_kwh": None if ev is None else float(ev.unmet_trip_kwh.sum()),
            "ev_departures": None if ev is None else departures,
            "ev_ready_share": None if ev is None or not departures else ready / departures,
            "comfort_violation_kh": None if hp is None else float(hp.comfort_violation_kh.sum()),
        }

    def departures(self) -> pd.DataFrame | None:
        """Every EV departure of the run (the results table ``ev_departures``):
        ``interval`` (the first the car is away), ``household``, ``soc_kwh``
        (what it held) and ``required_kwh`` (what it needed); None without EVs."""
        ev = self.ev
        if ev is None:
            return None
        none: list[tuple[int, npt.NDArray[np.int64], FloatArray]] = [
            (0, np.empty(0, dtype=np.int64), np.empty(0))]
        parts = ev.soc_at_departure_kwh or none
        cars = np.concatenate([c for _, c, _ in parts]).astype(np.int64)
        return pd.DataFrame({
            "interval": np.concatenate([np.full(c.size, t, dtype=np.int64) for t, c, _ in parts]),
            "household": cars,
            "soc_kwh": np.concatenate([s for _, _, s in parts]),
            "required_kwh": ev.required_kwh[cars]})

    def indoor_c(self) -> tuple[float, float]:
        """Mean and lowest indoor temperature of the houses with a heat pump
        (NaN without any)."""
        hp = self.heat_pump
        if hp is None or not hp.heats.any():
            return float("nan"), float("nan")
        inside = hp.indoor_c[hp.heats]
        return float(inside.mean()), float(inside.min())

    def twin(self) -> Devices:
        """An independent copy in the same state (the baseline's devices). The
        inputs no step changes (the cars' plug-in, departure and trip
        timelines, the weather) are shared, read-only: for a year of 1,000
        households they are most of the devices' memory."""
        inputs: list[npt.NDArray[Any]] = [self.outdoor_c]
        if self.ev is not None:
            inputs += [self.ev.plugged, self.ev.departure, self.ev.trip_kwh]
        for arr in inputs:
            arr.flags.writeable = False
        return copy.deepcopy(self, {id(arr): arr for arr in inputs})

    # ------------------------------------------------------------ by rules
    def by_rules(self, t: int, load_kw: FloatArray, pv_kw: FloatArray
                 ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Step every device by its rule in interval ``t``: the households'
        net energy (kWh, + from outside), the battery's charge and discharge
        (kW). The devices' own energy (EV, heat pump, appliance) is in
        :attr:`last_flex_kwh` after the call."""
        flex_kwh = np.zeros_like(load_kw)
        if self.ev is not None:
            ev = self.ev
            missing = np.maximum(ev.required_kwh - ev.soc_kwh, 0.0) / ev.efficiency
            e = np.where(ev.plugged[t], np.minimum(missing, ev.step_kwh), 0.0)
            ev.advance(t, e, check=False)
            flex_kwh += e
        if self.heat_pump is not None:
            hp = self.heat_pump
            e = _thermostat_kwh(hp, self.outdoor_c[t])
            hp.advance(self.outdoor_c[t], e, check=False)
            flex_kwh += e
        if self.shiftable is not None:
            e = self.shiftable.asap_kwh(t)  # start when ready: any price
            self.shiftable.advance(t, e, check=False)
            flex_kwh += e
        self.last_flex_kwh = flex_kwh
        step = self.batteries.self_consumption(self.soc_kwh, load_kw - pv_kw
                                               + flex_kwh / self.dt_h, self.dt_h, check=False)
        self.soc_kwh = step.soc_kwh
        net = (load_kw - pv_kw + step.charge_kw - step.discharge_kw) * self.dt_h + flex_kwh
        return net, step.charge_kw, step.discharge_kw

    # ------------------------------------------------------------ bidding
    def segments(self, t: int, load_kw: FloatArray, pv_kw: FloatArray,
                 forecast_per_kwh: FloatArray, price_floor: float, price_cap: float,
                 load_price: FloatArray, pv_price: FloatArray, *,
                 aside: tuple[FloatArray, float, float] | None = None
                 ) -> tuple[Segments, npt.NDArray[np.int8], FloatArray | None]:
        """Interval ``t``'s segments of every household and which fleet owns
        each (codes of :data:`FLEETS`): the load at ``load_price`` and the PV
        at ``pv_price`` (the strategy's limits, per household), the battery
        from its arbitrage limits over the forecast, EVs, heat pumps and
        appliances by their bids. Every fleet states its bids as parts over
        all households, made segments at once
        (:meth:`~transactive.agents.flexibility.Segments.of_parts`). With
        ``aside`` (another forecast, its floor and cap: an aggregator's,
        :mod:`transactive.sim.vpp`), also each segment's limit bid from that
        (no forecast changes what a device bids for, only its price: the
        fleets' states are read once); None without."""
        pricings = [(forecast_per_kwh, price_floor, price_cap)]
        if aside is not None:
            pricings.append(aside)
        own = self._own_parts(load_kw, pv_kw, load_price, pv_price)
        fleets: list[list[tuple[str, list[Part]]]] = [list(own) for _ in pricings]
        # what each fleet bids for, then its prices from each forecast
        b, ev, hp, app = self.batteries, self.ev, self.heat_pump, self.shiftable
        charge, discharge = b.parts(self.soc_kwh, self.dt_h, buy_below=0.0, sell_above=0.0)
        cars = None if ev is None else ev.wants(t)
        heat = (None if hp is None or self.outdoor_c[t] >= hp.heating_limit_c else
                hp.wants(self.outdoor_c[t]))
        due = None if app is None else app.due(t)
        for out, (f, floor, cap) in zip(fleets, pricings, strict=True):
            buy, sell = arbitrage_prices(f, b.efficiency_charge, b.efficiency_discharge)
            out.append(("battery", [charge._replace(price_per_kwh=np.clip(buy, floor, cap)),
                                    discharge._replace(price_per_kwh=np.clip(sell, floor, cap))]))
            if ev is not None and cars is not None:
                out.append(("ev", ev.priced(cars, f, floor, cap)))
            if hp is not None and heat is not None:
                out.append(("heat_pump", hp.priced(
                    *heat, price_mean=float(f.mean()), price_std=float(f.std()),
                    price_floor=floor, price_cap=cap)))
            if app is not None and due is not None:
                out.append(("shiftable", app.priced(t, due, f, floor, cap)))
        seg, owner, part = _owned(fleets[0])
        if aside is None:
            return seg, owner, None
        return seg, owner, part_prices([p for _, parts in fleets[1] for p in parts],
                                       part * self.soc_kwh.size + seg.household)

    def planned_segments(self, t: int, load_kw: FloatArray, pv_kw: FloatArray, plan: Plan,
                         forecast_per_kwh: FloatArray, price_floor: float, price_cap: float,
                         load_price: FloatArray, pv_price: FloatArray
                         ) -> tuple[Segments, npt.NDArray[np.int8]]:
        """:meth:`segments` under model-predictive control: the load and PV as
        there, the battery, EV and heat pump as ``plan``'s first interval
        (must-run, :meth:`~transactive.agents.mpc.Plan.segments`), appliances
        by their own bids (the plan leaves them out)."""
        parts = [_owned(self._own_parts(load_kw, pv_kw, load_price, pv_price))[:2]]
        seg, device = plan.segments(price_floor, price_cap)
        for k, name in enumerate(MPC_DEVICES):
            rows = np.flatnonzero(device == k)
            parts.append((seg.take(rows), np.full(rows.size, _CODE[name], np.int8)))
        if self.shiftable is not None:
            parts.append(_owned([("shiftable", self.shiftable.parts(
                t, forecast_per_kwh, price_floor, price_cap))])[:2])
        return Segments.concat([s for s, _ in parts]), np.concatenate([o for _, o in parts])

    def controller(self, load_kw: npt.ArrayLike, pv_kw: npt.ArrayLike,
                   prices_per_kwh: FloatArray, feed_in_per_kwh: FloatArray) -> MPCController:
        """Model-predictive control of these fleets over :attr:`horizon`
        intervals: the plans see the tariff (``prices_per_kwh``, feed-in) and
        the households' own load, PV and outdoor temperature of the run
        (perfect foresight of what the devices cannot change)."""
        base = (np.asarray(load_kw, dtype=np.float64) - np.asarray(pv_kw, dtype=np.float64))
        return MPCController(prices_per_kwh=prices_per_kwh, feed_in_per_kwh=feed_in_per_kwh,
                             base_net_kwh=base * self.dt_h, dt_h=self.dt_h,
                             horizon=self.horizon, battery=self.batteries, ev=self.ev,
                             heat_pump=self.heat_pump, outdoor_c=self.outdoor_c)

    def _own_parts(self, load_kw: FloatArray, pv_kw: FloatArray, load_price: FloatArray,
                   pv_price: FloatArray) -> list[tuple[str, list[Part]]]:
        """The load (must run) and the PV of every household, at the strategy's limits."""
        load, pv = load_kw * self.dt_h, pv_kw * self.dt_h
        return [("load", [Part(load > 1e-9, BUY, load, load_price, True)]),
                ("pv", [Part(pv > 1e-9, SELL, pv, pv_price)])]

    def dispatch(self, t: int, segments: Segments, owner: npt.NDArray[np.int8],
                 served_kwh: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Advance every fleet by what its segments got in interval ``t``;
        the battery's charge and discharge (kW)."""
        n = self.soc_kwh.size
        signed = np.where(segments.side == BUY, served_kwh, -served_kwh)
        # per fleet and household, at once (each sum in the segments' order)
        energy = np.bincount(owner.astype(np.int64) * n + segments.household, signed,
                             len(FLEETS) * n).reshape(len(FLEETS), n)
        battery, ev, hp, app = (energy[_CODE[name]] for name in ("battery", "ev", "heat_pump",
                                                                  "shiftable"))
        self.soc_kwh = self.batteries.store(self.soc_kwh, battery, self.dt_h, check=False)
        self.last_flex_kwh = ev + hp + app
        if self.ev is not None:
            self.ev.advance(t, ev, check=False)
        if self.heat_pump is not None:
            self.heat_pump.advance(self.outdoor_c[t], np.maximum(hp, 0.0), check=False)
        if self.shiftable is not None:
            self.shiftable.advance(t, app, check=False)
        return np.maximum(battery, 0.0) / self.dt_h, np.maximum(-battery, 0.0) / self.dt_h

    def forecast(self, retail: FloatArray, t: int, periods_per_day: int) -> FloatArray:
        """The price forecast a device bids from: the next ``horizon``
        intervals of ``retail`` (the tariff is known ahead); beyond the end
        of the run, the same hours a day earlier (so the devices do not see
        the run end as the end of time)."""
        ahead = retail[t:t + self.horizon]
        if ahead.size == self.horizon or retail.size < periods_per_day:
            return ahead
        beyond = t + np.arange(ahead.size, self.horizon)
        back = beyond - periods_per_day * (1 + (beyond - retail.size) // periods_per_day)
        return np.r_[ahead, retail[back]]


def _owned(fleets: list[tuple[str, list[Part]]]
           ) -> tuple[Segments, npt.NDArray[np.int8], npt.NDArray[np.int64]]:
    """The named fleets' parts as one set of segments, in order, the fleet
    (code of :data:`FLEETS`) owning each and the part (index over all the
    fleets' parts) it comes from."""
    code = np.array([_CODE[name] for name, parts in fleets for _ in parts], np.int8)
    seg, part = Segments.of_parts([p for _, parts in fleets for p in parts], check=False)
    return seg, code[part], part


def _thermostat_kwh(hp: HeatPumpFleet, outdoor_c: float) -> FloatArray:
    """A plain thermostat's energy this interval: what brings the house to its
    set point (within the heat pump's power), nothing above its heating limit."""
    if outdoor_c >= hp.heating_limit_c:
        return np.zeros_like(hp.indoor_c)
    return hp.power_to_reach_kw(outdoor_c, hp.setpoint_c) * hp.dt_h
