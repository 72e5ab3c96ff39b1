"""Model-predictive control of the households' devices: one LP over the horizon.

:func:`plan` minimises every household's energy cost over the next ``H``
intervals, importing at the price and exporting at the feed-in price,
subject to its devices' dynamics and limits. All households go into one
sparse LP, built block by block over all households at once
(:mod:`transactive.agents._mpc_lp`). Nothing couples two households, so its
matrix is block-diagonal over them (up to an ordering of rows and columns);
HiGHS solves its diagonal blocks, ``households_per_lp`` households each, by
the dual simplex from a crash basis (the devices idle), which gives the
optimum of the one LP several times faster than solving it whole.
:class:`MPCController` re-plans every interval from the fleets' current
states and carries out the first interval (receding horizon). With perfect
foresight and a horizon to the end of the run, its cost equals the optimum of
the whole run solved at once: the rest of an optimal plan is optimal for the
rest of the run (Bellman), and every re-plan starts where the last plan said.

Formulation, per household with a device and interval ``k`` (energies in kWh
per interval at the devices' terminals, + = drawn; ``dt`` in hours):

- battery: charge ``c_k``, discharge ``d_k`` in ``[0, power_kw dt]``; state
  ``s_k = s_{k-1} + eta_c c_k - d_k / eta_d`` in ``[soc_min, capacity]``;
- EV: charge ``e_k`` in ``[0, charger_kw dt]`` while plugged in (else 0), and
  for a car with V2G a discharge ``v_k`` likewise; state ``s_k = s_{k-1} +
  eff e_k - v_k / eff - trip_{k+1}`` in ``[0, capacity]`` (a trip is taken
  when the car arrives, as :meth:`EVFleet.advance` does); while plugged in,
  at least what still reaches ``required_kwh`` by the next departure at full
  power (``required_kwh`` itself at the last interval before it). Inside the
  horizon that floor only restates the departure; for a departure beyond it,
  it keeps a short horizon from spending the time the car needs;
- heat pump: electric energy ``p_k`` in ``[0, p_max_kw dt]`` (0 at or above
  the heating limit); indoor temperature ``T_k = a T_{k-1} + (1 - a) (T_out +
  R (cop p_k / dt + gains))``, ``a = exp(-dt / (R C))``: the fleet's own exact
  1R1C step (:class:`HeatPumpFleet`), the solution of ``C dT/dt = (T_out -
  T) / R + q`` with the heat held over the interval, is affine in the heat,
  and the heat ``q = cop p`` is linear in the power because the COP depends
  only on the outdoor temperature, which the forecast gives. So the LP is
  exact, not a linearisation. The comfort band holds ``T_k + u_k - w_k`` in
  ``setpoint +- band`` with slacks ``u, w >= 0`` at ``comfort_price_per_kh``
  per kelvin-hour, so the LP stays feasible where a pump cannot hold the band;
- household: net ``n_k = base_k + c_k - d_k + e_k - v_k + p_k``, import
  ``i_k >= max(n_k, 0)`` (one row, ``i_k - devices >= base_k``), cost
  ``price_k i_k - feed_k (i_k - n_k)``. Minimised: costs plus comfort
  penalties. A price below the feed-in is refused (importing to export
  would pay without bound).

Segments (:meth:`Plan.segments`): the plan's first-interval energy of each
device, as must-run buys at the price cap and sells at the price floor. The
plan is one schedule over time: a device served only in part this interval
starts the next from a state the plan did not assume; the LP has already
weighed the household's alternatives (import at the price, export at the
feed-in) and a market between them only makes the planned energy cheaper;
and the marginal value of the first interval (:attr:`Plan.marginal_value_per_kwh`)
is one point of a step curve, at which a bid's acceptance is a tie. The
devices then answer prices through the forecast they are planned on.

Limits: energy stored at the horizon's end is worth nothing to a plan (no
terminal value), so a horizon shorter than the price cycle empties batteries
early; plan a day or more. Where energy is worth less than nothing (negative
prices), the LP may charge and discharge at once to burn it in the losses;
the fleets take the net, so there the realised path leaves the plan.

Examples
--------
>>> from transactive.agents.devices import BatteryFleet
>>> battery = BatteryFleet(capacity_kwh=[10.0], power_kw=[5.0], efficiency_charge=[0.9],
...                        efficiency_discharge=[0.9], soc_min_frac=[0.0])
>>> p = plan(prices_per_kwh=[0.10, 0.30], feed_in_per_kwh=[0.05, 0.05],
...          base_net_kwh=[[0.0], [2.0]], dt_h=1.0, battery=battery, battery_soc_kwh=[0.0])
>>> p.battery_kwh[:, 0].round(4).tolist(), round(p.cost, 4)   # 2 / 0.81 in, 2 out
([2.4691, -2.0], 0.2469)
>>> seg, owner = p.segments(price_floor=0.0, price_cap=0.30)
>>> seg.quantity_kwh.round(4).tolist(), seg.price_per_kwh.tolist(), [DEVICES[o] for o in owner]
([2.4691], [0.3], ['battery'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transactive.agents._mpc_lp import Blocks, Ring, Window
from transactive.agents.devices import BatteryFleet
from transactive.agents.ev import EVFleet
from transactive.agents.flexibility import Segments
from transactive.agents.heatpump import HeatPumpFleet
from transactive.errors import InputError
from transactive.orders import BUY, SELL

__all__ = ["COMFORT_PRICE_PER_KH", "DEVICES", "MPCController", "Plan", "plan"]

FloatArray = npt.NDArray[np.float64]

#: The devices a plan schedules, in the order of :meth:`Plan.segments`' owner codes.
DEVICES = ("battery", "ev", "heat_pump")
#: Households per diagonal block HiGHS solves (measured fastest; benchmarks/bench_mpc.py).
HOUSEHOLDS_PER_LP = 16
#: Default price of a kelvin-hour outside the comfort band: far above what
#: heating to avoid one costs (about ``price * C / cop`` per kelvin), so the
#: band gives way only where the pump cannot hold it.
COMFORT_PRICE_PER_KH = 100.0


@dataclass(frozen=True, eq=False)
class Plan:
    """Every household's devices over ``H`` intervals from ``t``: arrays
    ``(H, n)``, energies in kWh per interval at the devices' terminals (+ =
    drawn; 0 where a household lacks the device), states at the end of each
    interval (``indoor_c`` NaN without a heat pump). The cost is at the
    prices and feed-in of the plan. :meth:`MPCController.run` returns what
    happened in the same form."""

    t: int
    dt_h: float
    prices_per_kwh: FloatArray
    feed_in_per_kwh: FloatArray
    base_net_kwh: FloatArray
    battery_kwh: FloatArray
    battery_soc_kwh: FloatArray
    ev_kwh: FloatArray
    ev_soc_kwh: FloatArray
    heat_pump_kwh: FloatArray
    indoor_c: FloatArray
    comfort_kh: FloatArray
    """Kelvin-hours outside the comfort band at each interval's end."""
    marginal_value_per_kwh: FloatArray
    """d cost / d energy drawn in each interval, per household (LP duals)."""
    comfort_price_per_kh: float

    @property
    def net_kwh(self) -> FloatArray:
        """Each household's energy from outside (+) or to it (-)."""
        return self.base_net_kwh + self.battery_kwh + self.ev_kwh + self.heat_pump_kwh

    @property
    def cost_per_household(self) -> FloatArray:
        """Imports at the price less exports at the feed-in, summed over the plan."""
        net = self.net_kwh
        return (np.maximum(net, 0.0) * self.prices_per_kwh[:, None]
                - np.maximum(-net, 0.0) * self.feed_in_per_kwh[:, None]).sum(axis=0)

    @property
    def cost(self) -> float:
        return float(self.cost_per_household.sum())

    @property
    def objective(self) -> float:
        """The LP's objective: the cost plus the comfort penalty."""
        return self.cost + self.comfort_price_per_kh * float(np.nansum(self.comfort_kh))

    def segments(self, price_floor: float, price_cap: float
                 ) -> tuple[Segments, npt.NDArray[np.int8]]:
        """The first interval's energy of every device as must-run segments
        (buys at ``price_cap``, sells at ``price_floor``; see the module
        docstring) and the device of each (codes of :data:`DEVICES`)."""
        energy = np.stack([self.battery_kwh[0], self.ev_kwh[0], self.heat_pump_kwh[0]])
        device, who = np.nonzero(np.abs(energy) > 1e-9)
        e = energy[device, who]
        return (Segments(household=who, side=np.where(e > 0, BUY, SELL), quantity_kwh=np.abs(e),
                         price_per_kwh=np.where(e > 0, price_cap, price_floor),
                         must_run=np.ones(e.size, bool)), device.astype(np.int8))


