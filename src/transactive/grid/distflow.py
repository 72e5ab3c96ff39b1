"""Radial distribution AC: LinDistFlow (an LP) and DistFlow with its
second-order-cone relaxation, with active and reactive prices at every bus.

The branch flow model of Baran & Wu (1989) in the form of Farivar & Low
(2013). Every in-service branch ``b = (i, j)`` keeps its from -> to
orientation; per branch the model has the active and reactive power ``P_b``,
``Q_b`` entering the series impedance at the from end and the squared
current ``l_b``; per bus the squared voltage ``v_j``. With a tap ratio
``tau`` at the from end (MATPOWER's model) the from-end voltage seen by the
series impedance is ``v_i / tau**2``:

- balance at bus ``j`` (active; reactive alike with ``x`` and ``Q``):
  ``sum_{b into j} (P_b - r_b l_b) - sum_{b out of j} P_b - g_j v_j + p_j = d_j``;
- voltage drop: ``v_j - v_i / tau**2 + 2 (r P + x Q) - (r**2 + x**2) l = 0``;
- the current: ``l_b v_i / tau**2 = P_b**2 + Q_b**2``, relaxed to the cone
  ``l_b v_i / tau**2 >= P_b**2 + Q_b**2`` (``model="soc"``, solved by
  Clarabel through cvxpy). On a radial network the relaxation is exact when
  the optimum gains nothing from burning power in the lines (Farivar & Low,
  2013; Gan, Li, Topcu & Low, 2015); every solution reports the largest
  relative gap ``|l v - P**2 - Q**2| / (l v)`` and flags it when not exact.
- ``model="lindistflow"`` drops ``l`` (no losses, linear voltage drop) and is
  an LP for HiGHS; apparent-power limits become an inscribed 16-gon (exact at
  its vertices, which include pure active and pure reactive power, and at most
  2% tight between them). ``model="dc"`` keeps only active power and branch
  limits (lossless, no voltages).

Line charging ``b_pu`` and bus shunts enter the balances as shunts (exact for
the pi model). The reference bus is the grid supply point: its squared
voltage is fixed at the set point, it imports any amount at
``import_price_per_mwh`` and exports at ``export_price_per_mwh`` and supplies
reactive power freely.

Prices are the duals of the balances (distribution LMPs): ``price_p`` is what
one more MW of load at a bus costs per hour, ``price_q`` the same for MVAr.
An injection is paid ``price_p * p + price_q * q``, so a smart inverter's
reactive power earns the reactive price and a voltage-support market
settles. The duals also give the rent of the network constraints (voltage
limits, the substation voltage set point and branch ratings):
``payments by loads - payments to injections = utility cost + rent``.

Examples
--------
>>> from transactive.grid.network import Network
>>> net = Network(
...     bus={"bus": [1, 2, 3], "type": [3, 1, 1], "vm_min_pu": [1.0, 0.95, 0.95]},
...     branch={"from_bus": [1, 2], "to_bus": [2, 3], "r_pu": [0.02, 0.02],
...             "x_pu": [0.02, 0.02]},
...     gen={"bus": [1], "p_max_mw": [100.0]},
...     load={"bus": [2, 3], "p_mw": [30.0, 30.0], "q_mvar": [10.0, 10.0]},
... )
>>> res = solve_distflow(net, model="lindistflow", import_price_per_mwh=50.0)
>>> res.vm_pu.round(4).tolist(), res.price_p_per_mwh.round(2).tolist()
([1.0, 0.9839, 0.9757], [50.0, 50.0, 50.0])
>>> soc = solve_distflow(net, model="soc", import_price_per_mwh=50.0)
>>> soc.exact, round(soc.losses_mw, 3), soc.price_p_per_mwh.round(2).tolist()
(True, 1.044, [50.0, 51.27, 51.92])
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from transactive.errors import InputError, SolverError
from transactive.grid._lp import (
    Cone,
    KeptLP,
    LPSolution,
    Triplets,
    append_columns,
    solve_highs,
    solve_socp,
)
from transactive.grid.network import ISOLATED, Network, bus_values

__all__ = ["DistFlowModel", "DistFlowResult", "Injections", "solve_distflow"]

DistFlowModel = Literal["lindistflow", "soc", "dc"]
_MODELS: tuple[DistFlowModel, ...] = ("lindistflow", "soc", "dc")

Array = npt.NDArray[np.float64]
_INF = float("inf")
_K = 16  # sides of the polygon that stands for an apparent-power circle in LPs
_PHI = (2 * np.arange(_K) + 1) * np.pi / _K
_POLY = np.cos(np.pi / _K)
_EXACT_TOL = 1e-4


# ---------------------------------------------------------------- injections
@dataclass(frozen=True, eq=False, init=False)
class Injections:
    """Dispatchable injections at buses (generators, sellers, smart inverters,
    price-responsive demand), as parallel columns validated on creation.

    An injection produces ``p`` in ``[p_min_mw, p_max_mw]`` at
    ``cost_per_mwh`` (a negative ``p`` is consumption: a price-responsive
    load bids its value as ``cost_per_mwh`` with ``p_min_mw = -demand``,
    ``p_max_mw = 0``). Its reactive injection is ``q_per_p * p + q`` with
    ``q`` in ``[q_min_mvar, q_max_mvar]`` at ``q_cost_per_mvarh * |q|`` (a
    smart inverter's reactive offer), and ``p**2 + (q_per_p p + q)**2 <=
    s_max_mva**2``. ``q_per_p`` fixes a power factor (``tan(acos(pf))``).
    ``bus`` holds bus numbers. Optional columns default to 0 (``s_max_mva``
    to ``inf``).

    Examples
    --------
    >>> inv = Injections(bus=[18], p_min_mw=[0.2], p_max_mw=[0.2], cost_per_mwh=[0.0],
    ...                  q_min_mvar=[-0.3], q_max_mvar=[0.3], s_max_mva=[0.3])
    >>> len(inv), inv.s_max_mva.tolist()
    (1, [0.3])
    """

    bus: npt.NDArray[np.int64]
    p_min_mw: Array
    p_max_mw: Array
    cost_per_mwh: Array
    q_min_mvar: Array
    q_max_mvar: Array
    s_max_mva: Array
    q_cost_per_mvarh: Array
    q_per_p: Array

    def __init__(self, *, bus: npt.ArrayLike, p_min_mw: npt.ArrayLike,
                 p_max_mw: npt.ArrayLike, cost_per_mwh: npt.ArrayLike,
                 q_min_mvar: npt.ArrayLike | None = None,
                 q_max_mvar: npt.ArrayLike | None = None,
                 s_max_mva: npt.ArrayLike | None = None,
                 q_cost_per_mvarh: npt.ArrayLike | None = None,
                 q_per_p: npt.ArrayLike | None = None) -> None:
        n = int(np.size(bus))
        given = {"p_min_mw": p_min_mw, "p_max_mw": p_max_mw, "cost_per_mwh": cost_per_mwh,
                 "q_min_mvar": q_min_mvar, "q_max_mvar": q_max_mvar, "s_max_mva": s_max_mva,
                 "q_cost_per_mvarh": q_cost_per_mvarh, "q_per_p": q_per_p}
        cols: dict[str, npt.NDArray[Any]] = {"bus": _column("bus", bus, n, integer=True)}
        for name, value in given.items():
            default = _INF if name == "s_max_mva" else 0.0
            cols[name] = _column(name, np.full(n, default) if value is None else value, n,
                                 allow_inf=name == "s_max_mva")
        _reject(cols["p_min_mw"] > cols["p_max_mw"], "p_min_mw", "is above p_max_mw")
        _reject(cols["q_min_mvar"] > cols["q_max_mvar"], "q_min_mvar", "is above q_max_mvar")
        _reject(cols["s_max_mva"] <= 0, "s_max_mva", "must be > 0")
        _reject(cols["q_cost_per_mvarh"] < 0, "q_cost_per_mvarh", "must be >= 0")
        for name, value in cols.items():
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.bus.shape[0])

    def concat(self, other: Injections) -> Injections:
        """This table followed by ``other``."""
        return Injections(**{
            name: np.concatenate([getattr(self, name), getattr(other, name)])
            for name in ("bus", "p_min_mw", "p_max_mw", "cost_per_mwh", "q_min_mvar",
                         "q_max_mvar", "s_max_mva", "q_cost_per_mvarh", "q_per_p")
        })


def _column(name: str, value: Any, n: int, *, integer: bool = False,
            allow_inf: bool = False) -> npt.NDArray[Any]:
    field_ = f"injections.{name}"
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(field_, "must be numeric") from None
    if arr.shape[0] != n:
        raise InputError(field_, f"must have length {n}, got {arr.shape[0]}")
    _reject(np.isnan(arr) if allow_inf else ~np.isfinite(arr), name, "must be a finite number")
    if integer:
        _reject(arr != np.round(arr), name, "must be an integer")
        return arr.astype(np.int64)
    return arr


def _reject(mask: npt.NDArray[np.bool_], name: str, problem: str) -> None:
    if mask.any():
        raise InputError(f"injections.{name}", problem, row=int(np.flatnonzero(mask)[0]))


# ------------------------------------------------------------------- feeder
@dataclass(frozen=True, eq=False)
class _Feeder:
    """The radial structure of a network in per unit (built once, cached)."""

    n: int
    root: int
    on: npt.NDArray[np.int64]  # branch rows in service
    f: npt.NDArray[np.int64]
    t: npt.NDArray[np.int64]
    r: Array
    x: Array
    af: Array  # 1 / tap**2
    g_sh: Array  # conductance per bus, pu at 1 pu voltage
    b_sh: Array  # susceptance per bus incl. line charging, pu
    vmin2: Array
    vmax2: Array
    v0: float
    rate: Array  # apparent-power rating, pu (inf = none)
    base: float
    down: sp.csr_matrix  # (branch, bus) = 1 where the bus lies beyond the branch
    gens: Injections  # network generators away from the reference bus
    load_p_mw: Array  # the network's loads per bus
    load_q_mvar: Array
    lookup: npt.NDArray[np.int64]  # bus number -> position (-1: none)
    blocks: dict[str, Any] = field(default_factory=dict)  # cached LP blocks per model


    def rescaled(self, scale: float) -> _Feeder:
        """The same feeder in per unit of ``scale * base`` MVA (the SOC solver
        is better conditioned when the powers are of order one)."""
        return replace(self, base=self.base * scale, r=self.r * scale, x=self.x * scale,
                       g_sh=self.g_sh / scale, b_sh=self.b_sh / scale, rate=self.rate / scale,
                       blocks={})


_FEEDERS: weakref.WeakKeyDictionary[Network, _Feeder] = weakref.WeakKeyDictionary()


def _feeder(net: Network) -> _Feeder:
    cached = _FEEDERS.get(net)
    if cached is not None:
        return cached
    if (net.bus["type"].to_numpy() == ISOLATED).any():
        raise InputError("bus.type", "the radial model does not take isolated (type 4) buses")
    net.check_connected()
    on = np.flatnonzero(net.branch["in_service"].to_numpy())
    n = net.n_bus
    if on.size != n - 1:
        raise InputError("branch", f"the network is not radial: {on.size} in-service branches "
                         f"for {n} buses (a radial feeder has {n - 1}; open the tie switches)")
    br = net.branch.iloc[on]
    base = net.base_mva
    f, t = net.from_position[on], net.to_position[on]
    af = 1.0 / br["tap"].to_numpy() ** 2
    half_b = br["b_pu"].to_numpy() / 2
    b_sh = (net.bus["bs_mvar"].to_numpy() / base + np.bincount(f, half_b * af, n)
            + np.bincount(t, half_b, n))
    root = net.ref_position
    at_root = np.flatnonzero((net.gen_position == root) & net.gen["in_service"].to_numpy())
    vm0 = float(net.gen["vm_pu"].to_numpy()[at_root[0]] if at_root.size
                else net.bus["vm_pu"].to_numpy()[root])
    feeder = _Feeder(
        n=n, root=root, on=on, f=f, t=t, r=br["r_pu"].to_numpy(), x=br["x_pu"].to_numpy(),
        af=af, g_sh=net.bus["gs_mw"].to_numpy() / base, b_sh=b_sh,
        vmin2=net.bus["vm_min_pu"].to_numpy() ** 2, vmax2=net.bus["vm_max_pu"].to_numpy() ** 2,
        v0=vm0**2, rate=br["rate_a_mw"].to_numpy() / base, base=base,
        down=_downstream(n, root, f, t), gens=_network_gens(net),
        load_p_mw=np.array(net.bus_load_mw),
        load_q_mvar=np.bincount(net.load_position, net.load["q_mvar"].to_numpy(), n).astype(float),
        lookup=_lookup(net.bus_numbers),
    )
    _FEEDERS[net] = feeder
    return feeder


def _lookup(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    table = np.full(int(numbers.max()) + 2, -1, np.int64)
    table[numbers] = np.arange(numbers.size)
    return table


def _positions(fd: _Feeder, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Bus positions of bus numbers; -1 where there is no such bus."""
    inside = (numbers > 0) & (numbers < fd.lookup.size)
    return np.where(inside, fd.lookup[np.where(inside, numbers, 0)], -1)


def _downstream(n: int, root: int, f: npt.NDArray[np.int64],
                t: npt.NDArray[np.int64]) -> sp.csr_matrix:
    """Which buses lie beyond each branch, seen from the root (a tree)."""
    graph = sp.coo_matrix((np.arange(1, f.size + 1), (f, t)), shape=(n, n)).tocsr()
    graph = graph + graph.T
    order, pred = breadth_first_order(graph, root, directed=False)
    up = np.full(n, -1)  # branch joining each bus to its parent
    up[order[1:]] = np.asarray(graph[pred[order[1:]], order[1:]]).ravel() - 1
    path: list[list[int]] = [[] for _ in range(n)]
    for bus in order[1:]:
        path[bus] = [*path[pred[bus]], int(up[bus])]
    rows = np.concatenate([np.asarray(p, np.int64) for p in path])
    cols = np.repeat(np.arange(n), [len(p) for p in path])
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(f.size, n))


