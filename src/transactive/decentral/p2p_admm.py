"""The ``p2p_admm`` mechanism: bilateral trades found by consensus ADMM.

Clears an :class:`~transactive.orders.OrderBatch` as the peer-to-peer market
of :mod:`~transactive.decentral.problem` with the decentralised iteration of
:mod:`~transactive.decentral.admm`, then makes the result exactly feasible:

1. the consensus trade ``z_e >= 0`` of each edge is the one number both peers
   book, so every pair's energy bought equals its energy sold;
2. an agent whose edges add up to more than its orders' quantity ``Q`` (by at
   most the stopping tolerance) has them scaled by ``Q / sum``; an edge takes
   the smaller factor of its two ends, so nobody exceeds its quantity;
3. each agent fills its orders with its total in value priority (a buyer's
   highest limits first, a seller's lowest), ties by row;
4. residues of the tolerance are cut: an agent's last order partly filled by
   less than ``10 tol`` of its quantity, and, while an edge trades with its
   seller's last filled ask above its buyer's last filled bid, the last
   order of the side whose limit is on the wrong side of the edge's price
   (the agent's edges scaled down to leave it out, step 3 redone); every
   edge's price is then clipped into ``[ask, bid]``, so every agent's average
   price lies within every one of its filled orders' limits.

Each order pays (or receives) its agent's average price per kWh over its
edges; the payments balance (the preference costs are no money). The
clearing price is the volume-weighted mean of the edge prices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.clearing import Clearing
from transactive.decentral.admm import solve_admm
from transactive.decentral.dask import DaskProposer
from transactive.decentral.problem import P2PProblem, build_problem
from transactive.errors import InputError
from transactive.markets.registry import register
from transactive.orders import OrderBatch

__all__ = ["clear_p2p_admm", "feasible_trades"]

F64 = npt.NDArray[np.float64]

_ROUNDING = 1e-12
"""A fill below this fraction of its order's quantity is rounding: none."""

_SNAP = 10.0
"""A partial fill below ``_SNAP * tol`` of an agent's quantity is left out."""


def _fills(p: P2PProblem, total: F64) -> tuple[F64, F64, F64, F64]:
    """Order fills of every agent's ``total`` in value priority; per agent
    its marginal value (the lowest value among its filled orders; inf for an
    agent that fills none), and the fill and quantity of that last order."""
    rows = np.arange(p.value.size)
    order = np.lexsort((rows, -p.value, p.order_agent))
    agent, q = p.order_agent[order], p.quantity[order]
    cum = np.cumsum(q)
    starts = np.flatnonzero(np.concatenate(([True], agent[1:] != agent[:-1])))
    count = np.diff(np.append(starts, agent.size))
    before = cum - q - np.repeat(np.concatenate(([0.0], cum[starts[1:] - 1])), count)
    fill = np.clip(total[agent] - before, 0.0, q)
    fill[fill <= _ROUNDING * q] = 0.0  # rounding of the scaling, not a trade
    accepted = np.empty_like(fill)
    accepted[order] = fill
    filled = fill > 0  # a prefix of each agent's orders
    n_filled = np.bincount(agent[filled], minlength=p.n_agents)
    marginal = np.full(p.n_agents, np.inf)
    last_fill, last_q = np.zeros(p.n_agents), np.ones(p.n_agents)
    has = np.flatnonzero(n_filled)
    at = np.full(p.n_agents, -1)
    at[agent[starts]] = starts
    last = at[has] + n_filled[has] - 1
    marginal[has], last_fill[has], last_q[has] = p.value[order][last], fill[last], q[last]
    return accepted, marginal, last_fill, last_q


def _totals(p: P2PProblem, per_edge: F64) -> F64:
    """Per agent, the sum of ``per_edge`` over its edges."""
    total = np.bincount(p.edge_buyer, per_edge, p.n_agents)
    total += np.bincount(p.edge_seller, per_edge, p.n_agents)
    return np.asarray(total, dtype=np.float64)


