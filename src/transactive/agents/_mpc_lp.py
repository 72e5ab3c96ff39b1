"""The LP of :mod:`transactive.agents.mpc`: its structure on a ring of slots,
its costs and bounds for one window, and the reading of its solution.

The LP has ``S`` *slots*, each holding every variable and row of one
interval for every household with a device. The intervals of a window
``t .. t + L - 1`` occupy the slots ``(tau + 1 - origin) mod S`` and the slot
before them, ``(t - origin) mod S``, holds the state at the window's start
(its state columns fixed, its decisions 0, its rows free); slots beyond the
window are *off* (columns 0, rows free). Each dynamics row links a slot to
the previous one around the ring. Moving the window on by one interval
turns the first slot into the state slot and the old state slot into the
new last interval: only costs and bounds change, and the heat pumps' COP of
that one slot (its outdoor temperature), so the LP can stay in HiGHS
(:class:`KeptRing`) and be re-solved from its previous basis.

Columns, each a block ``(S, m)`` over the ``m`` households with the device:
``imp`` (import), battery ``bc, bd, bs`` (charge, discharge, state), EV
``ee, es`` and ``ed`` (charge, state; V2G discharge of the cars with V2G),
heat pump ``hp, ht, hu, hw`` (electric energy, indoor temperature, comfort
slacks below and above). Rows: ``bal`` (import >= net), battery ``bat``,
EV ``car``, heat pump ``heat`` (dynamics) and ``band`` (comfort).
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.agents.devices import BatteryFleet
from transactive.agents.ev import EVFleet
from transactive.agents.heatpump import HeatPumpFleet, cop
from transactive.errors import SolverError
from transactive.grid._lp import KeptLP, Triplets

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Window:
    """What one plan needs for the intervals ``t .. t + L - 1``: prices and
    feed-in (L,), the households' net energy without these devices and the
    outdoor temperature (L, n), the states at ``t`` (n,), the penalty."""

    t: int
    price: FloatArray
    feed: FloatArray
    base_kwh: FloatArray
    outdoor_c: FloatArray
    battery_soc_kwh: FloatArray
    ev_soc_kwh: FloatArray
    indoor_c: FloatArray
    comfort_price_per_kh: float

    @property
    def length(self) -> int:
        return int(self.price.size)


def ev_floor_kwh(ev: EVFleet, tau: IntArray) -> FloatArray:
    """Per interval of ``tau`` (L,) and car (L, n): the least a plugged-in car
    must hold at the interval's end to reach ``required_kwh`` by its next
    departure charging at full power from then on (its laxity spent); at the
    last interval before a departure, ``required_kwh`` itself. 0 while away
    or with no departure ahead in the fleet's timeline."""
    size = ev.plugged.shape[0]
    plugged, d = ev.plugged[tau], ev.departure[tau]
    ahead = plugged & (d < size)
    if not ahead.any():
        return np.zeros(plugged.shape)
    lo, hi = int(tau[0]), int(d[ahead].max())
    count = np.zeros((hi - lo + 1, plugged.shape[1]))  # plugged intervals lo .. before row
    count[1:] = np.cumsum(ev.plugged[lo:hi], axis=0)
    at = np.minimum(d, hi) - lo
    left = np.take_along_axis(count, at, axis=0) - count[np.minimum(tau + 1, hi) - lo]
    floor = ev.required_kwh - ev.efficiency * ev.charger_kw * ev.dt_h * left
    return np.where(ahead, np.maximum(floor, 0.0), 0.0)


def ev_reachable_kwh(ev: EVFleet, tau: IntArray) -> FloatArray:
    """Per interval of ``tau`` (L,) and car (L, n): the most it can hold at the
    interval's end, charging at full power whenever plugged in from its state
    now (before the trip it makes on arriving in the next interval), with
    each trip taken out and an empty car left empty."""
    s = ev.soc_kwh.astype(np.float64)
    out = np.empty((tau.size, s.size))
    step = ev.charger_kw * ev.efficiency * ev.dt_h
    size = ev.trip_kwh.shape[0]
    for k, t in enumerate(tau.tolist()):
        s = np.minimum(s + np.where(ev.plugged[t], step, 0.0), ev.capacity_kwh)
        out[k] = s
        if t + 1 < size:
            s = np.maximum(s - ev.trip_kwh[t + 1], 0.0)
    return out