def _network_gens(net: Network) -> Injections:
    """In-service generators away from the reference bus, as injections."""
    g = net.gen
    keep = g["in_service"].to_numpy() & (net.gen_position != net.ref_position)
    idx = np.flatnonzero(keep)
    if net.pwl_cost is not None and np.isin(net.pwl_cost["gen"].to_numpy(), idx).any():
        raise InputError("pwl_cost", "the radial model takes linear generator costs only")
    quad = keep & (g["cost_per_mw2h"].to_numpy() != 0)
    if quad.any():
        raise InputError("gen.cost_per_mw2h", "the radial model takes linear costs only",
                         row=int(np.flatnonzero(quad)[0]))
    pick = g.iloc[idx]
    return Injections(
        bus=pick["bus"].to_numpy(), p_min_mw=pick["p_min_mw"].to_numpy(),
        p_max_mw=pick["p_max_mw"].to_numpy(), cost_per_mwh=pick["cost_per_mwh"].to_numpy(),
        q_min_mvar=pick["q_min_mvar"].to_numpy().clip(-1e9, 1e9),
        q_max_mvar=pick["q_max_mvar"].to_numpy().clip(-1e9, 1e9),
    )


# ------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class DistFlowResult:
    """The optimum of a radial dispatch: voltages, flows, losses and prices.

    Bus arrays are in bus position order, branch arrays in branch row order
    (``nan`` for branches out of service), injection arrays in the order of
    the :class:`Injections` passed in (network generators away from the
    reference bus follow them). Money is per hour; prices per MWh / MVArh.

    Attributes
    ----------
    vm_pu : voltage magnitude per bus (``nan`` for ``"dc"``).
    price_p_per_mwh, price_q_per_mvarh : active and reactive price per bus.
    p_mw, q_mvar : flow entering each branch's series impedance at its from
        end (for ``"soc"`` the to end receives ``p_mw - loss_mw``).
    loss_mw : active loss per branch (``"lindistflow"``: the estimate
        ``r (P**2 + Q**2) / v`` from its flows, not in its balances;
        ``"dc"``: zero).
    loading : apparent power over rating per branch (``nan`` if unrated).
    p_inj_mw, q_inj_mvar : dispatch of each injection; ``payment_inj_per_h``
        what each receives (``price_p p + price_q q``; negative: it pays).
    grid_import_mw, grid_export_mw, grid_q_mvar : the supply point.
    utility_cost_per_h : import cost minus export revenue at the supply point.
    rent_per_h : rent of the network constraints, from their duals.
    soc_gap : largest relative relaxation gap (``nan`` unless ``"soc"``);
        ``exact`` is ``soc_gap <= 1e-4`` (always True for linear models).
    binding : names of the binding network constraints.
    """

    model: DistFlowModel
    bus: npt.NDArray[np.int64]
    objective_per_h: float
    vm_pu: Array
    price_p_per_mwh: Array
    price_q_per_mvarh: Array
    p_mw: Array
    q_mvar: Array
    loss_mw: Array
    loading: Array
    p_inj_mw: Array
    q_inj_mvar: Array
    payment_inj_per_h: Array
    grid_import_mw: float
    grid_export_mw: float
    grid_q_mvar: float
    utility_cost_per_h: float
    rent_per_h: float
    soc_gap: float
    exact: bool
    binding: tuple[str, ...]
    solve_time_s: float

    @property
    def losses_mw(self) -> float:
        """Total active losses, MW (see ``loss_mw``)."""
        return float(np.nansum(self.loss_mw))

    @property
    def max_loading(self) -> float:
        """Largest branch loading (``nan`` if no branch is rated)."""
        rated = self.loading[np.isfinite(self.loading)]
        return float(rated.max()) if rated.size else float("nan")

    def buses(self) -> pd.DataFrame:
        """One row per bus: ``bus, vm_pu, price_p_per_mwh, price_q_per_mvarh``."""
        return pd.DataFrame({"bus": self.bus, "vm_pu": self.vm_pu,
                             "price_p_per_mwh": self.price_p_per_mwh,
                             "price_q_per_mvarh": self.price_q_per_mvarh})