def _capacity(p: P2PProblem) -> F64:
    """Per agent, the quantity of its orders."""
    return np.asarray(np.bincount(p.order_agent, p.quantity, p.n_agents), dtype=np.float64)


def _scale_to(p: P2PProblem, t: F64, limit: F64) -> F64:
    """``t`` with every agent's edges scaled down to add up to ``limit`` at
    most (an edge takes the smaller factor of its two ends)."""
    total = _totals(p, t)
    with np.errstate(all="ignore"):  # the other branch where total is 0 (or tiny)
        factor = np.where(total > limit, np.maximum(limit, 0.0) / total, 1.0)
    return t * np.minimum(factor[p.edge_buyer], factor[p.edge_seller])


def feasible_trades(p: P2PProblem, trade_kwh: F64, price: F64, snap_kwh: F64
                    ) -> tuple[F64, F64, F64, F64]:
    """Steps 2-4 of the module docstring: exactly feasible trades, order
    fills, edge prices and each agent's marginal value (its last filled
    order's), from the iteration's trades and prices.

    A partial fill below ``snap_kwh`` (per agent) of an agent's last order
    is a residue of the tolerance, and so is the last order of an agent
    whose marginal value lies on the wrong side of the price of an edge on
    which it trades with a peer it should not (ask above bid): the agent's
    edges are scaled to leave that order out, until no such edge is left
    (each round drops at least one order's fill, so this ends)."""
    capacity = _capacity(p)
    smaller = np.minimum(capacity[p.edge_buyer], capacity[p.edge_seller])
    t = np.where(trade_kwh > _ROUNDING * smaller, trade_kwh, 0.0)  # rounding: no trade
    t = _scale_to(p, t, capacity)
    total = _totals(p, t)
    _, _, last_fill, last_q = _fills(p, total)
    tiny = (last_fill < last_q) & (last_fill < snap_kwh)
    t = _scale_to(p, t, np.where(tiny, total - last_fill, total))
    while True:
        total = _totals(p, t)
        accepted, marginal, last_fill, _ = _fills(p, total)
        bid, ask = marginal[p.edge_buyer], -marginal[p.edge_seller]
        bad = (t > 0) & (ask > bid)
        if not bad.any():
            break
        cut = np.zeros(p.n_agents, dtype=bool)
        cut[p.edge_buyer[bad & (bid < price)]] = True
        cut[p.edge_seller[bad & (ask > price)]] = True
        t = _scale_to(p, t, np.where(cut, total - last_fill, total))
    traded = t > 0
    edge_price = np.where(traded, np.clip(price, ask, bid, where=traded, out=price.copy()), 0.0)
    return t, accepted, edge_price, marginal


