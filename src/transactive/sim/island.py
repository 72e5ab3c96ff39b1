"""The community as an islanded microgrid during an upstream fault.

While the feeder is cut off upstream, the households can trade only among
themselves: :func:`island_window` runs the community over the intervals of
the fault as one microgrid, through one welfare-maximising dispatch
(:func:`transactive.grid.island.dispatch_island`), and hands each household
its part.

The aggregate microgrid
-----------------------
- **Loads**: each household's load splits into a critical part
  (``critical_share`` of it, valued at the value of lost load
  ``critical_value_per_kwh``) and a flexible part (the rest, valued at
  ``flexible_value_per_kwh``); the community's two load classes are their sums.
- **PV** is one generator at zero cost; its availability is the sum of the
  households' PV, and what the dispatch does not use is curtailed.
- **The grid-forming battery** is the fleet acting together: energy, state of
  charge and power limits are the sums over the batteries; its charge and
  discharge efficiencies are the capacity-weighted means of the fleet's (1
  when there are no batteries). Its black-start reserve is the sum of the
  batteries' floors, battery ``i``'s floor being
  ``max(reserve_frac * capacity_i, soc_min_i)`` (the fleet's own minimum
  counts too), lowered to its state of charge at the start of the fault when
  it starts below it: the reserve is never above the starting state of
  charge, and no battery has to recharge to reach its floor. The dispatch may
  drain the fleet to the reserve by the end of the fault, never below.
- **Prices** are the dispatch's: the dual of the island's power balance in
  each interval (the critical VoLL when critical load is shed, the flexible
  value when flexible load is marginal, the value of stored energy or zero
  when PV is curtailed).

Back to the households
----------------------
- Load served: within each class, every household is served the same
  fraction of its part (the class's served fraction).
- PV used: pro rata to each household's PV.
- Batteries, interval by interval, by water-filling: a charge goes first to
  the batteries that would take longest to fill at full power (headroom at
  the terminals, ``(capacity - soc) / eta_charge``, over the power limit), a
  discharge to those that would take longest to empty (deliverable energy
  above the floor, ``(soc - floor) * eta_discharge``, over the power limit),
  levelling these durations; each share is capped at the battery's power
  limit and at what its energy allows in the interval. The caps keep every
  battery within ``[floor, capacity]`` and its power limit, and its state of
  charge follows its own efficiencies. Levelling durations, rather than
  splitting pro rata to energy, keeps the fleet's power up: while the
  durations to empty are level (and the efficiencies alike), the fleet can
  deliver in an interval exactly what the aggregate battery can,
  ``min(sum of power limits, sum of deliverable energy / dt_h)``; likewise
  for charging.

The split conserves the dispatch's totals exactly whenever the fleet can
carry them battery by battery, which it always can when the batteries are
alike in efficiency and in state of charge, floor and power per kWh of
capacity. Otherwise the aggregate battery is a relaxation of the fleet (the
sum of the power limits counts a full battery's power towards charging and a
nearly empty one's towards discharging; mean efficiencies flatter the least
efficient battery). In an interval where the fleet falls short of the
dispatch's battery power, every battery stays within its limits and the
interval balances by curtailing PV (charging), or by using spare PV and then
shedding load, flexible first (discharging); the prices stay the dispatch's.
An exact alternative is a dispatch with one battery per household.

Examples
--------
Two households, one hour of PV surplus then one hour of deficit. The battery
charges at its 4 kW limit (the rest of the PV is curtailed: price 0); the
4 kWh it gains cover all critical load and 2 of the 3 kW of flexible load,
whose value is then the price:

>>> import numpy as np
>>> from transactive.agents.devices import BatteryFleet
>>> fleet = BatteryFleet(capacity_kwh=[10.0, 0.0], power_kw=[4.0, 0.0],
...                      efficiency_charge=[1.0, 1.0], efficiency_discharge=[1.0, 1.0],
...                      soc_min_frac=[0.0, 0.0])
>>> out = island_window(load_kw=np.array([[1.0, 1.0], [3.0, 2.0]]),
...                     pv_kw=np.array([[8.0, 0.0], [0.0, 0.0]]),
...                     soc_kwh=np.array([2.0, 0.0]), fleet=fleet, dt_h=1.0,
...                     critical_share=0.4, critical_value_per_kwh=10.0,
...                     flexible_value_per_kwh=0.5, reserve_frac=0.2)
>>> out.price_per_kwh.round(6).tolist(), out.soc_kwh[:, 0].round(6).tolist()
([0.0, 0.5], [6.0, 2.0])
>>> out.served_kw[1].round(6).tolist(), out.shed_flexible_kwh.round(6).tolist()
([2.4, 1.6], [0.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transactive.agents.devices import BatteryFleet
from transactive.errors import InputError
from transactive.grid.island import Battery, dispatch_island

__all__ = ["IslandOutcome", "island_window"]

FloatArray = npt.NDArray[np.float64]

_NEGLIGIBLE_KW = 1e-12  # a battery share below this is none


@dataclass(frozen=True, eq=False)
class IslandOutcome:
    """What the community did over the ``T`` intervals of a fault (arrays over
    intervals, and over households ``H`` where two-dimensional; powers in kW,
    read-only).

    ``soc_kwh[t]`` is each battery's state of charge at the end of interval
    ``t``; ``shed_critical_kwh`` and ``shed_flexible_kwh`` are the
    community's energy not served per class and interval. In every interval
    ``served + charge == pv_used + discharge`` summed over households.
    """

    price_per_kwh: FloatArray
    served_kw: FloatArray
    pv_used_kw: FloatArray
    charge_kw: FloatArray
    discharge_kw: FloatArray
    soc_kwh: FloatArray
    shed_critical_kwh: FloatArray
    shed_flexible_kwh: FloatArray

    def __post_init__(self) -> None:
        for name in ("price_per_kwh", "served_kw", "pv_used_kw", "charge_kw", "discharge_kw",
                     "soc_kwh", "shed_critical_kwh", "shed_flexible_kwh"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)


def island_window(
    *,
    load_kw: npt.ArrayLike,
    pv_kw: npt.ArrayLike,
    soc_kwh: npt.ArrayLike,
    fleet: BatteryFleet,
    dt_h: float,
    critical_share: float,
    critical_value_per_kwh: float,
    flexible_value_per_kwh: float,
    reserve_frac: float,
) -> IslandOutcome:
    """Run the community as one islanded microgrid over the intervals of a
    fault (see the module notes).

    Parameters
    ----------
    load_kw, pv_kw : array (T, H)
        Each household's load and PV output in each interval of the fault.
    soc_kwh : array (H,)
        Each battery's state of charge when the fault starts, within
        ``[0, capacity]``.
    fleet : BatteryFleet
        The households' batteries (capacity 0: none).
    dt_h : float
        Interval length, hours.
    critical_share : float in [0, 1]
        Share of each household's load that is critical.
    critical_value_per_kwh : float
        Value of lost load of critical load; above the flexible value.
    flexible_value_per_kwh : float >= 0
        Value of the rest of the load.
    reserve_frac : float in [0, 1]
        Share of each battery's capacity kept for a black start.

    Returns
    -------
    IslandOutcome

    Raises
    ------
    InputError
        Shapes or values that do not fit, naming the argument (and the row:
        the interval, or the household for ``soc_kwh``).
    """
    load, pv, soc0 = _check(load_kw, pv_kw, soc_kwh, fleet, dt_h, critical_share,
                            critical_value_per_kwh, flexible_value_per_kwh, reserve_frac)
    cap = fleet.capacity_kwh
    has = cap > 0
    eta_c = np.where(has, fleet.efficiency_charge, 1.0)
    eta_d = np.where(has, fleet.efficiency_discharge, 1.0)
    p_max = np.where(has, fleet.power_kw, 0.0)
    floor = np.minimum(soc0, np.maximum(reserve_frac * cap, fleet.soc_min_kwh))
    total_cap = float(cap.sum())
    battery = Battery(energy_kwh=total_cap, soc_kwh=float(soc0.sum()),
                      p_charge_kw=float(p_max.sum()), p_discharge_kw=float(p_max.sum()),
                      reserve_kwh=float(floor.sum()), eta_charge=_weighted(eta_c, cap),
                      eta_discharge=_weighted(eta_d, cap))
    crit = critical_share * load
    flex = load - crit
    crit_tot, flex_tot, pv_tot = crit.sum(axis=1), flex.sum(axis=1), pv.sum(axis=1)
    res = dispatch_island(
        dt_h=dt_h, demand_kw=np.stack([crit_tot, flex_tot]),
        value_per_kwh=[critical_value_per_kwh, flexible_value_per_kwh],
        class_names=["critical", "flexible"], gen_max_kw=pv_tot[None, :],
        gen_cost_per_kwh=[0.0], battery=battery, islanded=np.ones(load.shape[0], bool),
    )
    plan = _Plan(served_crit=np.clip(res.served_kw[0], 0.0, crit_tot),
                 served_flex=np.clip(res.served_kw[1], 0.0, flex_tot),
                 pv_used=np.clip(res.gen_kw[0], 0.0, pv_tot), pv_avail=pv_tot)
    charge, discharge, soc = _split_battery(plan, soc0, cap, floor, p_max, eta_c, eta_d, dt_h)
    frac_crit = np.divide(plan.served_crit, crit_tot, out=np.ones_like(crit_tot),
                          where=crit_tot > 0)
    frac_flex = np.divide(plan.served_flex, flex_tot, out=np.ones_like(flex_tot),
                          where=flex_tot > 0)
    frac_pv = np.divide(plan.pv_used, pv_tot, out=np.zeros_like(pv_tot), where=pv_tot > 0)
    return IslandOutcome(
        price_per_kwh=res.price_per_kwh + 0.0,  # no -0.0 from the duals
        served_kw=frac_crit[:, None] * crit + frac_flex[:, None] * flex,
        pv_used_kw=frac_pv[:, None] * pv,
        charge_kw=charge, discharge_kw=discharge, soc_kwh=soc,
        shed_critical_kwh=(crit_tot - plan.served_crit) * dt_h,
        shed_flexible_kwh=(flex_tot - plan.served_flex) * dt_h,
    )


@dataclass(eq=False)
class _Plan:
    """The community's totals per interval (T,), adjusted in place where the
    fleet cannot carry the dispatch's battery power."""

    served_crit: FloatArray
    served_flex: FloatArray
    pv_used: FloatArray
    pv_avail: FloatArray

    def balance_charge(self, t: int, shortfall_kw: float) -> None:
        """The fleet absorbs ``shortfall_kw`` less than planned: curtail PV."""
        self.pv_used[t] = max(self.pv_used[t] - max(shortfall_kw, 0.0), 0.0)

    def balance_discharge(self, t: int, shortfall_kw: float) -> None:
        """The fleet delivers ``shortfall_kw`` less than planned: spare PV,
        then shed flexible load, then critical load."""
        shortfall_kw = max(shortfall_kw, 0.0)  # not a rounding excess
        extra = min(shortfall_kw, self.pv_avail[t] - self.pv_used[t])
        self.pv_used[t] += extra
        left = shortfall_kw - extra
        cut = min(left, self.served_flex[t])
        self.served_flex[t] -= cut
        self.served_crit[t] = max(self.served_crit[t] - (left - cut), 0.0)