# ------------------------------------------------------------------ the LP
@dataclass
class _Problem:
    """``min c x  s.t.  rl <= A x <= ru,  lb <= x <= ub`` (+ cones for "soc")."""

    c: Array
    lb: Array
    ub: Array
    a: sp.csc_matrix
    rl: Array
    ru: Array
    cones: list[Cone]


def _network_block(fd: _Feeder, model: DistFlowModel) -> dict[str, Any]:
    """Columns, rows and bounds of the network part (cached per feeder and model).

    Columns: P (nb) [, Q (nb), v (n) [, l (nb)]], import, export [, q_root].
    Rows: P balance (n) [, Q balance (n), voltage drop (nb)].
    """
    if model in fd.blocks:
        return fd.blocks[model]
    n, nb, f, t = fd.n, fd.on.size, fd.f, fd.t
    soc = model == "soc"
    iP = np.arange(nb)
    coo = Triplets()
    if model == "dc":
        i_imp, nrow = nb, n
        coo.put(t, iP, 1.0)
        coo.put(f, iP, -1.0)
        rated = np.isfinite(fd.rate)
        lb = np.r_[np.where(rated, -fd.rate, -_INF), 0.0, 0.0]
        ub = np.r_[np.where(rated, fd.rate, _INF), _INF, _INF]
        i_v = i_l = np.zeros(0, np.int64)
    else:
        iQ, i_v = nb + iP, 2 * nb + np.arange(n)
        i_l = 2 * nb + n + iP if soc else np.zeros(0, np.int64)
        i_imp, nrow = 2 * nb + n + i_l.size, 2 * n + nb
        coo.put(t, iP, 1.0)  # P balance
        coo.put(f, iP, -1.0)
        coo.put(np.arange(n), i_v, -fd.g_sh)
        coo.put(n + t, iQ, 1.0)  # Q balance
        coo.put(n + f, iQ, -1.0)
        coo.put(n + np.arange(n), i_v, fd.b_sh)
        drop = 2 * n + iP  # voltage drop
        coo.put(drop, i_v[t], 1.0)
        coo.put(drop, i_v[f], -fd.af)
        coo.put(drop, iP, 2 * fd.r)
        coo.put(drop, iQ, 2 * fd.x)
        if soc:
            coo.put(t, i_l, -fd.r)
            coo.put(n + t, i_l, -fd.x)
            coo.put(drop, i_l, -(fd.r**2 + fd.x**2))
        coo.put(n + fd.root, i_imp + 2, 1.0)  # reactive supply at the root
        lb = np.r_[np.full(2 * nb, -_INF), fd.vmin2, np.zeros(i_l.size), 0.0, 0.0, -_INF]
        ub = np.r_[np.full(2 * nb, _INF), fd.vmax2, np.full(i_l.size, _INF), _INF, _INF, _INF]
        lb[i_v[fd.root]] = ub[i_v[fd.root]] = fd.v0
    coo.put(fd.root, i_imp, 1.0)
    coo.put(fd.root, i_imp + 1, -1.0)
    block = {"a": coo.matrix(nrow, lb.size), "lb": lb, "ub": ub, "i_imp": i_imp,
             "i_v": i_v, "i_l": i_l}
    fd.blocks[model] = block
    return block


