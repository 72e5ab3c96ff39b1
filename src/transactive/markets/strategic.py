"""Strategic offers: the profit-maximising step offer of a generator owner that
anticipates the network-constrained clearing (a bilevel model, solved as one
MILP), and the market power it exercises.

The market (lower level)
    Every in-service generator offers its capacity as steps (*blocks*): a
    linear cost is one block at ``cost_per_mwh``; a quadratic cost is cut into
    ``blocks`` equal blocks over ``[p_min, p_max]``, each priced at the
    cost's mean slope over it, ``c1 + c2 (a + b)`` (so the offer curve's area
    is the true cost at every block edge); a piecewise-linear cost gives one
    block per segment. Output below ``p_min`` is a fixed (must-run) block.
    Rivals offer their blocks at cost; the *agent* (one owner of one or more
    generators) offers each of its blocks at a price of its choice in
    ``[offer_floor, price_cap]``, non-decreasing along each generator's
    blocks. The operator clears the offers as the DC-OPF of
    :mod:`transactive.grid.dcopf` does (PTDF form, inelastic loads) with the two
    penalty prices markets clear with: load may be shed at every bus at
    ``price_cap`` (the value of lost load), and a branch limit may be
    exceeded at ``penalty`` per MW. Where the clearing sheds nothing and
    exceeds no limit it is the DC-OPF's clearing (``tests/test_strategic.py``
    checks prices and cost against :func:`~transactive.grid.dcopf.dcopf`).
    Branches whose flow cannot reach their rating for any output within the
    units' bounds are left out (they can never bind).

The agent (upper level)
    maximises ``sum_b (LMP at its bus - true cost) * output`` over its blocks.

One MILP (after Ruiz & Conejo 2009, *IEEE Trans. Power Systems* 24(4),
1855-1866): the clearing is replaced by its KKT conditions: primal
feasibility, the stationarity of every block (``offer - LMP + nu - rho =
0``) and every limit's relaxation (``penalty - mu - rho_s = 0``), and the
complementarity of each bound and limit with its dual, written with one
binary and two big-Ms each. The agent's revenue ``LMP * output`` is
bilinear; complementarity turns it into ``offer * output + nu * p_hi - rho
* p_lo`` and strong duality of the clearing turns the sum of ``offer *
output`` over the agent's blocks into the clearing's dual objective less
the rivals' offers, penalties and duals: linear. HiGHS solves the MILP to
optimality; its binaries are then fixed and the LP solved again for exact
prices. The model is optimistic, as bilevel models are: where the clearing
has several optima (typically a tie at the agent's offer), the one best
for the agent is taken; re-clearing at offers just below reaches the same
profit (the tests check both sides against brute force).

The big-Ms are derived, not guessed:

* primal: a block's output from either bound is at most ``p_hi - p_lo``;
  each limit row's flow lies in ``[f_lo, f_hi]``, the flows of every unit
  and load within its bounds (``f0 + sum_n min/max(PTDF * lo_n, PTDF * hi_n)``),
  so its slack is at most ``rating + relax_max`` less the least signed
  flow (``f_lo`` for the upper limit) and its relaxation
  at most ``relax_max = f_hi - rating``;
* duals: a limit's dual is at most ``penalty`` (its relaxation's
  stationarity), so the congestion part of bus ``n``'s price, ``pi_n =
  sum_k sign_k PTDF_kn mu_k``, lies in ``penalty * [sum min(0, .), sum
  max(0, .)]``. Some bus has a unit or a shed load below its upper bound
  (the capacity is positive), whose price is then at most its offer; and
  some bus has a unit above its lower bound or load shed, whose price is at
  least its offer (unless the must-run output alone meets the load). So the
  reference price lies in ``[o_min + min pi_lo, o_max + max pi_hi]`` and
  bus ``n``'s in that less ``[pi_hi_n, pi_lo_n]``, where ``o_min``/``o_max``
  are the least and greatest offer any block can make (with the price cap).
  A block's upper-bound dual is then at most ``max(0, lmp_hi - offer_lo)``
  and its lower-bound dual at most ``max(0, offer_hi - lmp_lo)``.

Units: MW, MWh of one hour, prices per MWh, profit per hour.

The module sits in ``markets`` (layer 3): it needs only the grid below it
and measures a market design, as ``audit`` and ``games`` do; an agent's
bidding strategy may call it from the layer above.

Examples
--------
Two buses, a 100 MW line. The agent (generator 0, 200 MW at 10) at bus 1,
a rival (200 MW at 30) and the 150 MW load at bus 2: the agent is paid the
rival's price, so it offers 30 and sells the 100 MW the line carries (the
rival tops up 50 MW): profit (30 - 10) * 100 = 2,000.

>>> from transactive.grid.network import Network
>>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
...               branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1], "rate_a_mw": [100.0]},
...               gen={"bus": [1, 2], "p_max_mw": [200.0, 200.0], "cost_per_mwh": [10.0, 30.0]},
...               load={"bus": [2], "p_mw": [150.0]})
>>> out = strategic_offer(net, [0], price_cap_per_mwh=100.0)
>>> out.offer_per_mwh.tolist(), out.gen_p_mw.tolist(), round(out.profit, 6)
([30.0], [100.0, 50.0], 2000.0)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, SolverError
from transactive.grid import matrices
from transactive.grid._lp import KeptLP, LPSolution, Triplets, solve_highs
from transactive.grid.dcopf import branch_limits
from transactive.grid.network import Network
from transactive.markets.power import hhi, lerner, lerner_index, residual_supply_index

__all__ = ["Cleared", "OfferMarket", "StrategicOutcome", "brute_force", "strategic_offer"]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Blocks:
    """The offer blocks of the clearing: every generator's, then shed load."""

    gen: IntArray       # generator row (-1: load shed at its bus)
    pos: IntArray       # bus position
    lo: Array           # MW
    hi: Array
    cost: Array         # true cost (rivals offer it), per MWh
    agent: BoolArray    # blocks of the agent's generators
    free: BoolArray     # blocks the agent prices (the agent's, lo < hi)


