"""A peer-to-peer market with product differentiation, as arrays, and its central optimum.

The agents are the distinct ``(participant, side)`` pairs of an
:class:`~transactive.orders.OrderBatch`: a participant's buy orders make one
buyer, its sell orders one seller. A buyer's orders are a concave,
piecewise-linear utility of the energy it buys (its limit prices are the
steps of its marginal value), a seller's a convex, piecewise-linear cost of
the energy it sells. Buyers and sellers trade bilaterally along the *edges*
of a sparse trading neighbourhood, and each edge ``(b, s)`` carries a
preference cost ``c_bs >= 0`` per kWh (a distance charge, a dislike of grey
origin): the same kWh is a different product from different peers. The
market maximises

    sum_b U_b(sum_s t_bs) - sum_s C_s(sum_b t_bs) - sum_(b,s) c_bs t_bs,
    t_bs >= 0 on the edges,

the formulation of Sorin, Bobo & Pinson, "Consensus-based approach to
peer-to-peer electricity markets with product differentiation", *IEEE
Transactions on Power Systems* 34(2), 994-1004 (2019), with the agents'
quadratic costs there replaced by the piecewise-linear ones orders state. A
preference cost is a cost, never a premium, so that no order pays more than
its limit: a premium for green origin is a cost on the grey edges.

Buyers are numbered in the sorted order of their participants, and so are
sellers; a cost matrix is indexed ``[buyer, seller]``.
:func:`solve_central` solves the problem as one LP with HiGHS (the
reference the decentralised solver is checked against).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.errors import InputError
from transactive.grid._lp import solve_highs
from transactive.orders import BUY, OrderBatch

__all__ = ["CentralSolution", "P2PProblem", "build_problem", "solve_central"]

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class P2PProblem:
    """Agents, their orders and the edges they trade on.

    Agents ``0 .. n_buyers - 1`` are the buyers, the rest the sellers.
    ``order_agent[j]`` is the agent of order ``j`` and ``value[j]`` its limit
    price read as a marginal value: the price for a buy, minus the price for
    a sell (so one rule serves both sides). Edge ``e`` joins buyer
    ``edge_buyer[e]`` and seller agent ``edge_seller[e]`` at
    ``cost_per_kwh[e]``.
    """

    n_buyers: int
    n_sellers: int
    buyers: npt.NDArray[Any]
    sellers: npt.NDArray[Any]
    order_agent: Ints
    value: F64
    quantity: F64
    edge_buyer: Ints
    edge_seller: Ints
    cost_per_kwh: F64

    @property
    def n_agents(self) -> int:
        return self.n_buyers + self.n_sellers

    @property
    def n_edges(self) -> int:
        return int(self.edge_buyer.size)

    def net_welfare(self, accepted: F64, trade_kwh: F64) -> float:
        """Gains from trade less the preference costs of the trades."""
        return float(np.dot(accepted, self.value) - np.dot(self.cost_per_kwh, trade_kwh))


def _positions(orders: OrderBatch, participants: npt.NDArray[Any]) -> F64:
    """Where each participant sits on a line: its bus (the ``node`` of its
    first order) if the orders have nodes, else its rank among participants."""
    if orders.node is None:
        return np.arange(participants.size, dtype=np.float64)
    _, first = np.unique(orders.participant, return_index=True)
    return orders.node[first].astype(np.float64)


def _nearest(pos_from: F64, pos_to: F64, k: int) -> tuple[Ints, Ints]:
    """Each agent of ``pos_from`` with its ``k`` nearest of ``pos_to`` (ties by index)."""
    k = min(k, pos_to.size)
    order = np.argsort(pos_to, kind="stable")
    sorted_pos = pos_to[order]
    at = np.searchsorted(sorted_pos, pos_from)
    window = at[:, None] + np.arange(-k, k)[None, :]
    ok = (window >= 0) & (window < pos_to.size)
    window = np.clip(window, 0, pos_to.size - 1)
    dist = np.where(ok, np.abs(sorted_pos[window] - pos_from[:, None]), np.inf)
    pick = np.argsort(dist, axis=1, kind="stable")[:, :k]
    to = order[np.take_along_axis(window, pick, axis=1)]
    return np.repeat(np.arange(pos_from.size), k), to.ravel()


def _number(name: str, value: object, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(name, f"must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < low:
        raise InputError(name, f"must be finite and >= {low}, got {value!r}")
    return float(value)


def _check_costs(shape: tuple[int, ...], data: F64, nb: int, ns: int) -> None:
    if tuple(shape) != (nb, ns):
        raise InputError("pair_cost_per_kwh", f"must be {nb} buyers x {ns} sellers, got "
                         f"shape {tuple(shape)}")
    if not np.isfinite(data).all() or (data < 0).any():
        raise InputError("pair_cost_per_kwh", "must be finite and >= 0 (a premium is a cost "
                         "on the other edges)")


def build_problem(
    orders: OrderBatch,
    *,
    neighbours: int | None = None,
    distance_cost_per_kwh: float = 0.0,
    pair_cost_per_kwh: Any = None,
) -> P2PProblem:
    """The P2P market of ``orders``.

    Parameters
    ----------
    neighbours : int, optional
        Each buyer trades with its ``neighbours`` nearest sellers and each
        seller with its ``neighbours`` nearest buyers (the union); None: every
        buyer with every seller. Where a sparse ``pair_cost_per_kwh`` is
        given, its stored entries are the edges instead.
    distance_cost_per_kwh : float
        Preference cost per kWh per unit of distance between the two
        participants on a line: their bus numbers (``orders.node``), or their
        ranks without nodes.
    pair_cost_per_kwh : array or scipy sparse matrix, optional
        ``[buyer, seller]`` preference costs per kWh (>= 0), added to the
        distance cost.

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
    ...                 side=["buy", "sell", "sell"], price=[0.30, 0.10, 0.20],
    ...                 quantity=[2.0, 1.5, 1.0])
    >>> p = build_problem(ob, distance_cost_per_kwh=0.01)
    >>> p.n_buyers, p.n_sellers, p.edge_seller.tolist(), p.cost_per_kwh.tolist()
    (1, 2, [1, 2], [0.01, 0.02])
    """
    if not isinstance(orders, OrderBatch):
        raise InputError("orders", f"expected an OrderBatch, got {type(orders).__name__}")
    if neighbours is not None and (isinstance(neighbours, bool)
                                   or not isinstance(neighbours, (int, np.integer))
                                   or neighbours < 1):
        raise InputError("neighbours", f"must be a whole number >= 1 or None, got {neighbours!r}")
    distance_cost = _number("distance_cost_per_kwh", distance_cost_per_kwh)
    buy = orders.side == BUY
    participants, agent_of = np.unique(orders.participant, return_inverse=True)
    buyers, b_idx = np.unique(agent_of[buy], return_inverse=True)
    sellers, s_idx = np.unique(agent_of[~buy], return_inverse=True)
    nb, ns = buyers.size, sellers.size
    order_agent = np.empty(len(orders), dtype=np.intp)
    order_agent[buy] = b_idx
    order_agent[~buy] = nb + s_idx
    value = np.where(buy, orders.price, -orders.price)

    pos = _positions(orders, participants)
    sparse_costs = sp.issparse(pair_cost_per_kwh)
    if sparse_costs:  # its stored entries are the edges
        pair = sp.coo_matrix(pair_cost_per_kwh)
        pair.sum_duplicates()
        _check_costs(pair.shape, pair.data, nb, ns)
        eb, es = pair.row.astype(np.intp), pair.col.astype(np.intp)
    elif neighbours is None or nb == 0 or ns == 0:
        eb = np.repeat(np.arange(nb, dtype=np.intp), ns)
        es = np.tile(np.arange(ns, dtype=np.intp), nb)
    else:
        b1, s1 = _nearest(pos[buyers], pos[sellers], int(neighbours))
        s2, b2 = _nearest(pos[sellers], pos[buyers], int(neighbours))
        key = np.unique(np.concatenate([b1, b2]) * ns + np.concatenate([s1, s2]))
        eb, es = (key // ns).astype(np.intp), (key % ns).astype(np.intp)
    cost = distance_cost * np.abs(pos[buyers][eb] - pos[sellers][es])
    if sparse_costs:
        cost += pair.data
    elif pair_cost_per_kwh is not None:
        dense = np.asarray(pair_cost_per_kwh, dtype=np.float64)
        _check_costs(dense.shape, dense, nb, ns)
        cost += dense[eb, es]
    return P2PProblem(nb, ns, participants[buyers], participants[sellers], order_agent, value,
                      orders.quantity, eb, nb + es, cost)


@dataclass(frozen=True)
class CentralSolution:
    """The optimum of the whole problem: order fills, edge trades, net
    welfare and the solver's seconds."""

    accepted: F64
    trade_kwh: F64
    welfare: float
    solve_time_s: float