def plan(*, prices_per_kwh: npt.ArrayLike, feed_in_per_kwh: npt.ArrayLike,
         base_net_kwh: npt.ArrayLike, dt_h: float, t: int = 0,
         battery: BatteryFleet | None = None, battery_soc_kwh: npt.ArrayLike | None = None,
         ev: EVFleet | None = None, heat_pump: HeatPumpFleet | None = None,
         outdoor_c: npt.ArrayLike | None = None,
         comfort_price_per_kh: float = COMFORT_PRICE_PER_KH,
         households_per_lp: int | None = HOUSEHOLDS_PER_LP) -> Plan:
    """The cheapest schedule of every household's devices over the ``H``
    intervals ``t .. t + H - 1``, from their states now (one LP, HiGHS).

    Parameters
    ----------
    prices_per_kwh, feed_in_per_kwh : array (H,)
        Import price and feed-in price of each interval (price >= feed-in).
    base_net_kwh : array (H, n)
        Each household's net energy without these devices (load - PV).
    dt_h : float
        Interval length in hours (the EV and heat pump fleets' own).
    t : int
        The first interval's index in the EV fleet's timeline.
    battery, battery_soc_kwh : BatteryFleet and its state of charge (n,), optional
    ev, heat_pump : EVFleet, HeatPumpFleet, optional
        Fleets over the same households, in their current states (read, not changed).
    outdoor_c : array (H,) or (H, n)
        Outdoor temperature; needed with heat pumps.
    comfort_price_per_kh : float
        Penalty per kelvin-hour outside the comfort band.
    households_per_lp : int or None
        HiGHS solves the LP's diagonal blocks of this many households with a
        device each (None: the whole LP at once); the same optimum.

    Raises
    ------
    InputError
        Inconsistent shapes, non-finite values, a price below the feed-in, a
        state outside its device's limits, an EV that cannot hold its
        required energy at a departure (or make a trip) even charging at
        full power. :class:`~transactive.errors.SolverError` if HiGHS fails.
    """
    w = _window(t, dt_h, prices_per_kwh, feed_in_per_kwh, base_net_kwh, outdoor_c, battery,
                battery_soc_kwh, ev, heat_pump, comfort_price_per_kh)
    _group(households_per_lp)
    ring = Ring(w.base_kwh.shape[1], w.length + 1, dt_h, battery, ev, heat_pump, w)
    return _plan(ring, w, *Blocks(ring, w, households_per_lp).solve(w))