def _gen_blocks(net: Network, rows: IntArray, blocks: int
                ) -> tuple[IntArray, Array, Array, Array]:
    """(generator row, lo, hi, price) of the blocks of generators ``rows``:
    a block's output (MW) lies in ``[lo, hi]``; a generator's output is the
    sum of its blocks'."""
    pmin, pmax = net.column("gen", "p_min_mw"), net.column("gen", "p_max_mw")
    c1, c2 = net.column("gen", "cost_per_mwh"), net.column("gen", "cost_per_mw2h")
    pwl_g = net.column("pwl_cost", "gen")
    pwl_p, pwl_c = net.column("pwl_cost", "p_mw"), net.column("pwl_cost", "cost_per_h")
    gens: list[Array] = []
    parts: list[tuple[Array, Array, Array]] = []
    for g in rows.tolist():
        a, b = float(pmin[g]), float(pmax[g])
        at = pwl_g == g
        if at.any():
            edges = np.unique(np.clip(np.r_[pwl_p[at], a, b], a, b))
            price = np.diff(np.interp(edges, pwl_p[at], pwl_c[at])) / np.diff(edges)
        else:
            edges = np.linspace(a, b, blocks + 1) if c2[g] > 0 else np.array([a, b])
            price = c1[g] + c2[g] * (edges[:-1] + edges[1:])
        width = np.diff(edges)
        keep = width > 0
        lo, hi, price = np.zeros(int(keep.sum())), width[keep], price[keep]
        if a > 0:  # must-run output: a fixed block at its mean cost (a piecewise
            # cost's first slope: its cost at 0 is not given)
            first = float(price[0]) if at.any() and price.size else float(c1[g] + c2[g] * a)
            lo, hi, price = np.r_[a, lo], np.r_[a, hi], np.r_[first, price]
        gens.append(np.full(lo.size, g, dtype=np.int64))
        parts.append((lo, hi, price))
    if not parts:
        return (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    lo_, hi_, p_ = (np.concatenate(c) for c in zip(*parts, strict=True))
    return np.concatenate(gens), lo_, hi_, p_


def _agent_rows(net: Network, agent: npt.ArrayLike) -> IntArray:
    try:
        rows = np.unique(np.asarray(agent, dtype=np.int64).ravel())
    except (TypeError, ValueError):
        raise InputError("agent", "must be generator rows (0-based positions in the "
                                  "gen table)") from None
    if rows.size == 0:
        raise InputError("agent", "names no generator")
    bad = (rows < 0) | (rows >= net.n_gen)
    if bad.any():
        raise InputError("agent", f"generator {int(rows[bad][0])} is not in the case "
                                  f"(rows 0..{net.n_gen - 1})")
    off = ~net.column("gen", "in_service")[rows]
    if off.any():
        raise InputError("agent", f"generator {int(rows[off][0])} is out of service")
    return rows


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InputError(name, f"must be a number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Cleared:
    """One clearing of the offers: block outputs, relaxed limits (MW) and
    prices (per MWh); ``mu`` is each limit row's shadow price (>= 0)."""

    q_mw: Array
    relax_mw: Array
    lmp: Array
    mu: Array


class OfferMarket:
    """The clearing of step offers on a network, with the agent's blocks
    apart (see the module notes): built once, cleared at any offers of the
    agent (:meth:`clear`) or solved for the agent's best offer
    (:func:`strategic_offer`).

    Parameters
    ----------
    net : Network
        A connected case with generator costs; its loads are inelastic.
    agent : sequence of int
        The agent's generators, rows of ``net.gen`` (0-based).
    price_cap_per_mwh : float
        The highest offer and the value of lost load (> 0, at least every
        rival's dearest block).
    penalty_per_mwh : float, optional
        The price of exceeding a branch limit by 1 MW (default: the price cap).
    blocks : int
        Blocks per generator with a quadratic cost (>= 1).
    offer_floor_per_mwh : float
        The lowest offer the agent may make (below ``price_cap_per_mwh``).
    rating : {"a", "b", "c"} or float
        Which branch rating limits flows (as :func:`~transactive.grid.dcopf.dcopf`).
    """

    def __init__(self, net: Network, agent: npt.ArrayLike, *, price_cap_per_mwh: float = 1000.0,
                 penalty_per_mwh: float | None = None, blocks: int = 3,
                 offer_floor_per_mwh: float = 0.0, rating: str | float = "a") -> None:
        cap = _positive("price_cap_per_mwh", price_cap_per_mwh)
        pen = cap if penalty_per_mwh is None else _positive("penalty_per_mwh", penalty_per_mwh)
        if isinstance(blocks, bool) or not isinstance(blocks, int | np.integer) or blocks < 1:
            raise InputError("blocks", f"must be a whole number >= 1, got {blocks!r}")
        floor = float(offer_floor_per_mwh)
        if not math.isfinite(floor) or floor >= cap:
            raise InputError("offer_floor_per_mwh", f"must be finite and below the price cap "
                                                    f"{cap:g}, got {offer_floor_per_mwh!r}")
        rows = _agent_rows(net, agent)
        p_min = net.column("gen", "p_min_mw")
        on = np.flatnonzero(net.column("gen", "in_service"))
        if (p_min[on] < 0).any():
            g = int(on[p_min[on] < 0][0])
            raise InputError("gen.p_min_mw", "a generator with p_min_mw < 0 (a dispatchable "
                                             "load) cannot offer steps of supply", row=g)
        self.net, self.agent_rows = net, rows
        self.price_cap, self.penalty, self.offer_floor = cap, pen, floor
        flows = matrices.DCPowerFlow(net)
        load = net.bus_load_mw
        gen, lo, hi, cost = _gen_blocks(net, on, int(blocks))
        rival = ~np.isin(gen, rows)
        if rival.any() and cost[rival].max() > cap:
            raise InputError("price_cap_per_mwh", f"{cap:g} is below a rival's block at "
                                                  f"{cost[rival].max():g}")
        shed = np.flatnonzero(load > 0)
        agent_block = np.isin(gen, rows)
        self.blocks = _Blocks(
            gen=np.r_[gen, np.full(shed.size, -1)], pos=np.r_[net.gen_position[gen], shed],
            lo=np.r_[lo, np.zeros(shed.size)], hi=np.r_[hi, load[shed]],
            cost=np.r_[cost, np.full(shed.size, cap)],
            agent=np.r_[agent_block, np.zeros(shed.size, bool)],
            free=np.r_[agent_block & (hi > lo), np.zeros(shed.size, bool)])
        b = self.blocks
        self.demand_mw = float(load.sum())
        if b.lo.sum() > self.demand_mw:
            raise InputError("gen.p_min_mw", f"the must-run output {b.lo.sum():.6g} MW exceeds "
                                             f"the load {self.demand_mw:.6g} MW")
        # limit rows that some output within the bounds can reach (both directions)
        limit = branch_limits(net, rating)
        f0 = flows.flows(-load)
        lim = np.flatnonzero(np.isfinite(limit))
        h = flows.ptdf_rows(lim)
        inj_lo = np.bincount(b.pos, b.lo, net.n_bus)
        inj_hi = np.bincount(b.pos, b.hi, net.n_bus)
        f_hi = f0[lim] + np.maximum(h * inj_lo, h * inj_hi).sum(axis=1)
        f_lo = f0[lim] + np.minimum(h * inj_lo, h * inj_hi).sum(axis=1)
        up, down = f_hi > limit[lim] + 1e-9, f_lo < -limit[lim] - 1e-9
        self.line = np.r_[lim[up], lim[down]]
        self.sign = np.r_[np.ones(int(up.sum())), -np.ones(int(down.sum()))]
        self.ptdf = np.vstack([h[up], -h[down]])          # sign * PTDF, rows x buses
        self.rhs = np.r_[limit[lim][up] - f0[lim][up], limit[lim][down] + f0[lim][down]]
        reach = np.r_[f_hi[up], -f_lo[down]]              # most of sign * flow
        least = np.r_[f_lo[up], -f_hi[down]]              # least of sign * flow
        rating_mw = limit[self.line]
        self.relax_max = reach - rating_mw
        self.slack_max = rating_mw + self.relax_max - least
        # price bounds (module notes)
        pi_lo = pen * np.minimum(self.ptdf, 0.0).sum(axis=0)
        pi_hi = pen * np.maximum(self.ptdf, 0.0).sum(axis=0)
        free_lo = np.where(b.free, floor, b.cost)
        free_hi = np.where(b.free, cap, b.cost)
        self.ref_price_bounds = (float(free_lo.min() + pi_lo.min()),
                                 float(max(free_hi.max(), cap) + pi_hi.max()))
        self.pi_bounds = (pi_lo, pi_hi)
        self.lmp_lo = self.ref_price_bounds[0] - pi_hi
        self.lmp_hi = self.ref_price_bounds[1] - pi_lo
        self.nu_max = np.maximum(0.0, self.lmp_hi[b.pos] - free_lo)
        self.rho_max = np.maximum(0.0, free_hi - self.lmp_lo[b.pos])
        self._lp: KeptLP | None = None

    @property
    def n_free(self) -> int:
        """The number of blocks the agent prices."""
        return int(self.blocks.free.sum())

    @property
    def free_gen(self) -> IntArray:
        """The generator row of each block the agent prices, in order."""
        return self.blocks.gen[self.blocks.free]

    def offers(self, offer_per_mwh: npt.ArrayLike) -> Array:
        """Every block's offer with the agent's priced blocks at ``offer_per_mwh``
        (one price per priced block, or one for all of them)."""
        o = np.broadcast_to(np.asarray(offer_per_mwh, float), (self.n_free,))
        out = self.blocks.cost.copy()
        out[self.blocks.free] = o
        return out

    def _solve(self, c: Array, lb: Array, ub: Array) -> LPSolution:
        """The clearing LP at these costs and column bounds (blocks, then
        relaxations), kept in HiGHS and re-solved warm from call to call."""
        b, k = self.blocks, self.line.size
        rl = np.r_[self.demand_mw, np.full(k, -np.inf)]
        ru = np.r_[self.demand_mw, self.rhs]
        if self._lp is None:
            nb = b.lo.size
            t = Triplets()
            t.put(0, np.arange(nb), 1.0)
            r, cc = np.nonzero(self.ptdf[:, b.pos])
            t.put(1 + r, cc, self.ptdf[:, b.pos][r, cc])
            t.put(1 + np.arange(k), nb + np.arange(k), -1.0)
            self._lp = KeptLP(c, lb, ub, t.matrix(1 + k, nb + k), rl, ru)
        return self._lp.solve(c, lb, ub, rl, ru, what="clearing")

    def clear(self, offer_per_mwh: npt.ArrayLike) -> Cleared:
        """Clear the market with the agent's priced blocks at these offers."""
        b, k = self.blocks, self.line.size
        sol = self._solve(np.r_[self.offers(offer_per_mwh), np.full(k, self.penalty)],
                          np.r_[b.lo, np.zeros(k)], np.r_[b.hi, np.full(k, np.inf)])
        mu = -sol.row_dual[1:]
        lam = float(sol.row_dual[0])
        return Cleared(sol.x[:b.lo.size], sol.x[b.lo.size:], lam - mu @ self.ptdf, mu)

    def deliverable_mw(self, gens: npt.ArrayLike) -> float:
        """The most load the other generators can serve through the network,
        every limit held, with generators ``gens`` (rows) off: the load less
        the least that must be shed. Below the load, ``gens`` are pivotal."""
        b, k = self.blocks, self.line.size
        off = np.isin(b.gen, np.asarray(gens, dtype=np.int64)) & (b.gen >= 0)
        sol = self._solve(np.r_[(b.gen < 0).astype(np.float64), np.zeros(k)],
                          np.r_[np.where(off, 0.0, b.lo), np.zeros(k)],
                          np.r_[np.where(off, 0.0, b.hi), np.zeros(k)])
        return self.demand_mw - sol.objective

    def agent_profit(self, cleared: Cleared) -> float:
        """The agent's profit at a clearing: its blocks' outputs times their
        bus's price less their true cost, per hour."""
        b = self.blocks
        a = b.agent
        return float(np.sum((cleared.lmp[b.pos[a]] - b.cost[a]) * cleared.q_mw[a]))


@dataclass(frozen=True)
class _Mpec:
    """The solved MILP: the agent's offers, the clearing it leads to, its size."""

    offer_per_mwh: Array
    cleared: Cleared
    profit: float
    n_binaries: int
    solve_time_s: float


def _solve_mpec(m: OfferMarket) -> _Mpec:
    """The agent's best offers by the KKT reformulation (module notes)."""
    b = m.blocks
    nb, k, nf = b.lo.size, m.line.size, m.n_free
    used, u_of = np.unique(b.pos, return_inverse=True)
    nu = used.size
    flex = np.flatnonzero(b.hi > b.lo)
    nx = flex.size
    sizes = {"q": nb, "relax": k, "alpha": nf, "lam": 1, "pi": nu, "mu": k, "rs": k,
             "nu": nb, "rho": nb, "slack": k, "zu": nx, "zl": nx, "y": k, "v": k}
    at: dict[str, int] = {}
    n_col = 0
    for name, size in sizes.items():
        at[name] = n_col
        n_col += size

    def cols(name: str, idx: npt.ArrayLike | None = None) -> IntArray:
        base = at[name] + np.arange(sizes[name])
        return base if idx is None else base[np.asarray(idx)]

    pen, cap = m.penalty, m.price_cap
    width = b.hi - b.lo
    pi_lo, pi_hi = m.pi_bounds
    bounds = {"q": (b.lo, b.hi), "relax": (0.0, m.relax_max), "alpha": (m.offer_floor, cap),
              "lam": m.ref_price_bounds, "pi": (pi_lo[used], pi_hi[used]), "mu": (0.0, pen),
              "rs": (0.0, pen), "nu": (0.0, m.nu_max), "rho": (0.0, m.rho_max),
              "slack": (0.0, m.slack_max), "zu": (0.0, 1.0), "zl": (0.0, 1.0), "y": (0.0, 1.0),
              "v": (0.0, 1.0)}
    lb, ub = np.zeros(n_col), np.zeros(n_col)
    for name, (lo, hi) in bounds.items():
        lb[cols(name)], ub[cols(name)] = lo, hi
    integer = np.zeros(n_col, bool)
    integer[at["zu"]:] = True

    t = Triplets()
    rl: list[Array] = []
    ru: list[Array] = []
    row = 0

    def rows(n: int, lo: npt.ArrayLike, hi: npt.ArrayLike) -> IntArray:
        nonlocal row
        r = row + np.arange(n)
        rl.append(np.broadcast_to(np.asarray(lo, float), (n,)))
        ru.append(np.broadcast_to(np.asarray(hi, float), (n,)))
        row += n
        return r

    # primal: balance and limit rows (sign * flow - relax + slack = rating - sign * f0)
    t.put(rows(1, m.demand_mw, m.demand_mw), cols("q"), 1.0)
    r = rows(k, m.rhs, m.rhs)
    hk = m.ptdf[:, b.pos]
    i, j = np.nonzero(hk)
    t.put(r[i], cols("q", j), hk[i, j])
    t.put(r, cols("relax"), -1.0)
    t.put(r, cols("slack"), 1.0)
    # congestion part of each used bus's price: pi_u = sum_k ptdf[k, u] mu_k
    r = rows(nu, 0.0, 0.0)
    t.put(r, cols("pi"), 1.0)
    hu = m.ptdf[:, used]
    i, j = np.nonzero(hu)
    t.put(r[j], cols("mu", i), -hu[i, j])
    # stationarity of every block: offer - (lam - pi) + nu - rho = 0
    r = rows(nb, np.where(b.free, 0.0, -b.cost), np.where(b.free, 0.0, -b.cost))
    t.put(r[b.free], cols("alpha"), 1.0)
    t.put(r, cols("lam", np.zeros(nb, np.int64)), -1.0)
    t.put(r, cols("pi", u_of), 1.0)
    t.put(r, cols("nu"), 1.0)
    t.put(r, cols("rho"), -1.0)
    # stationarity of every relaxation: penalty - mu - rs = 0
    r = rows(k, pen, pen)
    t.put(r, cols("mu"), 1.0)
    t.put(r, cols("rs"), 1.0)
    # complementarity of the blocks' bounds
    fx = np.arange(nx)
    for dual, z, big, sign, bound in (("nu", "zu", m.nu_max, -1.0, -b.lo),
                                      ("rho", "zl", m.rho_max, 1.0, b.hi)):
        r = rows(nx, -np.inf, 0.0)
        t.put(r, cols(dual, flex), 1.0)
        t.put(r, cols(z, fx), -big[flex])
        r = rows(nx, -np.inf, bound[flex])      # (distance from the bound) <= width (1 - z)
        t.put(r, cols("q", flex), sign)
        t.put(r, cols(z, fx), width[flex])
    r = rows(nx, -np.inf, 1.0)
    t.put(r, cols("zu"), 1.0)
    t.put(r, cols("zl"), 1.0)
    # complementarity of the limits and their relaxations
    kk = np.arange(k)
    for dual, z, big, primal, pbig in (("mu", "y", pen, "slack", m.slack_max),
                                       ("rs", "v", pen, "relax", m.relax_max)):
        r = rows(k, -np.inf, 0.0)
        t.put(r, cols(dual), 1.0)
        t.put(r, cols(z), -big)
        r = rows(k, -np.inf, pbig)
        t.put(r, cols(primal), 1.0)
        t.put(r, cols(z, kk), pbig)
    # the agent's steps rise along each generator
    g = m.free_gen
    same = np.flatnonzero(g[1:] == g[:-1])
    r = rows(same.size, -np.inf, 0.0)
    t.put(r, cols("alpha", same), 1.0)
    t.put(r, cols("alpha", same + 1), -1.0)

    # - profit: the clearing's dual objective less what is not the agent's
    c = np.zeros(n_col)
    c[at["lam"]] = -m.demand_mw
    c[cols("mu")] = m.rhs
    rival = ~b.agent
    c[cols("nu", np.flatnonzero(rival))] = b.hi[rival]
    c[cols("rho", np.flatnonzero(rival))] = -b.lo[rival]
    c[cols("q")] = b.cost
    c[cols("relax")] = pen
    a = t.matrix(row, n_col)
    lo_rows, hi_rows = np.concatenate(rl), np.concatenate(ru)
    t0 = time.perf_counter()
    sol = solve_highs(c, lb, ub, a, lo_rows, hi_rows, integer=integer, what="strategic MILP")
    # fix the binaries and solve the LP again: exact prices
    fixed = np.where(integer, np.round(sol.x), 0.0)
    lb2, ub2 = np.where(integer, fixed, lb), np.where(integer, fixed, ub)
    sol = solve_highs(c, lb2, ub2, a, lo_rows, hi_rows, what="strategic LP")
    elapsed = time.perf_counter() - t0
    return _from_solution(m, sol, cols, elapsed, int(integer.sum()))


def _from_solution(m: OfferMarket, sol: LPSolution, cols: Any, elapsed: float,
                   n_bin: int) -> _Mpec:
    x = sol.x
    mu = x[cols("mu")]
    lam = float(x[cols("lam")][0])
    cleared = Cleared(x[cols("q")], x[cols("relax")], lam - mu @ m.ptdf, mu)
    return _Mpec(x[cols("alpha")], cleared, -sol.objective, n_bin, elapsed)


@dataclass(frozen=True, eq=False)
class StrategicOutcome:
    """The agent's best offer and the market it leads to, beside the
    truthful clearing (the agent offering every block at its cost).

    Attributes
    ----------
    offer_per_mwh, cost_per_mwh, block_gen, block_p_mw : ndarray
        Per block the agent prices: its offer, its true cost, its generator
        row and its cleared output (MW).
    profit, truthful_profit : float
        The agent's profit per hour, strategic and truthful.
    lmp, truthful_lmp : ndarray
        Price per bus position, per MWh.
    gen_p_mw, truthful_gen_p_mw : ndarray
        Output per generator row (0 when out of service).
    lerner, truthful_lerner : ndarray
        Lerner index per generator row at its bus's price and its marginal
        block's true cost (``nan`` without output or a positive price).
    owner : ndarray of str
        Per generator row: ``"agent"`` or ``"gen <row>"``.
    hhi, truthful_hhi : float
        On dispatched energy by owner.
    owners, rsi, network_rsi, agent_lerner : ndarray
        The owners (sorted); each one's residual supply index by capacity at
        the served load; each one's *network* residual supply, the share of
        the load the others can serve through the network with every limit
        held (:meth:`OfferMarket.deliverable_mw`; below 1 the owner is
        pivotal where the capacity index may not say so; ``nan`` if the
        others' must-run output alone breaks a limit); and the agent's
        output-weighted Lerner index.
    shed_mw, relaxed_mw : float
        Load shed and branch limits exceeded at the strategic outcome.
    solve_time_s, n_binaries
        The MILP's time (both HiGHS solves) and its number of binaries.
    """

    market: OfferMarket = field(repr=False)
    offer_per_mwh: Array
    cost_per_mwh: Array
    block_gen: IntArray
    block_p_mw: Array
    profit: float
    truthful_profit: float
    lmp: Array = field(repr=False)
    truthful_lmp: Array = field(repr=False)
    gen_p_mw: Array
    truthful_gen_p_mw: Array = field(repr=False)
    lerner: Array = field(repr=False)
    truthful_lerner: Array = field(repr=False)
    owner: npt.NDArray[np.str_] = field(repr=False)
    hhi: float
    truthful_hhi: float
    owners: npt.NDArray[np.str_] = field(repr=False)
    rsi: Array = field(repr=False)
    network_rsi: Array = field(repr=False)
    agent_lerner: float
    shed_mw: float
    relaxed_mw: float
    solve_time_s: float
    n_binaries: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the offers, the agent's profit, prices and outputs
        beside the truthful ones, and the market-power measures (MATPOWER bus
        numbers; generators by row; ``nan`` as ``None``)."""
        m = self.market
        net = m.net
        buses = net.bus_numbers.tolist()
        gen_bus = net.column("gen", "bus").tolist()

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "agent": m.agent_rows.tolist(), "price_cap_per_mwh": m.price_cap,
            "penalty_per_mwh": m.penalty, "profit": self.profit,
            "truthful_profit": self.truthful_profit,
            "offers": [{"gen": g, "bus": gen_bus[g], "p_mw": p, "cost_per_mwh": c,
                        "offer_per_mwh": o, "markup_per_mwh": o - c}
                       for g, p, c, o in zip(self.block_gen.tolist(), self.block_p_mw.tolist(),
                                             self.cost_per_mwh.tolist(),
                                             self.offer_per_mwh.tolist(), strict=True)],
            "buses": [{"bus": n, "lmp": a, "truthful_lmp": t}
                      for n, a, t in zip(buses, self.lmp.tolist(), self.truthful_lmp.tolist(),
                                         strict=True)],
            "generators": [{"gen": g, "bus": gen_bus[g], "owner": str(self.owner[g]),
                            "p_mw": float(self.gen_p_mw[g]),
                            "truthful_p_mw": float(self.truthful_gen_p_mw[g]),
                            "lerner": num(self.lerner[g]),
                            "truthful_lerner": num(self.truthful_lerner[g])}
                           for g in range(net.n_gen)],
            "hhi": num(self.hhi), "truthful_hhi": num(self.truthful_hhi),
            "agent_lerner": num(self.agent_lerner),
            "owners": [{"owner": str(o), "rsi": float(r), "network_rsi": num(n)}
                       for o, r, n in zip(self.owners.tolist(), self.rsi.tolist(),
                                          self.network_rsi.tolist(), strict=True)],
            "shed_mw": self.shed_mw, "relaxed_mw": self.relaxed_mw,
            "solve_time_s": self.solve_time_s, "n_binaries": self.n_binaries,
        }


def _per_gen(m: OfferMarket, cleared: Cleared) -> tuple[Array, Array, Array]:
    """Output, price and marginal cost (``nan`` without output) per
    generator row at a clearing."""
    b, n_gen = m.blocks, m.net.n_gen
    is_gen = b.gen >= 0
    g, q, cost = b.gen[is_gen], cleared.q_mw[is_gen], b.cost[is_gen]
    p_mw = np.bincount(g, q, n_gen)
    # marginal cost: the true cost of its last block with output (a
    # generator's blocks are contiguous and rise)
    run = np.flatnonzero(q > 1e-9)
    last = run[np.r_[g[run][1:] != g[run][:-1], True]] if run.size else run
    mc = np.full(n_gen, np.nan)
    mc[g[last]] = cost[last]
    return p_mw.astype(np.float64), cleared.lmp[m.net.gen_position], mc


def _deliverable_share(m: OfferMarket, gens: IntArray) -> float:
    try:
        return m.deliverable_mw(gens) / m.demand_mw if m.demand_mw > 0 else math.inf
    except SolverError:  # the others' must-run output cannot be placed
        return math.nan


def strategic_offer(net: Network, agent: npt.ArrayLike, **options: Any) -> StrategicOutcome:
    """The agent's profit-maximising step offer against the network-constrained
    clearing, and the market power it exercises (see the module notes).

    Parameters
    ----------
    net : Network
        The case; its generators' costs are the rivals' offers.
    agent : sequence of int
        The agent's generators, rows of ``net.gen`` (0-based); all are one owner.
    **options
        ``price_cap_per_mwh``, ``penalty_per_mwh``, ``blocks``,
        ``offer_floor_per_mwh``, ``rating``: see :class:`OfferMarket`.

    Returns
    -------
    StrategicOutcome

    Raises
    ------
    InputError
        An unknown or out-of-service generator, bad options, a price cap
        below a rival's offer, must-run output above the load.
    SolverError
        If HiGHS cannot solve the MILP to optimality.
    """
    m = OfferMarket(net, agent, **options)
    mpec = _solve_mpec(m)
    b = m.blocks
    truthful = m.clear(b.cost[b.free])
    gen_p, price, mc = _per_gen(m, mpec.cleared)
    t_gen_p, t_price, t_mc = _per_gen(m, truthful)
    rows = np.arange(net.n_gen)
    owner = np.where(np.isin(rows, m.agent_rows), "agent", np.char.add("gen ", rows.astype(str)))
    on = net.column("gen", "in_service")
    is_shed = b.gen < 0
    served = m.demand_mw - float(mpec.cleared.q_mw[is_shed].sum())
    owners = np.unique(owner[on])
    rsi = (residual_supply_index(net.column("gen", "p_max_mw")[on], owner[on], served)
           if served > 0 else np.full(owners.size, np.inf))
    by_owner = lerner_index(price[on], mc[on], gen_p[on], owner[on])
    network_rsi = np.array([_deliverable_share(m, rows[on & (owner == o)]) for o in owners])
    return StrategicOutcome(
        market=m, offer_per_mwh=mpec.offer_per_mwh, cost_per_mwh=b.cost[b.free],
        block_gen=m.free_gen, block_p_mw=mpec.cleared.q_mw[b.free], profit=mpec.profit,
        truthful_profit=m.agent_profit(truthful), lmp=mpec.cleared.lmp,
        truthful_lmp=truthful.lmp, gen_p_mw=gen_p, truthful_gen_p_mw=t_gen_p,
        lerner=lerner(price, mc), truthful_lerner=lerner(t_price, t_mc), owner=owner,
        hhi=hhi(gen_p[on], owner[on]), truthful_hhi=hhi(t_gen_p[on], owner[on]),
        owners=owners, rsi=rsi, network_rsi=network_rsi,
        agent_lerner=float(by_owner[np.searchsorted(owners, "agent")]),
        shed_mw=float(mpec.cleared.q_mw[is_shed].sum()),
        relaxed_mw=float(mpec.cleared.relax_mw.sum()), solve_time_s=mpec.solve_time_s,
        n_binaries=mpec.n_binaries)


def brute_force(market: OfferMarket, offers_per_mwh: npt.ArrayLike) -> tuple[Array, Array]:
    """The agent's profit at each row of ``offers_per_mwh`` (points x priced
    blocks, or a 1-D grid of one price for all the blocks), re-clearing the
    market at each; returns ``(profits, best offer row)``. The check of
    :func:`strategic_offer` (whose optimum is at least the grid's best: every
    clearing is a point of its feasible set)."""
    grid = np.asarray(offers_per_mwh, float)
    grid = grid[:, None] if grid.ndim == 1 else grid
    if grid.ndim != 2 or grid.shape[0] == 0 or grid.shape[1] not in (1, market.n_free):
        raise InputError("offers_per_mwh", f"must be points x {market.n_free} prices "
                                           f"(or one price a point), got shape {grid.shape}")
    profits = np.array([market.agent_profit(market.clear(row)) for row in grid])
    best = grid[int(np.argmax(profits))]
    return profits, np.broadcast_to(best, (market.n_free,)).copy()