def _polygon(coo: Triplets, first_row: int, cp_: Any, cq: Any, count: int) -> None:
    """Rows ``cos(phi) p + sin(phi) q <= ...`` of ``count`` 16-gons, where
    ``p`` and ``q`` are given as (column, coefficient) pairs per polygon."""
    if not count:
        return
    k = first_row + np.arange(count * _K).reshape(count, _K)
    for col, coef in cp_:
        coo.put(k, col[:, None], coef[:, None] * np.cos(_PHI)[None, :])
    for col, coef in cq:
        coo.put(k, col[:, None], coef[:, None] * np.sin(_PHI)[None, :])


def _build(fd: _Feeder, model: DistFlowModel, inj: Injections, inj_pos: npt.NDArray[np.int64],
           d_p: Array, d_q: Array, price_import: float, price_export: float,
           import_max: float, export_max: float) -> tuple[_Problem, dict[str, Any]]:
    """The whole problem of one call: the cached network block, the injection
    columns and the polygon rows (all in per unit; money per hour)."""
    blk = _network_block(fd, model)
    base, n, nb, m = fd.base, fd.n, fd.on.size, len(inj)
    dc, lin = model == "dc", model == "lindistflow"
    a0 = blk["a"]
    nrow0, ncol0 = a0.shape
    iq = np.flatnonzero(inj.q_max_mvar > inj.q_min_mvar) if not dc else np.zeros(0, np.int64)
    mq = iq.size
    ip = ncol0 + np.arange(m)
    iqp, iqn = ncol0 + m + np.arange(mq), ncol0 + m + mq + np.arange(mq)
    ncol = ncol0 + m + 2 * mq
    smax = inj.s_max_mva / base
    q_fixed = np.zeros(m)
    if not dc:
        q_fixed = np.clip(0.0, inj.q_min_mvar, inj.q_max_mvar)
        q_fixed[iq] = 0.0
        d_q = d_q - np.bincount(inj_pos, q_fixed, n) / base
    # the injections' columns in the balances, built as CSC directly (hot path):
    # p has its P-balance entry and, with a fixed power factor, a Q-balance one
    k_on = (inj.q_per_p != 0) & (not dc)
    ptr = np.zeros(m + 1, np.int64)
    np.cumsum(1 + k_on, out=ptr[1:])
    rows, vals = np.empty(ptr[-1], np.int64), np.ones(ptr[-1])
    rows[ptr[:-1]] = inj_pos
    rows[ptr[:-1][k_on] + 1] = n + inj_pos[k_on]
    vals[ptr[:-1][k_on] + 1] = inj.q_per_p[k_on]
    q_rows = n + inj_pos[iq]
    a = append_columns(a0, np.concatenate([vals, np.ones(mq), -np.ones(mq)]),
                       np.concatenate([rows, q_rows, q_rows]),
                       np.concatenate([ptr, ptr[-1] + 1 + np.arange(2 * mq)]))
    # polygon rows (LinDistFlow): branch ratings that could bind, then injections
    bottom = Triplets()
    lim = np.zeros(0, np.int64)
    poly_u = np.zeros(0, np.int64)
    if lin:
        lim = _could_bind(fd, inj, inj_pos, d_p, d_q)
        one = np.ones(lim.size)
        _polygon(bottom, 0, [(lim, one)], [(nb + lim, one)], lim.size)
        poly_u = np.flatnonzero(np.isfinite(smax[iq]))
        u = iq[poly_u]
        one = np.ones(u.size)
        _polygon(bottom, lim.size * _K, [(ip[u], one)],
                 [(iqp[poly_u], one), (iqn[poly_u], -one), (ip[u], inj.q_per_p[u])], u.size)
    n_poly = (lim.size + poly_u.size) * _K
    if n_poly:
        a = sp.vstack([a, bottom.matrix(n_poly, ncol)], format="csc")
    # bounds and costs
    pmin, pmax = inj.p_min_mw / base, inj.p_max_mw / base
    s_only = np.isfinite(smax)
    s_only[iq] = False
    pmin = np.where(s_only, np.maximum(pmin, -smax), pmin)
    pmax = np.where(s_only, np.minimum(pmax, smax), pmax)
    if (pmin > pmax).any():
        raise InputError("injections.s_max_mva", "is below the least |p| the injection allows",
                         row=int(np.flatnonzero(pmin > pmax)[0]))
    qmin, qmax = inj.q_min_mvar[iq] / base, inj.q_max_mvar[iq] / base
    lb = np.concatenate([blk["lb"], pmin, np.maximum(qmin, 0), np.maximum(-qmax, 0)])
    ub = np.concatenate([blk["ub"], pmax, np.maximum(qmax, 0), np.maximum(-qmin, 0)])
    i_imp = blk["i_imp"]
    ub[i_imp], ub[i_imp + 1] = import_max / base, export_max / base
    qc = inj.q_cost_per_mvarh[iq] * base
    c = np.zeros(ncol)
    c[i_imp], c[i_imp + 1] = price_import * base, -price_export * base
    c[ncol0:] = np.concatenate([inj.cost_per_mwh * base, qc, qc])
    rl = np.zeros(nrow0 + n_poly)
    rl[:n] = d_p + (fd.g_sh if dc else 0.0)
    if not dc:
        rl[n:2 * n] = d_q
    ru = rl.copy()
    rl[nrow0:] = -_INF
    if n_poly:
        ru[nrow0:] = np.repeat(np.concatenate([fd.rate[lim], smax[iq[poly_u]]]) * _POLY, _K)
    cones = _soc_cones(fd, blk, ncol, inj, iq, ip, iqp, iqn, smax) if model == "soc" else []
    layout = {"ip": ip, "iqp": iqp, "iqn": iqn, "iq": iq, "q_fixed": q_fixed, "lim": lim,
              "poly": slice(nrow0, nrow0 + lim.size * _K)}
    return _Problem(c, lb, ub, a, rl, ru, cones), {**blk, **layout}