class MPCController:
    """Receding-horizon control: each interval, :meth:`plan` the next
    ``horizon`` intervals (fewer at the end of the series) from the fleets'
    current states; :meth:`run` also carries out each plan's first interval.

    The series (``prices_per_kwh, feed_in_per_kwh`` (T,), ``base_net_kwh``
    (T, n), ``outdoor_c`` (T,) or (T, n)) are the forecast the plans see;
    the run's own values make it perfect foresight. ``horizon=None``: to the
    end of the series. With ``warm_start`` the LP stays in HiGHS on a ring
    of ``horizon + 1`` slots (:mod:`transactive.agents._mpc_lp`): each
    interval changes only costs, bounds and one slot's COPs, and HiGHS
    re-solves from the last basis; otherwise every plan is a fresh
    :func:`plan`.
    """

    def __init__(self, *, prices_per_kwh: npt.ArrayLike, feed_in_per_kwh: npt.ArrayLike,
                 base_net_kwh: npt.ArrayLike, dt_h: float, horizon: int | None = None,
                 battery: BatteryFleet | None = None, ev: EVFleet | None = None,
                 heat_pump: HeatPumpFleet | None = None, outdoor_c: npt.ArrayLike | None = None,
                 comfort_price_per_kh: float = COMFORT_PRICE_PER_KH,
                 warm_start: bool = True,
                 households_per_lp: int | None = HOUSEHOLDS_PER_LP) -> None:
        self._series = _window(0, dt_h, prices_per_kwh, feed_in_per_kwh, base_net_kwh, outdoor_c,
                              None, None, None, heat_pump, comfort_price_per_kh)
        if battery is not None and len(battery) != self._series.base_kwh.shape[1]:
            raise InputError("battery", f"has {len(battery)} households, base_net_kwh "
                             f"{self._series.base_kwh.shape[1]}")
        size = self._series.length
        if horizon is not None and not (isinstance(horizon, int) and horizon >= 1):
            raise InputError("horizon", f"must be an int >= 1 or None, got {horizon!r}")
        if ev is not None and ev.plugged.shape[0] < size:
            raise InputError("ev", f"its timeline ({ev.plugged.shape[0]} intervals) is shorter "
                             f"than the series ({size})")
        self.horizon = size if horizon is None else min(horizon, size)
        _group(households_per_lp)
        self.dt_h, self.warm_start, self.households_per_lp = dt_h, warm_start, households_per_lp
        self.battery, self.ev, self.heat_pump = battery, ev, heat_pump
        self._kept: Blocks | None = None

    def plan(self, t: int, battery_soc_kwh: npt.ArrayLike | None = None) -> Plan:
        """The plan of intervals ``t .. t + horizon - 1`` (within the series)
        from the batteries' ``battery_soc_kwh`` and the EV and heat pump
        fleets' states now."""
        s, size = self._series, self._series.length
        if not (isinstance(t, (int, np.integer)) and 0 <= t < size):
            raise InputError("t", f"must be an interval of the series (0 .. {size - 1}), got {t!r}")
        stop = min(t + self.horizon, size)
        w = _window(int(t), self.dt_h, s.price[t:stop], s.feed[t:stop], s.base_kwh[t:stop],
                    s.outdoor_c[t:stop], self.battery, battery_soc_kwh, self.ev,
                    self.heat_pump, s.comfort_price_per_kh)
        n, group = s.base_kwh.shape[1], self.households_per_lp
        if not self.warm_start:
            ring = Ring(n, w.length + 1, self.dt_h, self.battery, self.ev, self.heat_pump, w)
            return _plan(ring, w, *Blocks(ring, w, group).solve(w))
        if self._kept is None:
            ring = Ring(n, self.horizon + 1, self.dt_h, self.battery, self.ev, self.heat_pump, w)
            self._kept = Blocks(ring, w, group)
        return _plan(self._kept.ring, w, *self._kept.solve(w))

    def run(self, battery_soc_kwh: npt.ArrayLike | None = None, *, first: int = 0,
            stop: int | None = None) -> Plan:
        """Closed loop over intervals ``first .. stop - 1``: plan, carry out
        the first interval (advancing the EV and heat pump fleets given, as
        :meth:`EVFleet.advance` and :meth:`HeatPumpFleet.advance` do, and the
        batteries by :meth:`BatteryFleet.store`), repeat. What happened, as a
        :class:`Plan` (its marginal values those of each plan's first interval)."""
        s = self._series
        stop = s.length if stop is None else stop
        if not 0 <= first < stop <= s.length:
            raise InputError("stop", f"need 0 <= first < stop <= {s.length}")
        b, ev, hp, dt = self.battery, self.ev, self.heat_pump, self.dt_h
        n = s.base_kwh.shape[1]
        soc = _battery_soc(b, battery_soc_kwh, n)
        names = ("battery_kwh", "battery_soc_kwh", "ev_kwh", "ev_soc_kwh", "heat_pump_kwh",
                 "indoor_c", "marginal_value_per_kwh")
        rows = {name: np.zeros((stop - first, n)) for name in names}
        rows["indoor_c"][:] = np.nan
        for k, t in enumerate(range(first, stop)):
            p = self.plan(t, soc if b is not None else None)
            rows["marginal_value_per_kwh"][k] = p.marginal_value_per_kwh[0]
            if b is not None:
                e = np.clip(p.battery_kwh[0], -b.power_kw * dt, b.power_kw * dt)
                e = np.clip(e, -(soc - b.soc_min_kwh) * b.efficiency_discharge,
                            (b.capacity_kwh - soc) / b.efficiency_charge)
                soc = b.store(soc, e, dt)
                rows["battery_kwh"][k], rows["battery_soc_kwh"][k] = e, soc
            if ev is not None:
                top = ev.charger_kw * dt
                e = np.where(ev.plugged[t], np.clip(p.ev_kwh[0], -top, top), 0.0)
                ev.advance(t, e)
                rows["ev_kwh"][k], rows["ev_soc_kwh"][k] = e, np.where(ev.capacity_kwh > 0,
                                                                     ev.soc_kwh, 0.0)
            if hp is not None:
                e = np.clip(p.heat_pump_kwh[0], 0.0, hp.p_max_kw * dt)
                hp.advance(s.outdoor_c[t], e)
                rows["heat_pump_kwh"][k] = e
                rows["indoor_c"][k] = np.where(hp.p_max_kw > 0, hp.indoor_c, np.nan)
        return Plan(t=first, dt_h=dt, prices_per_kwh=s.price[first:stop],
                    feed_in_per_kwh=s.feed[first:stop], base_net_kwh=s.base_kwh[first:stop],
                    comfort_kh=_outside_kh(hp, rows["indoor_c"], dt),
                    comfort_price_per_kh=s.comfort_price_per_kh, **rows)


