"""DC optimal power flow as a market clearing, solved with HiGHS (highspy).

Generators offer at their cost (linear, quadratic or convex piecewise-linear,
see :class:`~transactive.grid.network.Network`); optional price-responsive
demand ``bids`` and extra supply ``offers`` (``bus``, ``p_max_mw``,
``price_per_mwh``) sit at buses; fixed loads are inelastic. The clearing
minimises cost minus bid value subject to the DC power flow and branch
ratings, and prices every bus:

* ``lmp`` -- dual of the bus's power balance (per MWh);
* ``energy`` -- the price at the slack (reference bus, or weighted average of
  a distributed slack); ``congestion = -PTDF^T mu`` where ``mu`` is the signed
  shadow price of the binding branch limits; ``loss`` -- ``-energy * LF`` for
  given marginal loss factors ``LF`` (0 in the lossless model).

Two formulations give the same optimum:

``"ptdf"`` (default, faster)
    One system balance row; branch limits as PTDF rows over the dispatchable
    units, added lazily: solve, compute all flows with one sparse solve, add
    the violated limits, re-solve warm. No dense PTDF is ever formed.
``"angle"``
    Bus angles as variables, one balance row per bus, every limit up front.

Units: MW, per MWh, objective per hour. Sign of flows: from -> to.

What a case must hold, and the reference bus
    A DC-OPF prices generators at their costs, so a case whose in-service
    generators have no costs at all (a MATPOWER file without ``gencost``) is
    refused (``InputError`` on field ``gencost``), as is a case with no
    generator in service and no offers. The reference bus (angle 0, the
    energy part of the prices) is the case's bus of type 3. With none, the
    first bus of type 2 with an in-service generator is made the reference,
    as MATPOWER's ``bustypes`` does; with no such bus either the case is
    refused. With several buses of type 3 the first is the reference and
    the others are priced as any other bus (MATPOWER warns, and its OPF
    holds every type-3 bus at its case angle, which in a connected network
    also fixes the angle differences between them; we do not). Either
    choice is said in :attr:`DCOPFResult.notes`.

Examples
--------
>>> from transactive.grid.network import Network
>>> net = Network(
...     bus={"bus": [1, 2, 3], "type": [3, 1, 1]},
...     branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "x_pu": [0.1, 0.1, 0.1],
...             "rate_a_mw": [200.0, 200.0, 50.0]},
...     gen={"bus": [1, 2], "p_max_mw": [300.0, 300.0], "cost_per_mwh": [10.0, 20.0]},
...     load={"bus": [3], "p_mw": [120.0]})
>>> res = dcopf(net)
>>> round(res.objective, 6), res.gen["p_mw"].round(3).tolist()
(2100.0, [30.0, 90.0])
>>> res.bus[["lmp", "energy", "congestion"]].round(3).to_numpy().tolist()
[[10.0, 10.0, 0.0], [20.0, 10.0, 10.0], [30.0, 10.0, 20.0]]
>>> res.branch["shadow_price"].round(3).tolist()
[0.0, 0.0, 30.0]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.errors import InputError, SolverError
from transactive.grid import matrices
from transactive.grid.network import REF, Column, Network, build_table

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made: a clearing needs none
    import pandas as pd

    from transactive.grid.network import TableLike

__all__ = ["DCOPFResult", "Formulation", "Market", "PtdfModel", "branch_limits", "build_result",
           "dcopf", "prepare_market"]

Formulation = Literal["ptdf", "angle"]
Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_UNIT = (
    Column("bus", "int", None, "bus number"),
    Column("p_max_mw", "float", None, "most power bought (bid) or sold (offer), MW"),
    Column("price_per_mwh", "float", None, "limit price, per MWh"),
)
_INF = highspy.kHighsInf
_FEAS_TOL = 1e-6  # MW: flows within the limit by this much count as feasible


def _units(name: str, data: TableLike | None,
           net: Network) -> tuple[pd.DataFrame | None, IntArray]:
    """Validated bid/offer table (None if none given) and the bus position of each row."""
    if data is None:
        return None, np.zeros(0, dtype=np.int64)
    frame = build_table(name, data, _UNIT)
    pmax = frame["p_max_mw"].to_numpy()
    bad = np.flatnonzero(pmax < 0)
    if bad.size:
        raise InputError(f"{name}.p_max_mw", "must be >= 0", row=int(bad[0]))
    return frame, net.bus_position(frame["bus"].to_numpy(), f"{name}.bus")


@dataclass
class _Columns:
    """Decision variables shared by both formulations: dispatchable units
    (in-service generators, offers, bids) then piecewise-cost epigraph vars."""

    gen_rows: IntArray          # rows of net.gen that are in service
    pos: IntArray               # bus position of each unit column
    sign: Array                 # +1 injects (gen, offer), -1 withdraws (bid)
    lower: Array
    upper: Array
    cost: Array
    quad: Array                 # Hessian diagonal (2 * c2)
    n_offer: int
    n_bid: int
    pwl_rows: sp.csr_matrix     # epigraph rows over all columns (units + y)
    pwl_lower: Array
    n_y: int
    offset: float

    @property
    def n_unit(self) -> int:
        return self.pos.size

    @property
    def n_col(self) -> int:
        return self.pos.size + self.n_y


def _columns(net: Network, bids: pd.DataFrame | None, bid_pos: IntArray,
             offers: pd.DataFrame | None, offer_pos: IntArray) -> _Columns:
    on = net.column("gen", "in_service")
    rows = np.flatnonzero(on)
    n_g, n_o, n_b = rows.size, offer_pos.size, bid_pos.size
    cat = np.concatenate
    pos = cat([net.gen_position[rows], offer_pos, bid_pos]).astype(np.int64)
    sign = cat([np.ones(n_g + n_o), -np.ones(n_b)])
    lower = cat([net.column("gen", "p_min_mw")[rows], np.zeros(n_o + n_b)])
    def col(frame: pd.DataFrame | None, name: str) -> Array:
        return frame[name].to_numpy() if frame is not None and len(frame) else np.zeros(0)

    upper = cat([net.column("gen", "p_max_mw")[rows], col(offers, "p_max_mw"),
                 col(bids, "p_max_mw")])
    cost = cat([net.column("gen", "cost_per_mwh")[rows], col(offers, "price_per_mwh"),
                -col(bids, "price_per_mwh")])
    quad = cat([2.0 * net.column("gen", "cost_per_mw2h")[rows], np.zeros(n_o + n_b)])
    offset = float(net.column("gen", "cost_per_h")[rows].sum())
    # piecewise costs: y_g >= m_s p_g + c_s for every segment s of generator g
    col_of_gen = np.full(net.n_gen, -1)
    col_of_gen[rows] = np.arange(n_g)
    g = net.column("pwl_cost", "gen")
    live = col_of_gen[g] >= 0
    g, p, c = (g[live], net.column("pwl_cost", "p_mw")[live],
               net.column("pwl_cost", "cost_per_h")[live])
    seg = np.flatnonzero(g[1:] == g[:-1])
    ygens, y_of_seg = np.unique(g[seg], return_inverse=True)
    slope = (c[seg + 1] - c[seg]) / (p[seg + 1] - p[seg])
    n_s, n_y, n_u = seg.size, ygens.size, pos.size
    pwl_rows = sp.csr_matrix(
        (cat([-slope, np.ones(n_s)]),
         (cat([np.arange(n_s), np.arange(n_s)]), cat([col_of_gen[g[seg]], n_u + y_of_seg]))),
        shape=(n_s, n_u + n_y))
    return _Columns(rows, pos, sign, lower, upper, cost, quad, n_o, n_b, pwl_rows,
                    c[seg] - slope * p[seg], n_y, offset)


class _Highs:
    """A HiGHS model built once in column form, then grown by rows and re-solved."""

    def __init__(self, cols: _Columns, a: sp.csc_matrix, extra_cols: tuple[Array, Array, Array],
                 row_lower: Array, row_upper: Array) -> None:
        x_cost, x_lower, x_upper = extra_cols
        n_col = a.shape[1]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_col, a.shape[0]
        lp.col_cost_ = np.concatenate([cols.cost, np.ones(cols.n_y), x_cost])
        lp.col_lower_ = np.concatenate([cols.lower, np.full(cols.n_y, -_INF), x_lower])
        lp.col_upper_ = np.concatenate([cols.upper, np.full(cols.n_y, _INF), x_upper])
        lp.row_lower_, lp.row_upper_ = row_lower, row_upper
        lp.offset_ = cols.offset
        mat = lp.a_matrix_
        mat.format_ = highspy.MatrixFormat.kColwise
        mat.num_col_, mat.num_row_ = n_col, a.shape[0]
        mat.start_, mat.index_, mat.value_ = a.indptr, a.indices, a.data
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        quad = np.flatnonzero(cols.quad > 0)
        if quad.size:
            model = highspy.HighsModel()
            model.lp_ = lp
            hess = highspy.HighsHessian()
            hess.dim_ = n_col
            hess.format_ = highspy.HessianFormat.kTriangular
            counts = np.zeros(n_col + 1, dtype=np.int32)
            counts[quad + 1] = 1
            hess.start_ = np.cumsum(counts, dtype=np.int32)
            hess.index_ = quad.astype(np.int32)
            hess.value_ = cols.quad[quad]
            model.hessian_ = hess
            self.h.passModel(model)
        else:
            self.h.passModel(lp)
        self.is_qp = bool(quad.size)
        self.solve_time_s = 0.0
        self.n_solves = 0

    def add_dense_rows(self, coef: Array, lower: Array, upper: Array) -> None:
        """Append rows given densely over the first ``coef.shape[1]`` columns."""
        n, m = coef.shape
        self.h.addRows(n, lower, upper, n * m, np.arange(0, n * m + 1, m, dtype=np.int32)[:-1],
                       np.tile(np.arange(m, dtype=np.int32), n), np.ascontiguousarray(coef))

    def solve(self, explain: Callable[[], str]) -> tuple[Array, Array]:
        """Solve; return (column values, row duals), or raise SolverError."""
        t0 = time.perf_counter()
        self.h.run()
        self.solve_time_s += time.perf_counter() - t0
        self.n_solves += 1
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            text = self.h.modelStatusToString(status)
            if status in (highspy.HighsModelStatus.kInfeasible,
                          highspy.HighsModelStatus.kUnboundedOrInfeasible):
                raise SolverError(f"the market cannot clear: {explain()}")
            raise SolverError(f"HiGHS could not solve the clearing: {text}")
        sol = self.h.getSolution()
        return np.asarray(sol.col_value), np.asarray(sol.row_dual)

    def iis_rows(self) -> IntArray:
        """Rows of an irreducible infeasible subset, if HiGHS finds one.

        Feasibility does not depend on the objective, so a QP is turned into
        an LP first (this model is not solved again afterwards)."""
        try:
            if self.is_qp:
                n = self.h.getNumCol()
                self.h.passHessian(n, 0, highspy.HessianFormat.kTriangular.value,
                                   np.zeros(n + 1, dtype=np.int32), np.zeros(0, dtype=np.int32),
                                   np.zeros(0))
                self.h.run()
            strategy = (highspy.IisStrategy.kIisStrategyFromLp.value
                        | highspy.IisStrategy.kIisStrategyIrreducible.value)
            self.h.setOptionValue("iis_strategy", strategy)
            status, iis = self.h.getIis()
        except Exception:  # pragma: no cover - depends on the HiGHS build
            return np.zeros(0, dtype=np.int64)
        if status != highspy.HighsStatus.kOk or not iis.valid_:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(iis.row_index_, dtype=np.int64)

    @property
    def objective(self) -> float:
        return float(self.h.getInfo().objective_function_value)


@dataclass(frozen=True, eq=False)
class DCOPFResult:
    """The outcome of a DC-OPF clearing (never written into the network).

    Attributes
    ----------
    objective : float
        Generation and offer cost minus bid value, per hour (includes fixed
        generator costs ``cost_per_h``).
    bus, branch, gen, bids, offers : DataFrame
        Result tables (built on first access): ``bus`` (bus, lmp, energy,
        congestion, loss, va_deg, injection_mw), ``branch`` (from_bus, to_bus,
        flow_mw, limit_mw, shadow_price, loading), ``gen`` (bus, p_mw, in_service),
        ``bids``/``offers`` (bus, p_mw cleared, price_per_mwh, lmp).
    lmp, flow_mw, shadow_price : ndarray
        The same as arrays, in bus / branch position order. ``shadow_price``
        is >= 0, the cost saved per MW of extra rating; its direction is the
        sign of the flow.
    congestion_rent : float
        ``sum(shadow_price * limit_mw)`` over binding limits, per hour.
    merchandising_surplus : float
        What withdrawals pay minus what injections are paid at the LMPs, per
        hour; equal to the congestion rent without phase shifters or losses.
    formulation, solve_time_s, n_solves, n_limits
        How it was solved: HiGHS run time over ``n_solves`` solves and the
        number of branch-limit rows in the final model.
    notes : tuple of str
        What the clearing decided that the case did not say, one sentence
        each, for the user to read (e.g. which bus was made the reference
        when the case has none, or several); empty when there is nothing to say.
    """

    network: Network = field(repr=False)
    objective: float
    lmp: Array = field(repr=False)
    energy: Array = field(repr=False)
    loss: Array = field(repr=False)
    va_rad: Array = field(repr=False)
    injection_mw: Array = field(repr=False)
    flow_mw: Array = field(repr=False)
    limit_mw: Array = field(repr=False)
    shadow_price: Array = field(repr=False)
    gen_p_mw: Array = field(repr=False)
    bids_in: pd.DataFrame | None = field(repr=False)  # None: no bids were given
    bid_p_mw: Array = field(repr=False)
    offers_in: pd.DataFrame | None = field(repr=False)
    offer_p_mw: Array = field(repr=False)
    formulation: str
    solve_time_s: float
    n_solves: int
    n_limits: int
    notes: tuple[str, ...]

    @property
    def congestion(self) -> Array:
        """Congestion part of the LMP per bus position."""
        return self.lmp - self.energy - self.loss

    @property
    def congestion_rent(self) -> float:
        """Sum of shadow price times rating over binding branch limits, per hour."""
        lim = np.where(np.isfinite(self.limit_mw), self.limit_mw, 0.0)
        return float(np.sum(self.shadow_price * lim))

    @property
    def merchandising_surplus(self) -> float:
        """Withdrawals paid minus injections paid at the LMPs, per hour."""
        return float(-np.dot(self.lmp, self.injection_mw))

    @cached_property
    def bus(self) -> pd.DataFrame:
        """Per bus: bus, lmp, energy, congestion, loss, va_deg, injection_mw."""
        import pandas as pd

        return pd.DataFrame({
            "bus": self.network.bus_numbers, "lmp": self.lmp, "energy": self.energy,
            "congestion": self.congestion, "loss": self.loss, "va_deg": np.rad2deg(self.va_rad),
            "injection_mw": self.injection_mw})

    @cached_property
    def branch(self) -> pd.DataFrame:
        """Per branch: from_bus, to_bus, flow_mw, limit_mw, shadow_price, loading."""
        import pandas as pd

        net = self.network
        with np.errstate(divide="ignore", invalid="ignore"):
            loading = np.abs(self.flow_mw) / self.limit_mw
        return pd.DataFrame({
            "from_bus": net.column("branch", "from_bus"), "to_bus": net.column("branch", "to_bus"),
            "flow_mw": self.flow_mw, "limit_mw": self.limit_mw,
            "shadow_price": self.shadow_price, "loading": loading})

    @cached_property
    def gen(self) -> pd.DataFrame:
        """Per generator row of the network: bus, p_mw, in_service."""
        import pandas as pd

        net = self.network
        return pd.DataFrame({"bus": net.column("gen", "bus"), "p_mw": self.gen_p_mw,
                             "in_service": net.column("gen", "in_service")})

    def _units(self, frame: pd.DataFrame | None, p_mw: Array) -> pd.DataFrame:
        import pandas as pd

        if frame is None:
            frame = build_table("units", None, _UNIT)
        pos = self.network.bus_position(frame["bus"].to_numpy())
        return pd.DataFrame({"bus": frame["bus"].to_numpy(), "p_mw": p_mw,
                             "price_per_mwh": frame["price_per_mwh"].to_numpy(),
                             "lmp": self.lmp[pos]})

    @cached_property
    def bids(self) -> pd.DataFrame:
        """Per bid: bus, p_mw (cleared), price_per_mwh, lmp."""
        return self._units(self.bids_in, self.bid_p_mw)

    @cached_property
    def offers(self) -> pd.DataFrame:
        """Per offer: bus, p_mw (cleared), price_per_mwh, lmp."""
        return self._units(self.offers_in, self.offer_p_mw)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with MATPOWER bus numbers::

            {"objective", "buses": [{"bus", "lmp", "energy", "congestion", "loss"}],
             "branches": [{"from_bus", "to_bus", "flow_mw", "limit_mw", "shadow_price"}],
             "generators": [{"bus", "p_mw"}]}

        An unlimited branch has ``limit_mw`` ``None``.
        """
        net = self.network
        # tolist() gives Python ints and floats (as int() and float() of each element)
        limit = [v if math.isfinite(v) else None for v in self.limit_mw.tolist()]
        return {
            "objective": float(self.objective),
            "buses": [
                {"bus": n, "lmp": a, "energy": e, "congestion": c, "loss": lo}
                for n, a, e, c, lo in zip(net.bus_numbers.tolist(), self.lmp.tolist(),
                                          self.energy.tolist(), self.congestion.tolist(),
                                          self.loss.tolist(), strict=True)],
            "branches": [
                {"from_bus": f, "to_bus": t, "flow_mw": fl, "limit_mw": lim, "shadow_price": s}
                for f, t, fl, lim, s in zip(net.column("branch", "from_bus").tolist(),
                                            net.column("branch", "to_bus").tolist(),
                                            self.flow_mw.tolist(), limit,
                                            self.shadow_price.tolist(), strict=True)],
            "generators": [{"bus": n, "p_mw": p}
                           for n, p in zip(net.column("gen", "bus").tolist(),
                                           self.gen_p_mw.tolist(), strict=True)],
        }