def _could_bind(fd: _Feeder, inj: Injections, inj_pos: npt.NDArray[np.int64],
                d_p: Array, d_q: Array) -> npt.NDArray[np.int64]:
    """Rated branches whose rating a lossless flow could reach: the flow on a
    branch of a tree is the net demand beyond it, so a rating above the sum
    of everything that could be drawn or injected beyond it never binds."""
    base = fd.base
    rated = np.flatnonzero(np.isfinite(fd.rate))
    if not rated.size:
        return rated
    p_abs = np.maximum(np.abs(inj.p_min_mw), np.abs(inj.p_max_mw)) / base
    q_abs = (np.maximum(np.abs(inj.q_min_mvar), np.abs(inj.q_max_mvar)) / base
             + np.abs(inj.q_per_p) * p_abs)
    w_p = np.abs(d_p) + np.abs(fd.g_sh) * fd.vmax2 + np.bincount(inj_pos, p_abs, fd.n)
    w_q = np.abs(d_q) + np.abs(fd.b_sh) * fd.vmax2 + np.bincount(inj_pos, q_abs, fd.n)
    reach = np.hypot(fd.down[rated] @ w_p, fd.down[rated] @ w_q)
    return rated[reach > fd.rate[rated] * _POLY * (1 - 1e-9)]


# ------------------------------------------------------------- the kept LP
_KEPT = threading.local()  # per thread: feeder -> its kept LinDistFlow LP


