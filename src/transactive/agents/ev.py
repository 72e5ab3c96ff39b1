"""Electric vehicles as a fleet over households: trips, plug-in times, laxity bids.

Each EV owner leaves in the morning and comes home in the evening; while
plugged in, the car charges at up to ``charger_kw`` (at its efficiency) and,
with vehicle-to-grid (``v2g``), may discharge as well. By each departure it
must hold ``required_kwh``; the trip then uses ``trip_kwh`` before it plugs
in again. Seeded defaults (:meth:`EVFleet.draw`): arrival around 18:00 and
departure around 07:30 local time (standard deviations 1.5 h and 0.75 h,
clipped to the evening and the morning), a daily distance drawn around
40 km at 0.18 kWh/km, cars of 40-75 kWh with 7.4 or 11 kW chargers
(household and workplace patterns of the German mobility survey MiD 2017
and ADAC's consumption tests, rounded).

The bid (:meth:`EVFleet.segments`): the *laxity* of a plugged-in car is the
time it can still wait, ``hours_to_departure - energy_missing / (charger_kw *
efficiency)``, and its *urgency* ``u`` the share of the hours to departure it
needs to charge. It bids for the energy it still misses in the manner of the
Olympic Peninsula thermostats, ``mean + k * std * (2 u - 1)`` over the price
forecast up to its departure (``k`` = ``urgency_k``): below the mean while it
has time, above it when it has little, so that cars with different needs
and departures come in at different prices and times rather than all at the
first cheap interval; once it cannot wait another interval it bids the price
cap (any price). Energy beyond what it
needs, up to its capacity, it bids at the forecast's minimum (only the
cheapest hours). With V2G, stored energy above what it needs is offered at
the forecast's maximum (only the dearest hours).

Examples
--------
>>> import pandas as pd
>>> from transactive.timeline import Timeline
>>> tl = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96 * 2)
>>> fleet = EVFleet.draw(tl, np.array([True, False]), np.random.default_rng(1))
>>> bool(fleet.plugged[:, 1].any()), bool(fleet.plugged[:, 0].any())   # no car, a car
(False, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from transactive.agents.flexibility import Part, Segments, window_moments, window_quantile
from transactive.errors import InputError
from transactive.orders import BUY, SELL
from transactive.timeline import Timeline

__all__ = ["EVFleet", "EVWants"]

FloatArray = npt.NDArray[np.float64]


class EVWants(NamedTuple):
    """What the cars bid for in an interval, before any price
    (:meth:`EVFleet.wants`), per household."""

    need: FloatArray
    """Energy the car needs by its departure, this interval's share (kWh at the plug)."""
    extra: FloatArray
    """Energy beyond it, up to its capacity (kWh at the plug)."""
    spare: FloatArray | None
    """Stored energy beyond the need V2G offers (None: no car offers any)."""
    v2g: npt.NDArray[np.bool_]
    """Plugged in with V2G."""
    must: npt.NDArray[np.bool_]
    """Out of laxity: must charge now."""
    ahead: npt.NDArray[np.int64]
    """Intervals to its departure (at least 1)."""
    urgency: FloatArray
    """The share of the hours to departure it needs to charge, in [0, 1]."""