# ------------------------------------------------------------------ helpers
def branch_limits(net: Network, rating: str | float) -> Array:
    """Branch limits in MW for a rating name (``"a"``, ``"b"``, ``"c"``) or a
    factor on rate A; out-of-service branches get inf. A missing (inf) rate B
    or C falls back to rate A."""
    if isinstance(rating, str):
        if rating not in ("a", "b", "c"):
            raise InputError("rating", f"must be 'a', 'b', 'c' or a factor, got {rating!r}")
        lim = net.column("branch", f"rate_{rating}_mw")
        lim = np.where(np.isinf(lim), net.column("branch", "rate_a_mw"), lim)
    else:
        if not np.isfinite(rating) or rating <= 0:
            raise InputError("rating", f"a rating factor must be > 0, got {rating!r}")
        lim = net.column("branch", "rate_a_mw") * float(rating)
    return np.where(net.column("branch", "in_service"), lim, np.inf)


def _check_case(net: Network, *, has_offers: bool) -> tuple[str, ...]:
    """Refuse a case a DC-OPF cannot price; say which bus is the reference
    when the case does not (the notes of :class:`DCOPFResult`)."""
    on = net.column("gen", "in_service")
    if not on.any() and not has_offers:
        raise InputError("gen", "the case has no generator in service (and there are no "
                                "offers); a DC-OPF needs supply to clear")
    priced = ((net.column("gen", "cost_per_mw2h") != 0) | (net.column("gen", "cost_per_mwh") != 0))
    priced[net.column("pwl_cost", "gen")] = True
    if on.any() and not priced[on].any():
        raise InputError("gencost", "the case has no generator costs; a DC-OPF needs them "
                                    "(MATPOWER's mpc.gencost, or the gen table's cost columns)")
    refs = np.flatnonzero(net.column("bus", "type") == REF)
    numbers = net.bus_numbers
    if refs.size == 1:
        return ()
    if refs.size > 1:
        listed = ", ".join(str(b) for b in numbers[refs[:10]].tolist())
        return (f"the case has {refs.size} reference buses (type 3: {listed}"
                f"{', ...' if refs.size > 10 else ''}); the first, bus {numbers[refs[0]]}, is "
                "the angle and energy-price reference, the others are priced as any bus",)
    if net.pv_with_generator.size == 0:
        raise InputError("bus.type", "the case has no reference bus (type 3) and no PV bus "
                                     "(type 2) with an in-service generator to take its place")
    return (f"the case has no reference bus (type 3); bus {net.ref_bus}, the first PV bus "
            "(type 2) with an in-service generator, was made the reference (as MATPOWER "
            "does)",)


