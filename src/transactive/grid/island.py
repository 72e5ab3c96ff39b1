"""Islanded microgrid dispatch: critical loads first, a black-start reserve
kept, the price rising to scarcity.

A microgrid is connected to the upstream grid except in the intervals it is
islanded (an upstream fault): then nothing can be imported or exported, and
its own generators and its grid-forming battery must carry it.
:func:`dispatch_island` finds the welfare-maximising dispatch over a horizon
of intervals (HiGHS):

- **Loads** come in classes, each with a demand per interval and a value per
  kWh: a critical class carries a very high value of lost load (VoLL), a
  flexible class a low one. Maximising welfare serves the most valuable load
  first, so critical load is shed only when everything else is.
- **Generators** (PV, diesel, ...) have an availability per interval and a
  cost per kWh; a generator with a minimum output is committed on or off
  (a binary per interval: the problem is then a MILP).
- **The grid-forming battery** couples the intervals through its state of
  charge (``soc' = soc + eta_c c dt - d dt / eta_d``) and keeps a black-start
  reserve: its state of charge never goes below ``reserve_kwh``, so that it
  can restart the microgrid after a collapse. Dispatch may not use the
  reserve, even to avoid shedding critical load.
- **Prices** are the duals of the power balance in each interval, per kWh:
  the marginal value of energy. When critical load is shed the price is its
  VoLL; when supply is ample it falls to the marginal generator's cost (or
  to the battery's value of storing energy). With commitments, prices are
  those of the LP with the commitments fixed at the MILP optimum (the usual
  convention, O'Neill et al. 2005, "Efficient market-clearing prices in
  markets with nonconvexities", EJOR 164(1)).

Simultaneous charging and discharging would burn energy through the
efficiencies; it is never optimal here unless energy must be dumped (a
negative export price with must-run output), which the inputs refuse.

Examples
--------
>>> import numpy as np
>>> res = dispatch_island(
...     dt_h=1.0, demand_kw=[[10, 10, 10], [20, 20, 20]], value_per_kwh=[10.0, 0.5],
...     class_names=["critical", "flexible"],
...     gen_max_kw=[[40, 0, 0]], gen_cost_per_kwh=[0.0],
...     battery=Battery(energy_kwh=40, soc_kwh=20, p_charge_kw=30, p_discharge_kw=30,
...                     reserve_kwh=10, eta_charge=1.0, eta_discharge=1.0),
...     import_price_per_kwh=0.2, islanded=[False, True, True])
>>> res.served_kwh(1.0)
{'critical': 30.0, 'flexible': 30.0}
>>> res.price_per_kwh.round(2).tolist(), res.soc_kwh.round(2).tolist()
([0.2, 0.5, 0.5], [20.0, 40.0, 30.0, 10.0])

The battery charges from PV and imports before the fault, the island serves
all critical load and what is left of the battery above its 10 kWh reserve
goes to flexible load, whose value sets the price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError
from transactive.grid._lp import Triplets, solve_highs

__all__ = ["Battery", "IslandDispatch", "dispatch_island"]

Array = npt.NDArray[np.float64]
_INF = float("inf")


@dataclass(frozen=True)
class Battery:
    """The grid-forming battery.

    Parameters
    ----------
    energy_kwh : usable capacity.
    soc_kwh : state of charge at the start of the horizon.
    p_charge_kw, p_discharge_kw : power limits.
    reserve_kwh : black-start reserve: the state of charge never goes below it.
    eta_charge, eta_discharge : efficiencies in ``(0, 1]``.
    soc_end_kwh : least state of charge at the end of the horizon (default:
        the reserve; the dispatch may end the horizon drained to it).
    """

    energy_kwh: float
    soc_kwh: float
    p_charge_kw: float
    p_discharge_kw: float
    reserve_kwh: float = 0.0
    eta_charge: float = 0.95
    eta_discharge: float = 0.95
    soc_end_kwh: float | None = None

    def __post_init__(self) -> None:
        for name in ("energy_kwh", "soc_kwh", "p_charge_kw", "p_discharge_kw", "reserve_kwh"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InputError(f"battery.{name}", f"must be a finite number >= 0, got {value!r}")
        for name in ("eta_charge", "eta_discharge"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise InputError(f"battery.{name}", f"must be in (0, 1], got {value!r}")
        if self.reserve_kwh > self.energy_kwh:
            raise InputError("battery.reserve_kwh", "is above energy_kwh")
        if not self.reserve_kwh <= self.soc_kwh <= self.energy_kwh:
            raise InputError("battery.soc_kwh", f"must lie between the reserve "
                             f"({self.reserve_kwh}) and energy_kwh ({self.energy_kwh})")
        end = self.soc_end_kwh
        if end is not None and not self.reserve_kwh <= end <= self.energy_kwh:
            raise InputError("battery.soc_end_kwh", "must lie between the reserve and energy_kwh")


@dataclass(frozen=True, eq=False)
class IslandDispatch:
    """The dispatch over ``T`` intervals (arrays of shape ``(classes, T)``,
    ``(generators, T)`` or ``(T,)``; ``soc_kwh`` has ``T + 1`` entries, the
    first being the initial state). Powers in kW, prices per kWh."""

    class_names: tuple[str, ...]
    served_kw: Array
    curtailed_kw: Array
    gen_kw: Array
    committed: npt.NDArray[np.bool_]
    charge_kw: Array
    discharge_kw: Array
    soc_kwh: Array
    import_kw: Array
    export_kw: Array
    price_per_kwh: Array
    islanded: npt.NDArray[np.bool_]
    welfare: float
    reserve_kwh: float

    def served_kwh(self, dt_h: float) -> dict[str, float]:
        """Energy served per load class over the horizon."""
        return dict(zip(self.class_names, (self.served_kw.sum(axis=1) * dt_h).tolist(),
                        strict=True))

    def to_frame(self) -> pd.DataFrame:
        """One row per interval: price, islanded, battery, grid and, per class,
        served and curtailed kW."""
        data: dict[str, npt.ArrayLike] = {
            "price_per_kwh": self.price_per_kwh, "islanded": self.islanded,
            "charge_kw": self.charge_kw, "discharge_kw": self.discharge_kw,
            "soc_kwh": self.soc_kwh[1:], "import_kw": self.import_kw, "export_kw": self.export_kw,
        }
        for k, name in enumerate(self.class_names):
            data[f"served_kw[{name}]"] = self.served_kw[k]
            data[f"curtailed_kw[{name}]"] = self.curtailed_kw[k]
        return pd.DataFrame(data)


def _matrix(name: str, value: npt.ArrayLike, t: int | None, *, allow_inf: bool = False,
            nonneg: bool = True) -> Array:
    try:
        arr = np.array(value, dtype=np.float64, ndmin=2)
    except (TypeError, ValueError):
        raise InputError(name, "must be numeric") from None
    if arr.ndim != 2 or (t is not None and arr.shape[1] != t):
        raise InputError(name, f"must have shape (rows, {t}), got {arr.shape}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if nonneg:
        bad |= arr < 0
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InputError(name, "must be finite and >= 0" if nonneg else "must be finite",
                         row=row)
    return arr


def _per_interval(name: str, value: npt.ArrayLike, t: int, *, allow_inf: bool = False,
                  nonneg: bool = True) -> Array:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (t,)) if np.ndim(value) == 0 \
        else np.asarray(value, dtype=np.float64)
    if arr.shape != (t,):
        raise InputError(name, f"must be a number or one value per interval ({t})")
    return _matrix(name, arr, t, allow_inf=allow_inf, nonneg=nonneg)[0]


def dispatch_island(
    *,
    dt_h: float,
    demand_kw: npt.ArrayLike,
    value_per_kwh: npt.ArrayLike,
    gen_max_kw: npt.ArrayLike,
    gen_cost_per_kwh: npt.ArrayLike,
    battery: Battery,
    islanded: npt.ArrayLike,
    import_price_per_kwh: npt.ArrayLike = 0.0,
    export_price_per_kwh: npt.ArrayLike = 0.0,
    import_max_kw: npt.ArrayLike = _INF,
    export_max_kw: npt.ArrayLike = _INF,
    gen_min_kw: npt.ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
) -> IslandDispatch:
    """Welfare-maximising dispatch of a microgrid over a horizon with an
    upstream fault (see the module notes).

    Parameters
    ----------
    dt_h : float
        Interval length, hours.
    demand_kw : array (classes, T)
        Demand of each load class per interval.
    value_per_kwh : array (classes,)
        Value of each class (the critical class's VoLL is very high).
    gen_max_kw : array (generators, T)
        Available output per generator and interval (a PV forecast, a
        diesel's rating).
    gen_cost_per_kwh : array (generators,)
        Running cost of each generator.
    battery : Battery
        The grid-forming battery with its black-start reserve.
    islanded : array of bool (T,)
        True in the intervals of the upstream fault (no import, no export).
    import_price_per_kwh, export_price_per_kwh : number or array (T,)
        Upstream prices while connected (export at most the import price).
    import_max_kw, export_max_kw : number or array (T,)
        Capacity of the connection while connected.
    gen_min_kw : array (generators,), optional
        Minimum output of a committed generator; a generator with one is on
        or off per interval (MILP).
    class_names : sequence of str, optional
        Names of the load classes (default ``class0, class1, ...``).

    Raises
    ------
    InputError
        Shapes or values that do not fit (naming the argument and the row).
    SolverError
        If the solver fails (the problem itself is always feasible: load can
        be shed).
    """
    if not np.isfinite(dt_h) or dt_h <= 0:
        raise InputError("dt_h", f"must be > 0, got {dt_h!r}")
    dem = _matrix("demand_kw", demand_kw, None)
    nc, t = dem.shape
    val = _matrix("value_per_kwh", np.asarray(value_per_kwh, float)[:, None]
                  if np.ndim(value_per_kwh) == 1 else value_per_kwh, 1, nonneg=False)[:, 0]
    if val.size != nc:
        raise InputError("value_per_kwh", f"must have one value per load class ({nc})")
    gmax = _matrix("gen_max_kw", gen_max_kw, t, allow_inf=False)
    ng = gmax.shape[0]
    gcost = np.asarray(gen_cost_per_kwh, dtype=np.float64).reshape(-1)
    if gcost.size != ng or not np.isfinite(gcost).all():
        raise InputError("gen_cost_per_kwh", f"must be {ng} finite numbers (one per generator)")
    gmin = np.zeros(ng) if gen_min_kw is None else np.asarray(gen_min_kw, float).reshape(-1)
    if gmin.size != ng or not np.isfinite(gmin).all() or (gmin < 0).any():
        raise InputError("gen_min_kw", f"must be {ng} finite numbers >= 0")
    isl = np.asarray(islanded)
    if isl.shape != (t,) or isl.dtype.kind not in "biu":
        raise InputError("islanded", f"must be {t} true/false values (one per interval)")
    isl = isl.astype(bool)
    p_imp = _per_interval("import_price_per_kwh", import_price_per_kwh, t, nonneg=False)
    p_exp = _per_interval("export_price_per_kwh", export_price_per_kwh, t, nonneg=False)
    if (p_exp > p_imp).any():
        raise InputError("export_price_per_kwh", "must not exceed the import price",
                         row=int(np.flatnonzero(p_exp > p_imp)[0]))
    if ((p_exp < 0) & ~isl).any() and (gmin > 0).any():
        raise InputError("export_price_per_kwh", "a negative export price with must-run "
                         "output would make burning energy in the battery pay")
    cap_imp = np.where(isl, 0.0, _per_interval("import_max_kw", import_max_kw, t, allow_inf=True))
    cap_exp = np.where(isl, 0.0, _per_interval("export_max_kw", export_max_kw, t, allow_inf=True))
    if not isinstance(battery, Battery):
        raise InputError("battery", f"expected a Battery, got {type(battery).__name__}")
    names = tuple(class_names) if class_names is not None else tuple(f"class{k}"
                                                                     for k in range(nc))
    if len(names) != nc:
        raise InputError("class_names", f"must name the {nc} load classes")
    commit = np.flatnonzero(gmin > 0)
    return _solve(dt_h, dem, val, gmax, gcost, gmin, commit, battery, isl, p_imp, p_exp,
                  cap_imp, cap_exp, names)


def _solve(dt: float, dem: Array, val: Array, gmax: Array, gcost: Array, gmin: Array,
           commit: npt.NDArray[np.int64], bat: Battery, isl: npt.NDArray[np.bool_],
           p_imp: Array, p_exp: Array, cap_imp: Array, cap_exp: Array,
           names: tuple[str, ...]) -> IslandDispatch:
    nc, t = dem.shape
    ng, nu = gmax.shape[0], commit.size
    # columns: served (nc*T), gen (ng*T), charge, discharge, soc (T each), import,
    # export (T each), commitment (nu*T); rows: balance (T), soc (T), commitment
    # limits (2 nu T)
    i_srv = np.arange(nc * t).reshape(nc, t)
    i_gen = nc * t + np.arange(ng * t).reshape(ng, t)
    base = (nc + ng) * t
    i_ch, i_dis, i_soc, i_imp, i_exp = (base + k * t + np.arange(t) for k in range(5))
    i_u = base + 5 * t + np.arange(nu * t).reshape(nu, t)
    ncol = base + 5 * t + nu * t
    steps = np.arange(t)
    m = Triplets()
    # balance: gen + discharge - charge + import - export - served = 0
    m.put(steps[None, :], i_gen, 1.0)
    m.put(steps, i_dis, 1.0)
    m.put(steps, i_ch, -1.0)
    m.put(steps, i_imp, 1.0)
    m.put(steps, i_exp, -1.0)
    m.put(steps[None, :], i_srv, -1.0)
    # state of charge: soc_t - soc_{t-1} - eta_c dt ch_t + dt / eta_d dis_t = 0 (t=0: = soc0)
    m.put(t + steps, i_soc, 1.0)
    m.put(t + steps[1:], i_soc[:-1], -1.0)
    m.put(t + steps, i_ch, -bat.eta_charge * dt)
    m.put(t + steps, i_dis, dt / bat.eta_discharge)
    # commitment: gen - max u <= 0, gen - min u >= 0
    lim = 2 * t + np.arange(2 * nu * t).reshape(2, nu, t)
    m.put(lim[0], i_gen[commit], 1.0)
    m.put(lim[0], i_u, -gmax[commit])
    m.put(lim[1], i_gen[commit], 1.0)
    m.put(lim[1], i_u, -gmin[commit][:, None])
    nrow = 2 * t + 2 * nu * t
    a = m.matrix(nrow, ncol)
    rl, ru = np.zeros(nrow), np.zeros(nrow)
    rl[t] = ru[t] = bat.soc_kwh
    rl[lim[0]] = -_INF
    ru[lim[1]] = _INF
    lb, ub = np.zeros(ncol), np.zeros(ncol)
    ub[i_srv], ub[i_gen] = dem, gmax
    ub[i_ch], ub[i_dis] = bat.p_charge_kw, bat.p_discharge_kw
    lb[i_soc], ub[i_soc] = bat.reserve_kwh, bat.energy_kwh
    if bat.soc_end_kwh is not None:
        lb[i_soc[-1]] = bat.soc_end_kwh
    ub[i_imp], ub[i_exp], ub[i_u] = cap_imp, cap_exp, 1.0
    c = np.zeros(ncol)
    c[i_srv] = -val[:, None] * dt
    c[i_gen] = gcost[:, None] * dt
    c[i_imp], c[i_exp] = p_imp * dt, -p_exp * dt
    integer = np.zeros(ncol, bool)
    integer[i_u] = True
    sol = solve_highs(c, lb, ub, a, rl, ru, integer=integer, what="island dispatch")
    if nu:  # prices from the LP with the commitments fixed at the MILP optimum
        lb[i_u] = ub[i_u] = np.round(sol.x[i_u])
        sol = solve_highs(c, lb, ub, a, rl, ru, what="island dispatch")
    x, y = sol.x, sol.row_dual
    committed = np.ones((ng, t), bool)
    committed[commit] = np.round(x[i_u]).astype(bool)
    served = x[i_srv]
    return IslandDispatch(
        class_names=names, served_kw=served, curtailed_kw=np.maximum(dem - served, 0.0),
        gen_kw=x[i_gen], committed=committed, charge_kw=x[i_ch], discharge_kw=x[i_dis],
        soc_kwh=np.r_[bat.soc_kwh, np.maximum(x[i_soc], bat.reserve_kwh)],
        import_kw=x[i_imp], export_kw=x[i_exp], price_per_kwh=y[:t] / dt, islanded=isl,
        welfare=-float(c @ x), reserve_kwh=bat.reserve_kwh,
    )