def _group(households_per_lp: int | None) -> None:
    if households_per_lp is not None and not (isinstance(households_per_lp, int)
                                              and households_per_lp >= 1):
        raise InputError("households_per_lp", f"must be an int >= 1 or None, "
                         f"got {households_per_lp!r}")


def _plan(ring: Ring, w: Window, x: FloatArray, row_dual: FloatArray) -> Plan:
    got = ring.read(w, x, row_dual)
    return Plan(t=w.t, dt_h=ring.dt_h, prices_per_kwh=w.price, feed_in_per_kwh=w.feed,
                base_net_kwh=w.base_kwh, comfort_kh=_outside_kh(ring.heat_pump, got["indoor_c"],
                                                                ring.dt_h),
                comfort_price_per_kh=w.comfort_price_per_kh, **got)


def _outside_kh(hp: HeatPumpFleet | None, indoor_c: FloatArray, dt_h: float) -> FloatArray:
    """Kelvin-hours outside the band at each interval's end (0 without a pump)."""
    if hp is None:
        return np.zeros(indoor_c.shape)
    below = hp.setpoint_c - hp.band_k - indoor_c
    above = indoor_c - hp.setpoint_c - hp.band_k
    return np.nan_to_num(np.maximum(np.maximum(below, above), 0.0)) * dt_h