@dataclass(eq=False)
class EVFleet:
    """EVs of ``n`` households (a household without one has ``capacity_kwh``
    0) over a timeline of ``T`` intervals of ``dt_h`` hours.

    ``plugged`` (T, n): plugged in during the interval; ``departure`` (T, n):
    the interval of the next departure (``T`` if none in the timeline);
    ``trip_kwh`` (T, n): energy used by the trip that ends when the car
    plugs in at that interval (0 elsewhere). ``soc_kwh`` is the state.
    """

    capacity_kwh: FloatArray
    charger_kw: FloatArray
    efficiency: FloatArray
    required_kwh: FloatArray
    v2g: npt.NDArray[np.bool_]
    plugged: npt.NDArray[np.bool_]
    departure: npt.NDArray[np.int64]
    trip_kwh: FloatArray
    dt_h: float
    urgency_k: float = 1.0
    """``k`` of the bid: standard deviations of the forecast between a car
    with all the time it needs and one that must charge throughout."""
    bias: FloatArray | None = None
    """Per car, a lasting offset of its bid in standard deviations of the
    forecast (owners differ; drawn in :meth:`draw`, +-0.5): cars with the
    same urgency do not all answer the same price dip."""
    soc_kwh: FloatArray = field(init=False)
    shortfall_kwh: FloatArray = field(init=False)
    """Per household: energy missing at departures so far (summed)."""
    unmet_trip_kwh: FloatArray = field(init=False)
    """Per household: energy trips needed beyond what the car held when it
    left (charged elsewhere: the car comes back empty), summed."""
    soc_at_departure_kwh: list[tuple[int, npt.NDArray[np.int64], FloatArray]] = field(
        init=False)
    """Each departure so far: the interval the cars left at, which cars
    (households) and what they held (kWh)."""
    step_kwh: FloatArray = field(init=False)
    """Per car, the most its charger draws in an interval (kWh at the plug)."""
    _rate_kw: FloatArray = field(init=False, repr=False)
    """Per car, the power that reaches its battery charging at full power
    (inf without a charger: it needs no time)."""
    _events: npt.NDArray[np.bool_] = field(init=False, repr=False)
    """Per interval: does a car leave at its end, does one come back from a
    trip at its start (most intervals: neither)."""

    def __post_init__(self) -> None:
        n = self.capacity_kwh.shape[0]
        for name in ("charger_kw", "efficiency", "required_kwh"):
            arr = getattr(self, name)
            if arr.shape != (n,) or not np.isfinite(arr).all():
                raise InputError(f"ev.{name}", f"must be {n} finite values")
        if (self.capacity_kwh < 0).any() or (self.charger_kw < 0).any():
            raise InputError("ev.capacity_kwh", "capacity and charger power must be >= 0")
        if ((self.efficiency <= 0) | (self.efficiency > 1)).any():
            raise InputError("ev.efficiency", "must be in (0, 1]")
        if ((self.required_kwh < 0) | (self.required_kwh > self.capacity_kwh)).any():
            raise InputError("ev.required_kwh", "must be within [0, capacity_kwh]")
        if not (np.isfinite(self.dt_h) and self.dt_h > 0):
            raise InputError("dt_h", f"must be > 0, got {self.dt_h!r}")
        self.soc_kwh = self.required_kwh.copy()  # each car starts ready to leave
        self.shortfall_kwh = np.zeros(n)
        self.unmet_trip_kwh = np.zeros(n)
        self.soc_at_departure_kwh = []
        self.step_kwh = self.charger_kw * self.dt_h
        rate = self.charger_kw * self.efficiency
        self._rate_kw = np.where(rate > 0, rate, np.inf)
        t = np.arange(self.plugged.shape[0])[:, None]
        self._events = np.stack([(self.plugged & (self.departure == t + 1)).any(axis=1),
                                 (self.trip_kwh != 0).any(axis=1)])

    @classmethod
    def draw(cls, timeline: Timeline, has_ev: npt.NDArray[np.bool_], rng: np.random.Generator,
             *, arrival_hour: float = 18.0, departure_hour: float = 7.5,
             km_per_day: float = 40.0, kwh_per_km: float = 0.18,
             capacity_kwh: tuple[float, float] = (40.0, 75.0),
             required_frac: float = 0.8, v2g_share: float = 0.0) -> EVFleet:
        """Draw cars and a trip per day for the households in ``has_ev``
        (seeded; see the module docstring for the defaults)."""
        mask = np.asarray(has_ev, dtype=bool)
        n, T, ppd = mask.size, timeline.periods, timeline.periods_per_day
        if not 0 < required_frac <= 1:
            raise InputError("ev.required_frac", f"must be in (0, 1], got {required_frac!r}")
        if not (0 <= arrival_hour < 24 and 0 <= departure_hour < arrival_hour):
            raise InputError("ev.departure_hour", "need 0 <= departure_hour < arrival_hour < 24")
        lo, hi = capacity_kwh
        if not 0 < lo <= hi:
            raise InputError("ev.capacity_kwh", f"must be 0 < low <= high, got {capacity_kwh!r}")
        cap = np.where(mask, rng.uniform(lo, hi, n), 0.0)
        charger = np.where(mask, rng.choice([7.4, 11.0], n), 0.0)
        v2g = mask & (rng.random(n) < v2g_share)
        days = -(-T // ppd) + 1
        step_h = 24.0 / ppd
        arrive = np.clip(rng.normal(arrival_hour, 1.5, (days, n)), 15.0, 23.5)
        leave = np.clip(rng.normal(departure_hour, 0.75, (days, n)), 5.0, 10.0)
        distance = rng.gamma(4.0, km_per_day / 4.0, (days, n))
        first = round(timeline.start_hour / step_h)  # local clock
        day_start = np.arange(days)[:, None] * ppd - first
        t_arrive = day_start + np.round(arrive / step_h).astype(np.int64)
        t_leave = day_start + np.round(leave / step_h).astype(np.int64)
        # each day's trip is away over [t_leave, t_arrive): the intervals away
        # by a running count of leaves minus arrivals, the next departure by a
        # running count of leaves (days do not overlap: morning, then evening)
        cols = np.broadcast_to(np.arange(n), (days, n))
        edges = np.zeros((T + 1, n), dtype=np.int32)
        np.add.at(edges, (np.clip(t_leave, 0, T), cols), 1)
        np.add.at(edges, (np.clip(t_arrive, 0, T), cols), -1)
        plugged = _running_sum(edges[:T]) == 0
        plugged &= mask
        back = (t_arrive >= 0) & (t_arrive < T) & mask
        trip = np.zeros((T, n))
        trip[t_arrive[back], cols[back]] = np.minimum(distance * kwh_per_km,
                                                      required_frac * cap)[back]
        edges[:] = 0
        inside = (t_leave >= 0) & (t_leave < T)
        np.add.at(edges, (t_leave[inside], cols[inside]), 1)
        edges[0] += (t_leave < 0).sum(axis=0, dtype=np.int32)  # leaves before the run
        leaves = np.vstack([t_leave, np.full((1, n), T)])  # after the last one: T
        leaves[:, ~mask] = T  # no car: never
        departure = np.take_along_axis(leaves, _running_sum(edges[:T]), axis=0)
        return cls(capacity_kwh=cap, charger_kw=charger, efficiency=np.where(mask, 0.92, 1.0),
                   required_kwh=required_frac * cap, v2g=v2g, plugged=plugged,
                   departure=departure, trip_kwh=trip,
                   dt_h=timeline.dt_h, bias=rng.uniform(-0.5, 0.5, n))

    def laxity_h(self, t: int) -> FloatArray:
        """Hours each plugged-in car can still wait before it must charge at
        full power to hold ``required_kwh`` at departure (inf: unplugged or
        no car)."""
        return self._laxity_h(self.plugged[t], self.departure[t] - t,
                              np.maximum(self.required_kwh - self.soc_kwh, 0.0))

    def _laxity_h(self, plugged: npt.NDArray[np.bool_], ahead: npt.NDArray[np.int64],
                  missing_kwh: FloatArray) -> FloatArray:
        """:meth:`laxity_h` from the intervals to each departure and the
        energy each battery misses."""
        return np.where(plugged, ahead * self.dt_h - missing_kwh / self._rate_kw, np.inf)

    def segments(self, t: int, forecast_per_kwh: npt.ArrayLike, price_floor: float,
                 price_cap: float) -> Segments:
        """Interval ``t``'s bids from the price forecast of the intervals from
        ``t`` on (see the module docstring), within the floor and cap."""
        return Segments.of_parts(self.parts(t, forecast_per_kwh, price_floor, price_cap))[0]

    def parts(self, t: int, forecast_per_kwh: npt.ArrayLike, price_floor: float,
              price_cap: float) -> list[Part]:
        """:meth:`segments` as parts (the energy the cars need, the energy
        beyond it, V2G's spare energy; see
        :meth:`~transactive.agents.flexibility.Segments.of_parts`)."""
        return self.priced(self.wants(t), forecast_per_kwh, price_floor, price_cap)

    def wants(self, t: int) -> EVWants:
        """What the cars bid for in interval ``t``, before any price (the
        quantities and urgencies of :meth:`parts`, which no forecast changes)."""
        plugged = self.plugged[t]
        full_kwh = self.step_kwh  # at the plug
        short = np.maximum(self.required_kwh - self.soc_kwh, 0.0)  # in the battery
        missing = short / self.efficiency
        room = np.maximum(self.capacity_kwh - self.soc_kwh, 0.0) / self.efficiency
        need = np.where(plugged, np.minimum(missing, full_kwh), 0.0)
        extra = np.where(plugged, np.minimum(room, full_kwh) - need, 0.0)
        ahead = self.departure[t] - t
        lax = self._laxity_h(plugged, ahead, short)
        ahead_1 = np.maximum(ahead, 1)
        window_h = ahead_1 * self.dt_h
        need_h = np.where(plugged, window_h - lax, 0.0)
        # in [0, 1] (as a clip, but for the sign of a zero, which 2 u - 1 drops)
        urgency = np.minimum(np.maximum(need_h / window_h, 0.0), 1.0)
        v2g = plugged & self.v2g
        spare = (np.where(v2g, np.minimum(np.maximum(self.soc_kwh - self.required_kwh, 0.0)
                                          * self.efficiency, full_kwh), 0.0)
                 if v2g.any() else None)  # None: no car offers anything
        return EVWants(need, extra, spare, v2g, lax < self.dt_h, ahead_1, urgency)

    def priced(self, wants: EVWants, forecast_per_kwh: npt.ArrayLike, price_floor: float,
               price_cap: float) -> list[Part]:
        """The parts of ``wants`` (:meth:`wants`) priced from the forecast,
        within the floor and cap."""
        w = wants
        f = np.clip(np.asarray(forecast_per_kwh, dtype=np.float64), price_floor, price_cap)
        to_go = np.minimum(w.ahead, f.size)
        mean, std = window_moments(f, to_go)
        bias = 0.0 if self.bias is None else self.bias
        need_price = np.clip(mean + self.urgency_k * std * (2 * w.urgency - 1 + bias),
                             price_floor, price_cap)
        spare_part = (Part(w.v2g, SELL, 0.0, 0.0) if w.spare is None else
                      Part(w.spare > 1e-9, SELL, w.spare, window_quantile(f, to_go, 1.0)))
        return [Part(w.need > 1e-9, BUY, w.need, np.where(w.must, price_cap, need_price),
                     w.must),
                Part(w.extra > 1e-9, BUY, w.extra, window_quantile(f, to_go, 0.0)), spare_part]

    def advance(self, t: int, energy_kwh: npt.ArrayLike, *, check: bool = True) -> None:
        """The cars drew ``energy_kwh`` at the plug in interval ``t`` (negative:
        fed back, V2G); store it, record departures, take the trips.
        ``check=False``: trusted (the fleet's own bids served or its rule),
        not checked again."""
        e = np.asarray(energy_kwh, dtype=np.float64)
        if check:
            if e.shape != self.soc_kwh.shape:
                raise InputError("energy_kwh", f"must have shape {self.soc_kwh.shape}")
            if ((e != 0) & ~self.plugged[t]).any():
                raise InputError("energy_kwh", "an unplugged car cannot charge or discharge",
                                 row=int(np.flatnonzero((e != 0) & ~self.plugged[t])[0]))
            if (e > self.charger_kw * self.dt_h * (1 + 1e-9) + 1e-12).any():
                raise InputError("energy_kwh", "exceeds the charger's power")
        stored = np.where(e > 0, e * self.efficiency, e / self.efficiency)
        self.soc_kwh = np.clip(self.soc_kwh + stored, 0.0, self.capacity_kwh)
        if self._events[0, t]:  # cars leave
            leaving = self.plugged[t] & (self.departure[t] == t + 1)
            short = np.where(leaving, np.maximum(self.required_kwh - self.soc_kwh, 0.0), 0.0)
            self.shortfall_kwh += short
            cars = np.flatnonzero(leaving)
            self.soc_at_departure_kwh.append((t + 1, cars, self.soc_kwh[cars].copy()))
        if t + 1 < self.trip_kwh.shape[0]:
            if self._events[1, t + 1]:
                after = self.soc_kwh - self.trip_kwh[t + 1]
                self.unmet_trip_kwh += np.maximum(-after, 0.0)
            else:  # no trip ends: nothing unmet (the state as after a trip of 0 kWh)
                after = self.soc_kwh
            self.soc_kwh = np.maximum(after, 0.0)


def _running_sum(steps: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Running sums of ``steps`` (T x n) along time, a row at a time (numpy's
    cumsum along the first axis walks a C-ordered array with a stride,
    several times slower)."""
    out = np.empty_like(steps)
    if len(steps):
        out[0] = steps[0]
    for k in range(1, len(steps)):
        np.add(out[k - 1], steps[k], out=out[k])
    return out