def _check_capacity(net: Network, cols: _Columns) -> None:
    """Clear messages for the commonest infeasibility, before solving."""
    load = float(net.bus_load_mw.sum())
    inj = cols.sign > 0
    most = float(cols.upper[inj].sum() - cols.lower[~inj].sum())
    least = float(cols.lower[inj].sum() - cols.upper[~inj].sum())
    if load > most + _FEAS_TOL:
        raise SolverError(f"the market cannot clear: load {load:.6g} MW exceeds the total "
                          f"capacity {most:.6g} MW of the generators and offers")
    if load < least - _FEAS_TOL:
        raise SolverError(f"the market cannot clear: minimum generation {least:.6g} MW exceeds "
                          f"the load {load:.6g} MW")


# ------------------------------------------------------------------- solver
def dcopf(
    net: Network,
    *,
    bids: TableLike | None = None,
    offers: TableLike | None = None,
    formulation: Formulation = "ptdf",
    rating: str | float = "a",
    slack: matrices.Slack = None,
    loss_factors: npt.ArrayLike | None = None,
    loss_offset_mw: float = 0.0,
) -> DCOPFResult:
    """Clear a network-constrained market by DC optimal power flow.

    Parameters
    ----------
    net : Network
        A connected network; its generators offer at their costs and its loads
        are fixed.
    bids, offers : DataFrame or mapping, optional
        Price-responsive demand and extra supply: columns ``bus``,
        ``p_max_mw`` (>= 0) and ``price_per_mwh``.
    formulation : {"ptdf", "angle"}
        Lazy PTDF limits (default, faster) or bus angles with every limit.
    rating : {"a", "b", "c"} or float
        Which branch rating limits flows, or a factor on rate A.
    slack : int, array or None
        Slack for the energy / congestion split (reference bus, a bus number
        or per-bus weights); the dispatch and LMPs do not depend on it.
    loss_factors : array, optional
        Marginal loss factors per bus position (``LF``, positive where more
        injection raises losses), relative to the slack. The balance becomes
        ``sum((1 - LF) * injection) = loss_offset_mw`` and ``loss = -energy *
        LF``. Needs ``formulation="ptdf"``.
    loss_offset_mw : float
        The constant of the linearised losses around an operating point
        ``p*``: ``losses(p*) - sum(LF * p*)``, MW (0 without loss factors).

    Returns
    -------
    DCOPFResult

    Raises
    ------
    InputError
        Bad bids/offers, an unknown option, a split network (names the
        islands), a case without generator costs (field ``gencost``), without
        supply, or without a bus that can be the reference (see the module
        notes).
    SolverError
        The market cannot clear; the message names the conflict (load above
        capacity, or the limits and balances HiGHS finds in conflict).
    """
    if formulation not in ("ptdf", "angle"):
        raise InputError("formulation", f"must be 'ptdf' or 'angle', got {formulation!r}")
    if loss_factors is not None and formulation != "ptdf":
        raise InputError("loss_factors", "need formulation='ptdf'")
    market = prepare_market(net, bids=bids, offers=offers, rating=rating, slack=slack,
                            loss_factors=loss_factors, loss_offset_mw=loss_offset_mw)
    if formulation == "angle":
        sol = _solve_angle(market)
    else:
        model = PtdfModel(market)
        model.lazy_limits(np.flatnonzero(np.isfinite(market.limit)), market.limit)
        sol = model.solve()
    return build_result(market, sol, formulation)