def _window(t: int, dt_h: float, price: npt.ArrayLike, feed: npt.ArrayLike,
            base: npt.ArrayLike, outdoor: npt.ArrayLike | None, battery: BatteryFleet | None,
            soc: npt.ArrayLike | None, ev: EVFleet | None, hp: HeatPumpFleet | None,
            comfort_price_per_kh: float) -> Window:
    """The checked inputs of a plan (``ev`` None: its states are not checked)."""
    if not (isinstance(dt_h, (int, float, np.floating)) and np.isfinite(dt_h) and dt_h > 0):
        raise InputError("dt_h", f"must be a number > 0, got {dt_h!r}")
    p, f = np.asarray(price, np.float64), np.asarray(feed, np.float64)
    b = np.asarray(base, np.float64)
    if p.ndim != 1 or p.size == 0:
        raise InputError("prices_per_kwh", f"must be a non-empty 1-d array, got shape {p.shape}")
    if b.ndim != 2 or b.shape[0] != p.size:
        raise InputError("base_net_kwh", f"must have shape ({p.size}, n), got {b.shape}")
    n = b.shape[1]
    if outdoor is None and hp is not None:
        raise InputError("outdoor_c", "is needed with heat pumps")
    o = np.zeros((p.size, 1)) if outdoor is None else np.asarray(outdoor, np.float64)
    o = o[:, None] if o.ndim == 1 else o
    for name, arr, shapes in (("prices_per_kwh", p, [p.shape]), ("feed_in_per_kwh", f, [p.shape]),
                              ("base_net_kwh", b, [b.shape]),
                              ("outdoor_c", o, [(p.size, 1), (p.size, n)])):
        if arr.shape not in shapes:
            raise InputError(name, f"must have shape {shapes[-1]}, got {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise InputError(name, f"must be finite, got {arr.ravel()[bad[0]]!r}",
                             row=int(bad[0]))
    bad = np.flatnonzero(f > p)
    if bad.size:
        raise InputError("feed_in_per_kwh", f"must not exceed the price ({f[bad[0]]!r} > "
                         f"{p[bad[0]]!r}): importing to export would pay without bound",
                         row=int(bad[0]))
    if not (np.isfinite(comfort_price_per_kh) and comfort_price_per_kh >= 0):
        raise InputError("comfort_price_per_kh", f"must be >= 0, got {comfort_price_per_kh!r}")
    sizes = {"battery": None if battery is None else len(battery),
             "ev": None if ev is None else ev.capacity_kwh.size,
             "heat_pump": None if hp is None else hp.p_max_kw.size}
    for name, size in sizes.items():
        if size is not None and size != n:
            raise InputError(name, f"has {size} households, base_net_kwh {n}")
    for name, fleet in (("ev", ev), ("heat_pump", hp)):
        if fleet is not None and fleet.dt_h != dt_h:
            raise InputError("dt_h", f"{dt_h!r} differs from the {name} fleet's {fleet.dt_h!r}")
    w = Window(t=t, price=p, feed=f, base_kwh=b, outdoor_c=np.broadcast_to(o, (p.size, n)),
               battery_soc_kwh=_battery_soc(battery, soc, n),
               ev_soc_kwh=np.zeros(n) if ev is None else ev.soc_kwh.astype(np.float64),
               indoor_c=np.zeros(n) if hp is None else hp.indoor_c.astype(np.float64),
               comfort_price_per_kh=float(comfort_price_per_kh))
    if hp is not None and not np.isfinite(w.indoor_c).all():
        raise InputError("heat_pump.indoor_c", "must be finite")
    if ev is not None:
        _check_ev(ev, t, p.size, dt_h)
    return w