def solve_central(problem: P2PProblem) -> CentralSolution:
    """Solve the P2P market as one LP with HiGHS: fills ``y`` of the orders
    and trades ``t`` of the edges, ``max value . y - cost . t`` with, for
    every agent, its edges' trades equal to its orders' fills."""
    p = problem
    n_o, n_e = p.value.size, p.n_edges
    c = np.concatenate([-p.value, p.cost_per_kwh])
    lb = np.zeros(n_o + n_e)
    ub = np.concatenate([p.quantity, np.full(n_e, np.inf)])
    rows = np.concatenate([p.order_agent, p.edge_buyer, p.edge_seller])
    cols = np.concatenate([np.arange(n_o), n_o + np.arange(n_e), n_o + np.arange(n_e)])
    vals = np.concatenate([-np.ones(n_o), np.ones(2 * n_e)])
    a = sp.csc_matrix((vals, (rows, cols)), shape=(p.n_agents, n_o + n_e))
    start = time.perf_counter()
    zero = np.zeros(p.n_agents)
    sol = solve_highs(c, lb, ub, a, zero, zero, what="central P2P LP")
    elapsed = time.perf_counter() - start
    accepted, trades = sol.x[:n_o], sol.x[n_o:]
    return CentralSolution(accepted, trades, p.net_welfare(accepted, trades),
                           elapsed)