@dataclass
class Market:
    """Validated inputs of one clearing, shared by DC-OPF and SCOPF."""

    net: Network
    cols: _Columns
    flows: matrices.DCPowerFlow
    limit: Array            # base-case branch limits, MW (inf = none)
    weights: Array          # slack weights for the energy / congestion split
    lf: Array               # marginal loss factors (0 in the lossless model)
    loss_offset_mw: float   # constant of the linearised losses, MW
    bids: pd.DataFrame | None    # None: no bids
    offers: pd.DataFrame | None  # None: no offers
    notes: tuple[str, ...]  # see DCOPFResult.notes

    def injection_mw(self, x: Array) -> Array:
        """Net injection per bus position, MW, for column values ``x``."""
        return _injection(self.net, self.cols, x)


def prepare_market(net: Network, *, bids: TableLike | None = None,
                   offers: TableLike | None = None, rating: str | float = "a",
                   slack: matrices.Slack = None,
                   loss_factors: npt.ArrayLike | None = None,
                   loss_offset_mw: float = 0.0) -> Market:
    """Validate the inputs of a clearing and factorise the network (see :func:`dcopf`)."""
    bid_frame, bid_pos = _units("bids", bids, net)
    offer_frame, offer_pos = _units("offers", offers, net)
    limit = branch_limits(net, rating)
    weights = matrices.slack_weights(net, slack)
    lf = np.zeros(net.n_bus)
    if loss_factors is not None:
        lf = np.asarray(loss_factors, dtype=np.float64)
        if lf.shape != (net.n_bus,) or not np.isfinite(lf).all():
            raise InputError("loss_factors", f"must be {net.n_bus} finite numbers")
    if not np.isfinite(loss_offset_mw):
        raise InputError("loss_offset_mw", "must be finite")
    notes = _check_case(net, has_offers=offer_pos.size > 0)
    cols = _columns(net, bid_frame, bid_pos, offer_frame, offer_pos)
    _check_capacity(net, cols)
    return Market(net, cols, matrices.DCPowerFlow(net), limit, weights, lf,
                  float(loss_offset_mw), bid_frame, offer_frame, notes)