class _Count:
    """Consecutive indices handed out block by block, and the household
    (its position among those with a device) each belongs to."""

    def __init__(self) -> None:
        self.n = 0
        self.owners: list[IntArray] = []

    def block(self, slots: int, owner: IntArray) -> IntArray:
        idx = self.n + np.arange(slots * owner.size, dtype=np.int64).reshape(slots, owner.size)
        self.n += idx.size
        self.owners.append(np.broadcast_to(owner, idx.shape).ravel())
        return idx

    def owner(self) -> IntArray:
        return np.concatenate(self.owners) if self.owners else np.zeros(0, np.int64)


class Ring:
    """The LP's structure for ``n`` households on ``slots`` slots, its heat
    rows at the COPs of window ``w`` (whose start is the ring's origin);
    ``cop_times`` (S,) are the intervals whose outdoor temperature set each
    slot's COP (-1: none yet)."""

    def __init__(self, n: int, slots: int, dt_h: float, battery: BatteryFleet | None,
                 ev: EVFleet | None, heat_pump: HeatPumpFleet | None, w: Window) -> None:
        self.n, self.slots, self.dt_h, self.origin = n, slots, dt_h, w.t
        self.battery, self.ev, self.heat_pump = battery, ev, heat_pump
        none = np.zeros(0, np.int64)
        self.hb = none if battery is None else np.flatnonzero(battery.capacity_kwh > 0)
        self.he = none if ev is None else np.flatnonzero(ev.capacity_kwh > 0)
        self.jv = none if ev is None else np.flatnonzero(ev.v2g[self.he])  # positions in he
        self.hh = none if heat_pump is None else np.flatnonzero(heat_pump.p_max_kw > 0)
        self.ha = np.union1d(np.union1d(self.hb, self.he), self.hh)
        c, r, S = _Count(), _Count(), slots
        at = {name: np.searchsorted(self.ha, who) for name, who in
              (("a", self.ha), ("b", self.hb), ("e", self.he), ("h", self.hh))}
        self.imp = c.block(S, at["a"])
        self.bc, self.bd, self.bs = (c.block(S, at["b"]) for _ in range(3))
        self.ee, self.es = (c.block(S, at["e"]) for _ in range(2))
        self.ed = c.block(S, at["e"][self.jv])
        self.hp, self.ht, self.hu, self.hw = (c.block(S, at["h"]) for _ in range(4))
        self.bal, self.bat = r.block(S, at["a"]), r.block(S, at["b"])
        self.car = r.block(S, at["e"])
        self.heat, self.band = (r.block(S, at["h"]) for _ in range(2))
        self.ncol, self.nrow = c.n, r.n
        self.col_owner, self.row_owner = c.owner(), r.owner()

        m = Triplets()
        m.put(self.bal, self.imp, 1.0)
        m.put(self.bal[:, at["b"]], self.bc, -1.0)
        m.put(self.bal[:, at["b"]], self.bd, 1.0)
        m.put(self.bal[:, at["e"]], self.ee, -1.0)
        m.put(self.bal[:, at["e"][self.jv]], self.ed, 1.0)
        m.put(self.bal[:, at["h"]], self.hp, -1.0)
        if battery is not None:
            m.put(self.bat, self.bs, 1.0)
            m.put(self.bat, np.roll(self.bs, 1, axis=0), -1.0)
            m.put(self.bat, self.bc, -battery.efficiency_charge[self.hb])
            m.put(self.bat, self.bd, 1.0 / battery.efficiency_discharge[self.hb])
        if ev is not None:
            m.put(self.car, self.es, 1.0)
            m.put(self.car, np.roll(self.es, 1, axis=0), -1.0)
            m.put(self.car, self.ee, -ev.efficiency[self.he])
            m.put(self.car[:, self.jv], self.ed, 1.0 / ev.efficiency[self.he[self.jv]])
        self.cop_times = np.full(S, -1, np.int64)
        if heat_pump is not None:
            hp, hh = heat_pump, self.hh
            self.decay = np.exp(-dt_h / (hp.r_k_per_kw[hh] * hp.c_kwh_per_k[hh]))
            m.put(self.heat, self.ht, 1.0)
            m.put(self.heat, np.roll(self.ht, 1, axis=0), -self.decay)
            coefficient = self.heat_coefficient(np.ones((S, hh.size)))
            times = w.t + np.arange(w.length)
            coefficient[self.slot(times)] = self.heat_coefficient(cop(w.outdoor_c[:, hh]))
            self.cop_times[self.slot(times)] = times
            m.put(self.heat, self.hp, coefficient)
            m.put(self.band, self.ht, 1.0)
            m.put(self.band, self.hu, 1.0)
            m.put(self.band, self.hw, -1.0)
        self.a = m.matrix(self.nrow, self.ncol)

    def slot(self, tau: npt.ArrayLike) -> IntArray:
        """The slot of interval ``tau`` (the state slot of ``t`` is ``slot(t - 1)``)."""
        return (np.asarray(tau, np.int64) + 1 - self.origin) % self.slots

    def heat_coefficient(self, cop_: FloatArray) -> FloatArray:
        """The coefficient of the electric energy (kWh) in the heat rows, minus
        ``(1 - a) R cop / dt``, at COPs ``cop_`` (.., m)."""
        assert self.heat_pump is not None
        r = self.heat_pump.r_k_per_kw[self.hh]
        return -(1.0 - self.decay) * r * cop_ / self.dt_h

    def cop_changes(self, w: Window) -> tuple[IntArray, IntArray, FloatArray]:
        """Rows, columns and values of the heat coefficients the window's slots
        need and do not have yet (their COP set for another interval); from
        here on they count as set."""
        if self.heat_pump is None or not self.hh.size:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        times = w.t + np.arange(w.length)
        k = np.flatnonzero(self.cop_times[self.slot(times)] != times)
        s = self.slot(times[k])
        self.cop_times[s] = times[k]
        vals = self.heat_coefficient(cop(w.outdoor_c[k][:, self.hh]))
        return self.heat[s].ravel(), self.hp[s].ravel(), vals.ravel()

    def costs_and_bounds(self, w: Window) -> tuple[FloatArray, ...]:
        """``c, lb, ub, rl, ru`` of the window (see the module docstring)."""
        dt, n_col = self.dt_h, self.ncol
        c, lb, ub = np.zeros(n_col), np.zeros(n_col), np.zeros(n_col)
        rl, ru = np.full(self.nrow, -np.inf), np.full(self.nrow, np.inf)
        k = self.slot(w.t + np.arange(w.length))
        s0 = int(self.slot(w.t - 1))
        price, feed = w.price[:, None], w.feed[:, None]
        c[self.imp[k]], ub[self.imp[k]] = price - feed, np.inf
        rl[self.bal[k]] = w.base_kwh[:, self.ha]
        if self.battery is not None:
            b, hb = self.battery, self.hb
            c[self.bc[k]], c[self.bd[k]] = feed, -feed
            ub[self.bc[k]] = ub[self.bd[k]] = b.power_kw[hb] * dt
            lb[self.bs[k]], ub[self.bs[k]] = b.soc_min_kwh[hb], b.capacity_kwh[hb]
            rl[self.bat[k]] = ru[self.bat[k]] = 0.0
            lb[self.bs[s0]] = ub[self.bs[s0]] = w.battery_soc_kwh[hb]
        if self.ev is not None:
            ev, he = self.ev, self.he
            tau = w.t + np.arange(w.length)
            plugged = ev.plugged[tau][:, he]
            trip_at = np.minimum(tau + 1, ev.trip_kwh.shape[0] - 1)
            trip = np.where((tau + 1 < ev.trip_kwh.shape[0])[:, None], ev.trip_kwh[trip_at][:, he],
                            0.0)
            c[self.ee[k]], c[self.ed[k]] = feed, -feed
            ub[self.ee[k]] = np.where(plugged, ev.charger_kw[he] * dt, 0.0)
            ub[self.ed[k]] = ub[self.ee[k]][:, self.jv]
            # a car that cannot reach its requirement charges at full power (its
            # shortfall is the fleet's to report), so the plan stays feasible
            lb[self.es[k]] = np.minimum(ev_floor_kwh(ev, tau), ev_reachable_kwh(ev, tau))[:, he]
            ub[self.es[k]] = ev.capacity_kwh[he]
            rl[self.car[k]] = ru[self.car[k]] = -trip
            lb[self.es[s0]] = ub[self.es[s0]] = w.ev_soc_kwh[he]
        if self.heat_pump is not None:
            hp, hh = self.heat_pump, self.hh
            out = w.outdoor_c[:, hh]
            c[self.hp[k]] = feed
            ub[self.hp[k]] = np.where(out < hp.heating_limit_c, hp.p_max_kw[hh] * dt, 0.0)
            lb[self.ht[k]], ub[self.ht[k]] = -np.inf, np.inf
            c[self.hu[k]] = c[self.hw[k]] = w.comfort_price_per_kh * dt
            ub[self.hu[k]] = ub[self.hw[k]] = np.inf
            r = hp.r_k_per_kw[hh]
            rl[self.heat[k]] = ru[self.heat[k]] = (1.0 - self.decay) * (out + r * hp.gains_kw)
            rl[self.band[k]] = hp.setpoint_c[hh] - hp.band_k[hh]
            ru[self.band[k]] = hp.setpoint_c[hh] + hp.band_k[hh]
            lb[self.ht[s0]] = ub[self.ht[s0]] = w.indoor_c[hh]
        return c, lb, ub, rl, ru

    def crash(self, w: Window, c: FloatArray, lb: FloatArray, ub: FloatArray
              ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
        """A starting basis (codes of :data:`STATUS`): in every interval of the
        window the import, the batteries' and cars' states and the indoor
        temperature are basic in their own rows (the devices idle, each chain
        triangular from the state slot), every other row's slack is basic,
        every other column sits at a bound its cost likes."""
        k = self.slot(w.t + np.arange(w.length))
        col = np.where(np.isfinite(lb) & ~((c < 0) & np.isfinite(ub)), 0,
                       np.where(np.isfinite(ub), 2, 3)).astype(np.int8)
        row = np.ones(self.nrow, np.int8)
        for cols, rows in ((self.imp, self.bal), (self.bs, self.bat), (self.es, self.car),
                           (self.ht, self.heat)):
            col[cols[k]], row[rows[k]] = 1, 0
        return col, row

    def read(self, w: Window, x: FloatArray, row_dual: FloatArray
             ) -> dict[str, FloatArray]:
        """The solution's device arrays (L, n), 0 (indoor: NaN) without the
        device, and the households' marginal value of energy (L, n): the
        feed-in plus the dual of their import row (without devices: the price
        where they import, else the feed-in)."""
        k = self.slot(w.t + np.arange(w.length))
        shape = (w.length, self.n)

        def spread(block: IntArray, who: IntArray, fill: float = 0.0) -> FloatArray:
            out = np.full(shape, fill)
            out[:, who] = x[block[k]]
            return out

        ev = spread(self.ee, self.he)
        ev[:, self.he[self.jv]] -= x[self.ed[k]]
        value = np.where(w.base_kwh > 0, w.price[:, None], w.feed[:, None])
        value[:, self.ha] = w.feed[:, None] + row_dual[self.bal[k]]
        return {"battery_kwh": spread(self.bc, self.hb) - spread(self.bd, self.hb),
                "battery_soc_kwh": spread(self.bs, self.hb), "ev_kwh": ev,
                "ev_soc_kwh": spread(self.es, self.he), "heat_pump_kwh": spread(self.hp, self.hh),
                "indoor_c": spread(self.ht, self.hh, np.nan), "marginal_value_per_kwh": value}


#: HiGHS's basis status of each code of :meth:`Ring.crash`.
STATUS = np.array([highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic,
                   highspy.HighsBasisStatus.kUpper, highspy.HighsBasisStatus.kZero], dtype=object)


class Blocks:
    """The ring's LP solved by its diagonal blocks: nothing couples two
    households, so HiGHS solves the households with a device in groups of
    ``group`` (all in one when None), each block a :class:`KeptRing` of its
    own started from the crash basis and kept for the next window. An exact
    split of the one LP, and faster: HiGHS's time per simplex iteration grows
    with the LP's size while the iterations per household do not shrink."""

    def __init__(self, ring: Ring, w: Window, group: int | None) -> None:
        self.ring = ring
        size = max(ring.ha.size, 1) if group is None else group
        n_g = -(-ring.ha.size // size)
        small = np.uint16 if n_g < 2**16 else np.int64  # a radix sort
        col_g = (ring.col_owner // size).astype(small)
        row_g = (ring.row_owner // size).astype(small)
        self.oc, self.orow = np.argsort(col_g, kind="stable"), np.argsort(row_g, kind="stable")
        self.cb = np.searchsorted(col_g[self.oc], np.arange(n_g + 1))
        self.rb = np.searchsorted(row_g[self.orow], np.arange(n_g + 1))
        self.col_at, self.row_at = _inverse(self.oc), _inverse(self.orow)
        c, lb, ub, rl, ru = ring.costs_and_bounds(w)
        col_basis, row_basis = ring.crash(w, c, lb, ub)
        a = ring.a[self.orow][:, self.oc].tocsc()  # block-diagonal
        self.lps: list[KeptRing] = []
        for g in range(n_g):
            j, i = slice(self.cb[g], self.cb[g + 1]), slice(self.rb[g], self.rb[g + 1])
            block = a[:, j]
            sub = sp.csc_matrix((block.data, block.indices - self.rb[g], block.indptr),
                                shape=(i.stop - i.start, j.stop - j.start))
            oc, orow = self.oc[j], self.orow[i]
            lp = KeptRing(c[oc], lb[oc], ub[oc], sub, rl[orow], ru[orow])
            lp.set_basis(col_basis[oc], row_basis[orow])
            self.lps.append(lp)

    def solve(self, w: Window) -> tuple[FloatArray, FloatArray]:
        """Primal values and row duals of window ``w``'s LP (after putting
        in the COPs it needs)."""
        rows, cols, vals = self.ring.cop_changes(w)
        at_row, at_col = self.row_at[rows], self.col_at[cols]
        owner = np.searchsorted(self.cb, at_col, side="right") - 1
        c, lb, ub, rl, ru = self.ring.costs_and_bounds(w)
        c, lb, ub, rl, ru = c[self.oc], lb[self.oc], ub[self.oc], rl[self.orow], ru[self.orow]
        x, y = np.zeros(c.size), np.zeros(rl.size)
        for g, lp in enumerate(self.lps):
            j, i = slice(self.cb[g], self.cb[g + 1]), slice(self.rb[g], self.rb[g + 1])
            mine = owner == g
            lp.change_coefficients(at_row[mine] - i.start, at_col[mine] - j.start, vals[mine])
            try:
                sol = lp.solve(c[j], lb[j], ub[j], rl[i], ru[i], what="MPC plan")
            except SolverError:  # numerical trouble from the kept basis: once more from
                # the crash basis (HiGHS reports 'unknown' after a bad basis change)
                col, row = self.ring.crash(w, *(v[self.col_at] for v in (c, lb, ub)))
                lp.set_basis(col[self.oc[j]], row[self.orow[i]])
                sol = lp.solve(c[j], lb[j], ub[j], rl[i], ru[i], what="MPC plan")
            x[j], y[i] = sol.x, sol.row_dual
        return x[self.col_at], y[self.row_at]


def _inverse(order: IntArray) -> IntArray:
    """The inverse of a permutation."""
    out = np.empty_like(order)
    out[order] = np.arange(order.size)
    return out


class KeptRing(KeptLP):
    """A :class:`KeptLP` whose matrix coefficients can change in place (the
    heat rows' COP of a slot that moves to a new interval) and that can
    start from a given basis."""

    def set_basis(self, col: npt.NDArray[np.int8], row: npt.NDArray[np.int8]) -> None:
        """Start the next solve from this basis (codes of :data:`STATUS`)."""
        basis = highspy.HighsBasis()
        basis.col_status, basis.row_status = STATUS[col].tolist(), STATUS[row].tolist()
        basis.valid = True
        self._h.setBasis(basis)

    def change_coefficients(self, rows: IntArray, cols: IntArray, vals: FloatArray) -> None:
        """Set existing nonzeros ``A[rows, cols] = vals`` in HiGHS and in :attr:`a`."""
        for i, j, v in zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True):
            self._h.changeCoeff(i, j, v)
        if rows.size:
            self.a[rows, cols] = vals