def _battery_soc(battery: BatteryFleet | None, soc: npt.ArrayLike | None, n: int) -> FloatArray:
    """The batteries' state, checked against their limits (0 without a fleet)."""
    if battery is None:
        return np.zeros(n)
    if soc is None:
        raise InputError("battery_soc_kwh", "is needed with batteries")
    s = np.asarray(soc, np.float64)
    if s.shape != (n,) or not np.isfinite(s).all():
        raise InputError("battery_soc_kwh", f"must be {n} finite values, got shape {s.shape}")
    lo, hi = battery.soc_min_kwh, battery.capacity_kwh
    tol = 1e-9 * np.maximum(hi, 1.0)
    bad = np.flatnonzero((s < lo - tol) | (s > hi + tol))
    if bad.size:
        h = int(bad[0])
        raise InputError("battery_soc_kwh", f"{s[h]!r} is outside [{lo[h]!r}, {hi[h]!r}]", row=h)
    return np.clip(s, lo, hi)


def _check_ev(ev: EVFleet, t: int, length: int, dt_h: float) -> None:
    """Refuse a window the EVs cannot meet: charging at full power whenever
    plugged in (the most energy a car can hold at every moment), no car may
    run empty on a trip. A car that cannot reach ``required_kwh`` by its next
    departure is planned at full power instead (its floor,
    :func:`~transactive.agents._mpc_lp.ev_floor_kwh`, lowered to what it can reach)."""
    size = ev.plugged.shape[0]
    if not (isinstance(t, (int, np.integer)) and t >= 0 and t + length <= size):
        raise InputError("t", f"the horizon {t} .. {t + length - 1} runs beyond the EV "
                         f"fleet's timeline ({size} intervals)")
    s = ev.soc_kwh.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(s) | (s < -1e-9) | (s > ev.capacity_kwh + 1e-9))
    if bad.size:
        raise InputError("ev.soc_kwh", f"{s[bad[0]]!r} is outside [0, capacity]", row=int(bad[0]))
    for tau in range(t, t + length):
        s = np.minimum(s + np.where(ev.plugged[tau], ev.charger_kw * ev.efficiency * dt_h, 0.0),
                       ev.capacity_kwh)
        if tau + 1 < ev.trip_kwh.shape[0]:
            s = s - ev.trip_kwh[tau + 1]
        empty = np.flatnonzero(s < -1e-9)
        if empty.size:
            h = int(empty[0])
            raise InputError("ev.trip_kwh", f"the car of household {h} cannot make the trip "
                             f"ending at interval {tau + 1} even charging at full power", row=h)