@dataclass
class _Solution:
    """What a formulation hands back: values, prices and how it was solved."""

    x: Array                # unit columns then epigraph columns
    lam: float              # system energy price at the reference bus
    c_ref: Array            # congestion part per bus, reference-bus slack
    mu: Array               # signed shadow price per branch (base-case limits)
    va_rad: Array | None    # bus angles if the formulation has them
    highs: _Highs
    n_limits: int
    row_mu: Array = field(default_factory=lambda: np.zeros(0))  # signed, per flow row


def _injection(net: Network, cols: _Columns, x: Array) -> Array:
    """Net injection per bus position, MW, for unit values ``x``."""
    u = x[:cols.n_unit] * cols.sign
    return np.bincount(cols.pos, weights=u, minlength=net.n_bus) - net.bus_load_mw


def _solve_angle(market: Market) -> _Solution:
    net, cols, flows, limit = market.net, market.cols, market.flows, market.limit
    n_b, n_u = net.n_bus, cols.n_unit
    limited = np.flatnonzero(np.isfinite(limit))
    unit_bus = sp.csr_matrix((cols.sign, (cols.pos, np.arange(n_u))), shape=(n_b, n_u))
    # angle columns hold base_mva * theta, so the coefficients are susceptances in pu
    # (a QP solver needs the better scaling)
    b = matrices.bbus(net)
    n_s = cols.pwl_rows.shape[0]
    a = sp.vstack([
        sp.hstack([unit_bus, sp.csr_matrix((n_b, cols.n_y)), -b]),
        sp.hstack([sp.csr_matrix((limited.size, cols.n_col)),
                   flows.bf[limited] / net.base_mva]),
        sp.hstack([cols.pwl_rows, sp.csr_matrix((n_s, n_b))]),
    ]).tocsc()
    a.sort_indices()
    rhs = net.bus_load_mw + flows.p_shift
    fs = flows.f_shift[limited]
    va_lo, va_hi = np.full(n_b, -_INF), np.full(n_b, _INF)
    va_lo[net.ref_position] = va_hi[net.ref_position] = 0.0
    highs = _Highs(cols, a, (np.zeros(n_b), va_lo, va_hi),
                   np.r_[rhs, -limit[limited] - fs, cols.pwl_lower],
                   np.r_[rhs, limit[limited] - fs, np.full(n_s, _INF)])

    def explain() -> str:
        rows = highs.iis_rows()
        names = []
        for r in rows[:8].tolist():
            if r < n_b:
                names.append(f"power balance at bus {net.bus_numbers[r]}")
            elif r < n_b + limited.size:
                names.append(_branch_name(net, int(limited[r - n_b])))
        return ("these constraints conflict: " + ", ".join(names) if names else
                "the branch limits cannot be met with the available generation")

    x, dual = highs.solve(explain)
    lmp = dual[:n_b]
    mu = np.zeros(net.n_branch)
    mu[limited] = -dual[n_b:n_b + limited.size]
    return _Solution(x[:cols.n_col], float(lmp[net.ref_position]),
                     lmp - lmp[net.ref_position], mu, x[cols.n_col:] / net.base_mva, highs,
                     limited.size)