def _split_battery(plan: _Plan, soc0: FloatArray, cap: FloatArray, floor: FloatArray,
                   p_max: FloatArray, eta_c: FloatArray, eta_d: FloatArray, dt_h: float,
                   ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each battery's charge, discharge (T, H) and end-of-interval state of
    charge, interval by interval (the state couples the intervals); ``plan``
    is balanced where the fleet falls short."""
    t_n, h_n = plan.pv_used.size, soc0.size
    charge, discharge, soc_out = np.zeros((t_n, h_n)), np.zeros((t_n, h_n)), np.zeros((t_n, h_n))
    soc = soc0.copy()
    for t in range(t_n):
        # the battery power the interval needs (> 0: charge), from the balance
        need = plan.pv_used[t] - plan.served_crit[t] - plan.served_flex[t]
        if need > 0:
            room = np.maximum(cap - soc, 0.0) / eta_c  # kWh at the terminals
            got = _water_fill(need, room, p_max, dt_h)
            plan.balance_charge(t, need - float(got.sum()))
            charge[t] = got
        elif need < 0:
            stock = np.maximum(soc - floor, 0.0) * eta_d
            got = _water_fill(-need, stock, p_max, dt_h)
            plan.balance_discharge(t, -need - float(got.sum()))
            discharge[t] = got
        soc = np.clip(soc + (eta_c * charge[t] - discharge[t] / eta_d) * dt_h, floor, cap)
        soc_out[t] = soc
    return charge, discharge, soc_out


def _water_fill(target_kw: float, energy_kwh: FloatArray, p_kw: FloatArray,
                dt_h: float) -> FloatArray:
    """Split ``target_kw`` among batteries holding ``energy_kwh`` (to give or
    to take, at the terminals) with power limits ``p_kw`` so that what each
    has left lasts as equally long at full power: ``x_i = clip((energy_i -
    lam p_i) / dt_h, 0, u_i)`` with ``u_i = min(p_i, energy_i / dt_h)`` and
    the level ``lam`` (hours) set so that the shares sum to the target; every
    ``u_i`` when their sum falls short of it."""
    limit = np.minimum(p_kw, energy_kwh / dt_h)
    limit[limit < _NEGLIGIBLE_KW] = 0.0  # keeps durations energy / p finite
    if target_kw >= float(limit.sum()):
        return limit
    if target_kw <= 0:
        return np.zeros_like(limit)
    on = np.flatnonzero(limit > 0)
    e, p, u = energy_kwh[on], p_kw[on], limit[on]
    lo, hi = (e - u * dt_h) / p, e / p  # share u_i up to level lo_i, 0 from hi_i on
    # the total f(lam) is continuous, piecewise linear and falling; evaluate it
    # at every breakpoint from sorted cumulative sums, then interpolate
    i_lo, i_hi = np.argsort(lo), np.argsort(hi)
    lo_s, hi_s = lo[i_lo], hi[i_hi]
    cum_u = np.concatenate([[0.0], np.cumsum(u[i_lo])])
    cum_e_lo = np.concatenate([[0.0], np.cumsum(e[i_lo])])
    cum_p_lo = np.concatenate([[0.0], np.cumsum(p[i_lo])])
    cum_e_hi = np.concatenate([[0.0], np.cumsum(e[i_hi])])
    cum_p_hi = np.concatenate([[0.0], np.cumsum(p[i_hi])])
    lam = np.unique(np.concatenate([lo, hi]))
    n_lo = np.searchsorted(lo_s, lam, side="left")  # shares below their cap: lo_i < lam
    n_hi = np.searchsorted(hi_s, lam, side="left")  # and at 0: hi_i < lam
    f = (cum_u[-1] - cum_u[n_lo]) + ((cum_e_lo[n_lo] - cum_e_hi[n_hi])
                                     - lam * (cum_p_lo[n_lo] - cum_p_hi[n_hi])) / dt_h
    # f[0] = sum(u) > target >= 0 = f[-1]: the level lies in the segment where f
    # falls through the target
    k = min(int(np.searchsorted(-f, -target_kw, side="right")), f.size - 1)
    drop = f[k - 1] - f[k]
    level = lam[k] if drop <= 0 else \
        lam[k - 1] + (f[k - 1] - target_kw) / drop * (lam[k] - lam[k - 1])
    out = np.zeros_like(limit)
    out[on] = np.clip((e - level * p) / dt_h, 0.0, u)
    return out


def _check(load_kw: npt.ArrayLike, pv_kw: npt.ArrayLike, soc_kwh: npt.ArrayLike,
           fleet: BatteryFleet, dt_h: float, critical_share: float,
           critical_value_per_kwh: float, flexible_value_per_kwh: float,
           reserve_frac: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    if not isinstance(fleet, BatteryFleet):
        raise InputError("fleet", f"expected a BatteryFleet, got {type(fleet).__name__}")
    h_n = len(fleet)
    load = _table("load_kw", load_kw, None, h_n)
    pv = _table("pv_kw", pv_kw, load.shape[0], h_n)
    for name, value in (("dt_h", dt_h), ("critical_value_per_kwh", critical_value_per_kwh),
                        ("flexible_value_per_kwh", flexible_value_per_kwh)):
        if not _number(value) or value < 0 or (name == "dt_h" and value == 0):
            raise InputError(name, f"must be a finite number {'>' if name == 'dt_h' else '>='} "
                                   f"0, got {value!r}")
    if critical_value_per_kwh <= flexible_value_per_kwh:
        raise InputError("critical_value_per_kwh", "must be above flexible_value_per_kwh "
                         f"({flexible_value_per_kwh!r}), got {critical_value_per_kwh!r}")
    for name, value in (("critical_share", critical_share), ("reserve_frac", reserve_frac)):
        if not _number(value) or not 0 <= value <= 1:
            raise InputError(name, f"must be a number in [0, 1], got {value!r}")
    try:
        soc = np.array(soc_kwh, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("soc_kwh", "must be an array of numbers") from None
    if soc.shape != (h_n,):
        raise InputError("soc_kwh", f"must have shape ({h_n},) (one per household), "
                                    f"got {soc.shape}")
    cap = fleet.capacity_kwh
    tol = 1e-9 * np.maximum(cap, 1.0)
    bad = np.flatnonzero(~np.isfinite(soc) | (soc < -tol) | (soc > cap + tol))
    if bad.size:
        row = int(bad[0])
        raise InputError("soc_kwh", f"must lie in [0, capacity ({cap[row]!r})], "
                                    f"got {soc[row]!r}", row=row)
    return load, pv, np.clip(soc, 0.0, cap)


def _weighted(eta: FloatArray, cap: FloatArray) -> float:
    """Capacity-weighted mean efficiency, clipped into (0, 1] against rounding
    (1 without batteries)."""
    total = float(cap.sum())
    return min(float(cap @ eta) / total, 1.0) if total > 0 else 1.0


def _number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and bool(np.isfinite(value))


def _table(name: str, value: npt.ArrayLike, t_n: int | None, h_n: int) -> FloatArray:
    """``value`` as a (T, H) array of finite numbers >= 0 (T >= 1)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be an array of numbers") from None
    want = f"({'T' if t_n is None else t_n}, {h_n})"
    if arr.ndim != 2 or arr.shape[1] != h_n or arr.shape[0] == 0 or \
            (t_n is not None and arr.shape[0] != t_n):
        raise InputError(name, f"must have shape {want} (intervals, households), "
                               f"got {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InputError(name, "must be finite and >= 0", row=row)
    return arr