class _KeptLinDistFlow:
    """The LinDistFlow LP of one feeder, kept in HiGHS from call to call.

    Its columns are the network block's, then injection *slots*: a slot is
    one column made for a (bus, ``q_per_p``) pair, and the k-th injection of
    a call with that pair takes the pair's k-th slot (made when first
    needed). Slots a call does not use are fixed at 0 with no cost. Its rows
    are the network block's, then the polygons of every rating that could
    bind in some call so far (one that cannot bind now is slack, which
    changes nothing). A call changes only costs and bounds, and HiGHS
    re-solves from the previous basis. It takes injections with a fixed
    reactive power and no apparent-power limit (the market's orders);
    others take a fresh LP.
    """

    def __init__(self, fd: _Feeder) -> None:
        blk = self.blk = _network_block(fd, "lindistflow")
        nrow, ncol = blk["a"].shape
        self.lp = KeptLP(np.zeros(ncol), blk["lb"], blk["ub"], blk["a"], np.zeros(nrow),
                         np.zeros(nrow))
        self.q_values = np.zeros(0)  # the q_per_p of each slot table, sorted
        self.slots = np.full((0, fd.n, 0), -1, np.int64)  # [q value, bus, rank] -> column
        self.lim = np.zeros(0, np.int64)  # rated branches with polygon rows, in row order

    @staticmethod
    def takes(inj: Injections) -> bool:
        """Whether the kept LP can stand for these injections."""
        return bool(np.array_equal(inj.q_min_mvar, inj.q_max_mvar)
                    and not np.isfinite(inj.s_max_mva).any())

    def _columns(self, fd: _Feeder, inj: Injections,
                 inj_pos: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The slot of each injection, made where missing."""
        q_values = self.q_values
        qi = np.searchsorted(q_values, inj.q_per_p)
        if not (qi < q_values.size).all() or (q_values[qi] != inj.q_per_p).any():
            q_values = np.union1d(q_values, inj.q_per_p)
            qi = np.searchsorted(q_values, inj.q_per_p)
        key = qi * fd.n + inj_pos
        order = np.argsort(key, kind="stable")
        first = np.r_[True, key[order][1:] != key[order][:-1]]
        rank = np.empty(key.size, np.int64)
        rank[order] = np.arange(key.size) - np.maximum.accumulate(
            np.where(first, np.arange(key.size), 0))
        depth = max(self.slots.shape[2], int(rank.max(initial=-1)) + 1)
        if q_values.size > self.q_values.size or depth > self.slots.shape[2]:
            grown = np.full((q_values.size, fd.n, depth), -1, np.int64)
            grown[np.searchsorted(q_values, self.q_values), :, :self.slots.shape[2]] = self.slots
            self.q_values, self.slots = q_values, grown
        cols = self.slots[qi, inj_pos, rank]
        new = np.flatnonzero(cols < 0)
        if new.size:
            made = self.lp.c.size + np.arange(new.size)
            coo = Triplets()
            coo.put(inj_pos[new], np.arange(new.size), 1.0)
            coo.put(fd.n + inj_pos[new], np.arange(new.size), inj.q_per_p[new])
            zero = np.zeros(new.size)
            self.lp.add_columns(zero, zero, zero, coo.matrix(self.lp.rl.size, new.size))
            self.slots[qi[new], inj_pos[new], rank[new]] = made
            cols[new] = made
        return cols

    def _ratings(self, fd: _Feeder, lim: npt.NDArray[np.int64]) -> None:
        """Polygon rows for the ratings in ``lim`` that have none yet."""
        new = np.setdiff1d(lim, self.lim)
        if new.size:
            coo = Triplets()
            one = np.ones(new.size)
            _polygon(coo, 0, [(new, one)], [(fd.on.size + new, one)], new.size)
            rows = coo.matrix(new.size * _K, self.lp.c.size).tocsr()
            self.lp.add_rows(np.full(new.size * _K, -_INF),
                             np.repeat(fd.rate[new] * _POLY, _K), rows)
            self.lim = np.r_[self.lim, new]

    def problem(self, fd: _Feeder, inj: Injections, inj_pos: npt.NDArray[np.int64],
                d_p: Array, d_q: Array, price_import: float, price_export: float,
                import_max: float, export_max: float) -> tuple[_Problem, dict[str, Any]]:
        """The problem of one call on the kept columns and rows (what
        :func:`_build` makes fresh), growing the model where it must."""
        cols = self._columns(fd, inj, inj_pos)
        self._ratings(fd, _could_bind(fd, inj, inj_pos, d_p, d_q))
        blk, lp, base, n = self.blk, self.lp, fd.base, fd.n
        nrow0, ncol0 = blk["a"].shape
        c, lb, ub = np.zeros(lp.c.size), np.zeros(lp.c.size), np.zeros(lp.c.size)
        lb[:ncol0], ub[:ncol0] = blk["lb"], blk["ub"]
        i_imp = blk["i_imp"]
        ub[i_imp], ub[i_imp + 1] = import_max / base, export_max / base
        c[i_imp], c[i_imp + 1] = price_import * base, -price_export * base
        c[cols] = inj.cost_per_mwh * base
        lb[cols], ub[cols] = inj.p_min_mw / base, inj.p_max_mw / base
        q_fixed = np.array(inj.q_min_mvar)
        rl, ru = lp.rl.copy(), lp.ru.copy()
        rl[:n] = d_p
        rl[n:2 * n] = d_q - np.bincount(inj_pos, q_fixed, n) / base
        rl[2 * n:nrow0] = 0.0
        ru[:nrow0] = rl[:nrow0]
        empty = np.zeros(0, np.int64)
        layout = {"ip": cols, "iqp": empty, "iqn": empty, "iq": empty, "q_fixed": q_fixed,
                  "lim": self.lim, "poly": slice(nrow0, nrow0 + self.lim.size * _K)}
        return _Problem(c, lb, ub, lp.a, rl, ru, []), {**blk, **layout}


def _kept(fd: _Feeder) -> _KeptLinDistFlow:
    """This thread's kept LinDistFlow LP of a feeder (made on first use)."""
    models = getattr(_KEPT, "models", None)
    if models is None:
        models = _KEPT.models = weakref.WeakKeyDictionary()
    kept = models.get(fd)
    if kept is None:
        kept = models[fd] = _KeptLinDistFlow(fd)
    return kept


def _sel(idx: npt.NDArray[np.int64], ncol: int, coef: Any = 1.0) -> sp.csr_matrix:
    vals = np.broadcast_to(np.asarray(coef, float), idx.shape)
    return sp.csr_matrix((vals, (np.arange(idx.size), idx)), shape=(idx.size, ncol))


def _soc_cones(fd: _Feeder, blk: dict[str, Any], ncol: int, inj: Injections,
               iq: npt.NDArray[np.int64], ip: npt.NDArray[np.int64],
               iqp: npt.NDArray[np.int64], iqn: npt.NDArray[np.int64],
               smax: Array) -> list[Cone]:
    """Cones ``||X x|| <= T x`` (or ``<= T`` for a constant): the relaxation per
    branch, then the branch ratings, then the injections' apparent power."""
    nb = fd.on.size
    iP, iQ, il, vf = np.arange(nb), nb + np.arange(nb), blk["i_l"], blk["i_v"][fd.f]
    sel_l, sel_v = _sel(il, ncol), _sel(vf, ncol, fd.af)
    cones: list[Cone] = [
        (sel_l + sel_v, [_sel(iP, ncol, 2.0), _sel(iQ, ncol, 2.0), sel_l - sel_v])]
    lim = np.flatnonzero(np.isfinite(fd.rate))
    cones.append((fd.rate[lim], [_sel(iP[lim], ncol), _sel(iQ[lim], ncol)]))
    u = np.flatnonzero(np.isfinite(smax[iq]))
    units = iq[u]
    q_total = (_sel(ip[units], ncol, inj.q_per_p[units]) + _sel(iqp[u], ncol)
               - _sel(iqn[u], ncol))
    cones.append((smax[units], [_sel(ip[units], ncol), q_total]))
    return cones


# ---------------------------------------------------------------- solvers
def _solve(pb: _Problem, model: DistFlowModel, kept: KeptLP | None = None) -> LPSolution:
    what = "SOC dispatch" if model == "soc" else "dispatch LP"
    try:
        if model == "soc":
            return solve_socp(pb.c, pb.lb, pb.ub, pb.a, pb.rl, pb.cones, what=what)
        if kept is not None:
            return kept.solve(pb.c, pb.lb, pb.ub, pb.rl, pb.ru, what=what)
        return solve_highs(pb.c, pb.lb, pb.ub, pb.a, pb.rl, pb.ru, what=what, presolve=False)
    except SolverError as exc:
        raise SolverError(f"{exc} (the demand cannot be served within the voltage and "
                          "branch limits)") from None


# ------------------------------------------------------------------- public
def solve_distflow(
    network: Network,
    *,
    model: DistFlowModel = "lindistflow",
    import_price_per_mwh: float,
    export_price_per_mwh: float | None = None,
    injections: Injections | None = None,
    load_p_mw: npt.ArrayLike | None = None,
    load_q_mvar: npt.ArrayLike | None = None,
    network_loads: bool = True,
    import_max_mw: float = _INF,
    export_max_mw: float = _INF,
    reuse_model: bool = True,
) -> DistFlowResult:
    """Least-cost dispatch of a radial network with voltages and prices.

    Parameters
    ----------
    network : Network
        A radial network (in-service branches form a tree); its reference bus
        is the grid supply point, its voltage fixed at the set point of the
        generator there (else the bus ``vm_pu``).
    model : {"lindistflow", "soc", "dc"}
        LinDistFlow LP (HiGHS), DistFlow SOC relaxation (Clarabel), or a
        lossless active-power-only LP.
    import_price_per_mwh, export_price_per_mwh : float
        What the supply point charges for imports and pays for exports
        (export defaults to the import price; it may not exceed it).
    injections : Injections, optional
        Dispatchable injections; in-service network generators away from the
        reference bus are appended (linear costs only).
    load_p_mw, load_q_mvar : array of length ``n_bus``, optional
        Inelastic demand per bus position, on top of the network's loads
        when ``network_loads`` is true.
    import_max_mw, export_max_mw : float
        Capacity of the supply point.
    reuse_model : bool
        LinDistFlow: solve on this network's kept LP, changing only costs
        and bounds and re-solving from the previous basis (True), or build
        and solve a fresh LP (False). Both reach an optimum of the same LP;
        only where it has several (ties between buses, a degenerate price)
        may they report different ones of equal cost. Injections with a
        reactive range or an apparent-power limit take a fresh LP either way.

    Returns
    -------
    DistFlowResult

    Raises
    ------
    InputError
        Bad prices, loads or injections, or a network that is not radial.
    SolverError
        If the demand cannot be served within the limits.

    Notes
    -----
    The network part of the problem is built once per network object and
    cached; a call adds only the injections' columns and the polygons of the
    ratings that could bind (a rating above everything that could flow
    through the branch is left out, which changes nothing). With
    ``reuse_model`` the whole LinDistFlow LP is kept per network (and
    thread) with a fixed slot of columns per bus, and grows only when a call
    needs more slots or rating polygons than any call before it.
    """
    t0 = time.perf_counter()
    if model not in _MODELS:
        raise InputError("model", f"must be one of {', '.join(_MODELS)}, got {model!r}")
    if not isinstance(network, Network):
        raise InputError("network", f"expected a Network, got {type(network).__name__}")
    export = import_price_per_mwh if export_price_per_mwh is None else export_price_per_mwh
    for name, value in (("import_price_per_mwh", import_price_per_mwh),
                        ("export_price_per_mwh", export)):
        if not np.isfinite(value):
            raise InputError(name, f"must be a finite number, got {value!r}")
    if export > import_price_per_mwh:
        raise InputError("export_price_per_mwh", "must not exceed the import price "
                         "(importing to export would be unbounded)")
    for name, value in (("import_max_mw", import_max_mw), ("export_max_mw", export_max_mw)):
        if np.isnan(value) or value < 0:
            raise InputError(name, f"must be >= 0, got {value!r}")
    if not isinstance(reuse_model, bool | np.bool_):
        raise InputError("reuse_model", f"must be true or false, got {reuse_model!r}")
    fd = _feeder(network)
    inj = injections if injections is not None else Injections(
        bus=[], p_min_mw=[], p_max_mw=[], cost_per_mwh=[])
    if not isinstance(inj, Injections):
        raise InputError("injections", f"expected Injections, got {type(inj).__name__}")
    inj_pos = _positions(fd, inj.bus)
    _reject(inj_pos < 0, "bus", "refers to a bus that does not exist")
    if len(fd.gens):
        inj = inj.concat(fd.gens)
        inj_pos = np.r_[inj_pos, _positions(fd, fd.gens.bus)]
    d_p, d_q = (bus_values(name, v, fd.n) for name, v in
                (("load_p_mw", load_p_mw), ("load_q_mvar", load_q_mvar)))
    if network_loads:
        d_p, d_q = d_p + fd.load_p_mw, d_q + fd.load_q_mvar
    if model == "soc":
        size = (np.abs(d_p).sum() + np.abs(d_q).sum() + np.abs(inj.p_min_mw).sum()
                + np.abs(inj.p_max_mw).sum() + np.abs(inj.q_min_mvar).sum()
                + np.abs(inj.q_max_mvar).sum()) / fd.base
        fd = fd.rescaled(float(np.clip(size, 1e-4, 1.0)))
    d_p, d_q = d_p / fd.base, d_q / fd.base
    supply = (float(import_price_per_mwh), float(export), import_max_mw, export_max_mw)
    if reuse_model and model == "lindistflow" and _KeptLinDistFlow.takes(inj):
        kept = _kept(fd)
        pb, lay = kept.problem(fd, inj, inj_pos, d_p, d_q, *supply)
        sol = _solve(pb, model, kept.lp)
    else:
        pb, lay = _build(fd, model, inj, inj_pos, d_p, d_q, *supply)
        sol = _solve(pb, model)
    return _result(network, fd, model, inj, inj_pos, pb, lay, sol, time.perf_counter() - t0)


def _result(net: Network, fd: _Feeder, model: DistFlowModel, inj: Injections,
            inj_pos: npt.NDArray[np.int64], pb: _Problem, lay: dict[str, Any],
            sol: LPSolution, elapsed: float) -> DistFlowResult:
    base, n, nb = fd.base, fd.n, fd.on.size
    x, y = sol.x, sol.row_dual
    dc = model == "dc"
    lam = y[:n] / base
    mu = np.zeros(n) if dc else y[n:2 * n] / base
    P = x[:nb]
    Q = np.zeros(nb) if dc else x[nb:2 * nb]
    v = np.full(n, np.nan) if dc else x[lay["i_v"]]
    vf = np.ones(nb) if dc else fd.af * v[fd.f]
    gap = float("nan")
    if model == "soc":
        lv = x[lay["i_l"]] * vf
        s2 = P**2 + Q**2
        loss = fd.r * x[lay["i_l"]]
        floor = 1e-3 * max(float(lv.max(initial=0.0)), 1e-12)
        gap = float((np.abs(lv - s2) / np.maximum(np.maximum(lv, s2), floor)).max(initial=0.0))
    else:
        loss = np.zeros(nb) if dc else fd.r * (P**2 + Q**2) / vf
    p_inj = x[lay["ip"]] * base
    q_inj = np.zeros(len(inj))
    if not dc:
        q_inj = inj.q_per_p * p_inj + lay["q_fixed"]
        q_inj[lay["iq"]] += (x[lay["iqp"]] - x[lay["iqn"]]) * base
    i_imp = lay["i_imp"]
    full = np.full(net.n_branch, np.nan)
    out: dict[str, Array] = {}
    for name, arr in (("p", P * base), ("q", Q * base), ("loss", loss * base),
                      ("loading", np.where(np.isfinite(fd.rate), np.hypot(P, Q) / fd.rate,
                                           np.nan))):
        out[name] = full.copy()
        out[name][fd.on] = arr
    rent, binding = _rent(net, fd, model, pb, lay, sol)
    return DistFlowResult(
        model=model, bus=net.bus_numbers, objective_per_h=sol.objective, vm_pu=np.sqrt(v),
        price_p_per_mwh=lam, price_q_per_mvarh=mu, p_mw=out["p"], q_mvar=out["q"],
        loss_mw=out["loss"], loading=out["loading"], p_inj_mw=p_inj, q_inj_mvar=q_inj,
        payment_inj_per_h=lam[inj_pos] * p_inj + mu[inj_pos] * q_inj,
        grid_import_mw=max(float(x[i_imp] - x[i_imp + 1]) * base, 0.0),
        grid_export_mw=max(float(x[i_imp + 1] - x[i_imp]) * base, 0.0),
        grid_q_mvar=0.0 if dc else float(x[i_imp + 2] * base),
        utility_cost_per_h=float(pb.c[i_imp] * x[i_imp] + pb.c[i_imp + 1] * x[i_imp + 1]),
        rent_per_h=rent, soc_gap=gap, exact=bool(model != "soc" or gap <= _EXACT_TOL),
        binding=binding, solve_time_s=elapsed,
    )


def _rent(net: Network, fd: _Feeder, model: DistFlowModel, pb: _Problem, lay: dict[str, Any],
          sol: LPSolution) -> tuple[float, tuple[str, ...]]:
    """Rent of the network constraints, ``-sum(dual * bound)`` over voltage
    bounds, the substation set point, branch ratings and the substation's
    import and export limits, and the names of the binding ones."""
    x, y, z = sol.x, sol.row_dual, sol.col_dual
    tol = 1e-7 * max(1.0, float(np.abs(pb.c).max(initial=0.0)))
    nums, nb = net.bus_numbers, fd.on.size
    names: list[str] = []
    branch_dual = np.zeros(nb)
    if model == "dc":
        term = float(z[:nb] @ x[:nb])
        branch_dual = np.abs(z[:nb])
    else:
        iv = lay["i_v"]
        term = float(z[iv] @ x[iv])
        other = np.arange(fd.n) != fd.root
        names += [f"vm_min[bus {b}]" for b in nums[(z[iv] > tol) & other]]
        names += [f"vm_max[bus {b}]" for b in nums[(z[iv] < -tol) & other]]
        if model == "soc":
            lim = np.flatnonzero(np.isfinite(fd.rate))
            term += float(sol.cone_dual[1] @ fd.rate[lim])
            branch_dual[lim] = np.abs(sol.cone_dual[1])
        else:
            k = lay["poly"]
            term += float(y[k] @ pb.ru[k])
            branch_dual[lay["lim"]] = np.abs(y[k]).reshape(-1, _K).sum(axis=1)
    names += [f"rate[branch {int(fd.on[i])} ({nums[fd.f[i]]}-{nums[fd.t[i]]})]"
              for i in np.flatnonzero(branch_dual > tol)]
    i_imp = lay["i_imp"]
    for col, name in ((i_imp, "import_max"), (i_imp + 1, "export_max")):
        if np.isfinite(pb.ub[col]) and z[col] < -tol:  # the substation at its limit
            term += float(z[col] * pb.ub[col])
            names.append(f"{name}[substation]")
    return -term, tuple(names)