def _branch_name(net: Network, k: int) -> str:
    f, t = net.column("branch", "from_bus")[k], net.column("branch", "to_bus")[k]
    return f"branch {k} ({f}-{t})"


class PtdfModel:
    """The PTDF formulation, grown by flow-limit rows (used by DC-OPF and SCOPF).

    Columns are the dispatchable units (and piecewise-cost epigraph variables);
    row 0 is the system balance, then piecewise-cost rows, then one row per
    monitored flow. A monitored flow is ``f[mon] + lodf * f[out]`` (``out`` =
    -1 for a base-case limit), bounded by ``+/- limit``. PTDF rows are computed
    only for the branches that enter the model, with the one sparse LU.
    """

    def __init__(self, market: Market, ptdf_matrix: Array | None = None) -> None:
        net, cols, flows = market.net, market.cols, market.flows
        self.net, self.cols, self.flows = net, cols, flows
        self.lf = market.lf
        self.f0 = flows.flows(-net.bus_load_mw)  # flows with every unit at zero
        self._full = ptdf_matrix
        self._ptdf: dict[int, Array] = {}
        n_s = cols.pwl_rows.shape[0]
        bal = sp.csr_matrix((cols.sign * (1.0 - self.lf[cols.pos]),
                             (np.zeros(cols.n_unit, dtype=np.int64), np.arange(cols.n_unit))),
                            shape=(1, cols.n_col))
        a = (sp.vstack([bal, cols.pwl_rows]) if n_s else bal).tocsc()
        a.sort_indices()
        rhs = float(np.dot(1.0 - self.lf, net.bus_load_mw)) + market.loss_offset_mw
        self.highs = _Highs(cols, a, (np.zeros(0), np.zeros(0), np.zeros(0)),
                            np.concatenate([[rhs], cols.pwl_lower]),
                            np.concatenate([[rhs], np.full(n_s, _INF)]))
        self.n_fixed_rows = 1 + n_s
        self.mon = np.zeros(0, dtype=np.int64)
        self.out = np.zeros(0, dtype=np.int64)
        self.lodf = np.zeros(0)
        self.limit = np.zeros(0)
        self._lazy: tuple[IntArray, Array] | None = None
        self._hopeless = np.zeros(0, dtype=bool)  # rows no dispatch can satisfy
        self.iterations = 0

    def ptdf(self, branches: IntArray) -> Array:
        """PTDF rows (all bus positions) of ``branches``, computed once each."""
        if self._full is not None:
            return self._full[branches]
        need = np.array([k for k in np.unique(branches).tolist() if k not in self._ptdf],
                        dtype=np.int64)
        if need.size:
            for k, row in zip(need.tolist(), self.flows.ptdf_rows(need), strict=True):
                self._ptdf[k] = row
        if branches.size == 0:
            return np.zeros((0, self.net.n_bus))
        return np.stack([self._ptdf[k] for k in branches.tolist()])

    def add_rows(self, mon: IntArray, out: IntArray, lodf: Array, limit: Array) -> None:
        """Add monitored flows ``f[mon] + lodf * f[out]`` within ``+/- limit``."""
        if mon.size == 0:
            return
        rows = self.ptdf(mon)
        const = self.f0[mon].copy()
        has = out >= 0
        if has.any():
            rows[has] += lodf[has, None] * self.ptdf(out[has])
            const[has] += lodf[has] * self.f0[out[has]]
        coef = rows[:, self.cols.pos] * self.cols.sign  # over the unit columns only
        self.highs.add_dense_rows(coef, -limit - const, limit - const)
        lo, hi = self.cols.lower, self.cols.upper
        act_lo = np.minimum(coef * lo, coef * hi).sum(axis=1)
        act_hi = np.maximum(coef * lo, coef * hi).sum(axis=1)
        cat = np.concatenate
        self._hopeless = cat([self._hopeless, (act_hi < -limit - const - _FEAS_TOL)
                              | (act_lo > limit - const + _FEAS_TOL)])
        self.mon, self.out = cat([self.mon, mon]), cat([self.out, out])
        self.lodf, self.limit = cat([self.lodf, lodf]), cat([self.limit, limit])

    def lazy_limits(self, branches: IntArray, limit: Array) -> None:
        """Base-case limits (``limit`` per network branch) on ``branches``, added
        to the model only once a solve violates them."""
        self._lazy = (branches, limit)

    def _add_violated(self, flow: Array) -> int:
        if self._lazy is None:
            return 0
        branches, limit = self._lazy
        over = np.abs(flow[branches]) > limit[branches] + _FEAS_TOL
        add = branches[over & ~np.isin(branches, self.mon[self.out < 0])]
        self.add_rows(add, np.full(add.size, -1), np.zeros(add.size), limit[add])
        return int(add.size)

    def solve(self, screen: Callable[[Array], int] | None = None) -> _Solution:
        """Solve; after each solve add the violated lazy limits and whatever
        ``screen(base_flows_mw)`` adds (it returns the number of rows added);
        stop when a solve adds nothing."""
        self.iterations = 0
        while True:
            x, dual = self.highs.solve(self._explain)
            self.iterations += 1
            flow = self.flows.flows(_injection(self.net, self.cols, x))
            added = self._add_violated(flow)
            if screen is not None:
                added += screen(flow)
            if added == 0:
                return self.solution(x, dual)

    def solution(self, x: Array, dual: Array) -> _Solution:
        """Prices from the duals of the current model."""
        lam = float(dual[0])
        mu_rows = -dual[self.n_fixed_rows:]
        act = np.flatnonzero(mu_rows != 0)
        c_ref = np.zeros(self.net.n_bus)
        if act.size:
            rows = self.ptdf(self.mon[act])
            has = self.out[act] >= 0
            if has.any():
                rows[has] += self.lodf[act][has, None] * self.ptdf(self.out[act][has])
            c_ref = -(mu_rows[act] @ rows)
        mu = np.zeros(self.net.n_branch)
        base = self.out < 0
        np.add.at(mu, self.mon[base], mu_rows[base])
        return _Solution(x, lam, c_ref, mu, None, self.highs, int(self.mon.size), mu_rows)

    def row_name(self, i: int) -> str:
        """Words for monitored-flow row ``i``."""
        name = f"limit of {_branch_name(self.net, int(self.mon[i]))}"
        if self.out[i] >= 0:
            name += f" after outage of {_branch_name(self.net, int(self.out[i]))}"
        return name

    def _explain(self) -> str:
        bad = np.flatnonzero(self._hopeless)
        if bad.size:
            text = "no dispatch within the unit limits meets the "
        else:
            rows = self.highs.iis_rows()
            bad = rows[rows >= self.n_fixed_rows] - self.n_fixed_rows
            text = "these constraints conflict: "
            if rows.size and rows[0] == 0:
                text += "system power balance, "
        if bad.size == 0:
            return "the branch limits cannot be met with the available generation"
        outs = np.unique(self.out[bad][self.out[bad] >= 0])
        lead = ""
        if outs.size:
            lead = ("N-1 security cannot be met: the outage of "
                    + ", ".join(_branch_name(self.net, int(k)) for k in outs[:10].tolist())
                    + " cannot be secured; ")
        return lead + text + ", ".join(self.row_name(i) for i in bad[:8].tolist())