def _check(tol: object, max_iter: object, rho: object) -> None:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise InputError("tol", f"must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InputError("max_iter", f"must be a whole number >= 1, got {max_iter!r}")
    if rho is not None and (isinstance(rho, bool) or not isinstance(rho, (int, float))
                            or not (math.isfinite(rho) and rho > 0)):
        raise InputError("rho", f"must be a number > 0 or None, got {rho!r}")


@register("p2p_admm")
def clear_p2p_admm(
    orders: OrderBatch,
    /,
    *,
    neighbours: int | None = None,
    distance_cost_per_kwh: float = 0.0,
    pair_cost_per_kwh: Any = None,
    tol: float = 1e-6,
    max_iter: int = 20000,
    rho: float | None = None,
    client: Any = None,
) -> Clearing:
    """Clear ``orders`` in a peer-to-peer market by consensus ADMM.

    Parameters
    ----------
    orders : OrderBatch
        A participant's buys make one buyer, its sells one seller; never changed.
    neighbours, distance_cost_per_kwh, pair_cost_per_kwh
        The trading neighbourhood and the preference costs, as in
        :func:`~transactive.decentral.problem.build_problem`.
    tol : float
        Relative tolerance of the primal and dual residuals.
    max_iter : int
        Most iterations; the result is made feasible whether or not the
        residuals met ``tol`` (``info["converged"]`` says which).
    rho : float, optional
        Initial penalty per kWh per kWh (adapted by residual balancing).
    client : dask.distributed.Client, optional
        Solve the agents' problems in blocks on its workers
        (:class:`~transactive.decentral.dask.DaskProposer`); the same
        iterates as in one process.

    Returns
    -------
    Clearing
        Mechanism ``"p2p_admm"``. ``info`` holds ``iterations``,
        ``primal_residual``, ``dual_residual``, ``rho``, ``converged``,
        ``solve_time_s``, ``n_edges``, ``trades_kwh`` and ``trade_price``
        (scipy sparse buyers x sellers), ``buyers`` and ``sellers`` (their
        participants), ``preference_cost`` and ``net_welfare`` (welfare less
        the preference costs of the trades).

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "c", "d"],
    ...                 side=["buy", "buy", "sell", "sell"],
    ...                 price=[0.30, 0.22, 0.10, 0.20], quantity=[2.0, 1.0, 1.5, 1.0])
    >>> c = clear_p2p_admm(ob)
    >>> c.accepted.round(2).tolist(), round(c.welfare, 3), round(c.clearing_price, 3)
    ([2.0, 0.5, 1.5, 1.0], 0.36, 0.22)
    >>> c.info["trades_kwh"].shape, abs(c.operator_surplus) < 1e-12
    ((2, 2), True)
    """
    _check(tol, max_iter, rho)
    problem = build_problem(orders, neighbours=neighbours,
                            distance_cost_per_kwh=distance_cost_per_kwh,
                            pair_cost_per_kwh=pair_cost_per_kwh)
    if problem.n_edges == 0:  # one side only, or no orders: nothing trades
        return Clearing.from_allocation("p2p_admm", orders, np.zeros(len(orders)), math.nan,
                                        math.nan, info={"iterations": 0, "n_edges": 0,
                                                        "converged": True})
    proposer = None if client is None else DaskProposer(client, problem)
    result = solve_admm(problem, tol=float(tol), max_iter=max_iter,
                        rho=None if rho is None else float(rho), proposer=proposer)
    snap_kwh = _SNAP * float(tol) * _capacity(problem)
    t, accepted, edge_price, marginal = feasible_trades(problem, result.trade_kwh, result.price,
                                                        snap_kwh)
    spend = edge_price * t
    total, money = _totals(problem, t), _totals(problem, spend)
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(total > 0, money / total, np.nan)
    # within the limits despite the rounding of the mean: a buyer's bid, a seller's ask
    nb = problem.n_buyers
    average[:nb] = np.minimum(average[:nb], marginal[:nb])
    average[nb:] = np.maximum(average[nb:], -marginal[nb:])
    volume = float(t.sum())
    clearing_price = float(spend.sum()) / volume if volume > 0 else math.nan
    shape = (problem.n_buyers, problem.n_sellers)
    at = (problem.edge_buyer, problem.edge_seller - problem.n_buyers)
    preference_cost = float(np.dot(problem.cost_per_kwh, t))
    info = {"iterations": result.iterations, "primal_residual": float(result.primal_residual),
            "dual_residual": float(result.dual_residual), "rho": float(result.rho),
            "converged": result.converged, "solve_time_s": result.solve_time_s,
            "n_edges": problem.n_edges,
            "trades_kwh": sp.coo_matrix((t, at), shape=shape),
            "trade_price": sp.coo_matrix((edge_price, at), shape=shape),
            "buyers": problem.buyers, "sellers": problem.sellers,
            "preference_cost": preference_cost,
            "net_welfare": problem.net_welfare(accepted, t)}
    return Clearing.from_allocation("p2p_admm", orders, accepted,
                                    average[problem.order_agent], clearing_price, info=info)