def build_result(market: Market, sol: _Solution, formulation: str,
                 cls: type[DCOPFResult] | None = None, **extra: Any) -> DCOPFResult:
    """The result object of a solved clearing (``cls`` may be a subclass that
    takes the ``extra`` fields)."""
    net, cols, flows, lf = market.net, market.cols, market.flows, market.lf
    x = sol.x
    inj = _injection(net, cols, x)
    va_rad = sol.va_rad if sol.va_rad is not None else flows.angles(inj)
    shift = float(np.dot(market.weights, sol.c_ref))
    gen_p = np.zeros(net.n_gen)
    n_g = cols.gen_rows.size
    gen_p[cols.gen_rows] = x[:n_g]
    return (cls or DCOPFResult)(
        network=net, objective=sol.highs.objective,
        lmp=sol.lam * (1.0 - lf) + sol.c_ref, energy=np.full(net.n_bus, sol.lam + shift),
        loss=-sol.lam * lf + 0.0,  # + 0.0: no negative zeros
        va_rad=va_rad, injection_mw=inj, flow_mw=flows.bf @ va_rad + flows.f_shift,
        limit_mw=market.limit, shadow_price=np.abs(sol.mu), gen_p_mw=gen_p,
        bids_in=market.bids, bid_p_mw=x[n_g + cols.n_offer:cols.n_unit],
        offers_in=market.offers, offer_p_mw=x[n_g:n_g + cols.n_offer],
        formulation=formulation, solve_time_s=sol.highs.solve_time_s,
        n_solves=sol.highs.n_solves, n_limits=sol.n_limits, notes=market.notes, **extra)
