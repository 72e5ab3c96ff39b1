"""Consensus ADMM for the P2P market: every agent solves only its own problem.

The iteration of Sorin, Bobo & Pinson (2019; see
:mod:`~transactive.decentral.problem`) in the scaled form of Boyd et al.,
"Distributed optimization and statistical learning via the alternating
direction method of multipliers", *Foundations and Trends in Machine
Learning* 3(1) (2011), section 7.1. On edge ``e`` the buyer proposes a trade
``x_be`` and the seller ``x_se``; ``z_e`` is their average and ``u`` the
scaled prices (``rho * u_be`` is what the buyer pays per kWh, and the seller
receives it, as ``u_se = -u_be`` at every step). One iteration:

1. every agent, given ``w = z - u - c / (2 rho)`` on its edges (the
   preference cost shared by the two sides), solves
   ``min g(sum x) + rho/2 |x - w|^2`` over ``x >= 0``, where ``g`` is minus its
   utility (buyer) or its cost (seller). With its marginal value ``pi`` the
   solution is ``x = max(w + pi / rho, 0)``, and ``pi`` is where the energy
   so proposed meets what its orders take at that price: the root of a
   monotone piecewise-linear function, found exactly among the sorted
   breakpoints (its edges' ``-rho w`` and its orders' values) of all agents
   at once (:func:`propose`);
2. ``z = (x_b + x_s) / 2``, ``u += x - z`` (only proposals and prices travel).

Stopping: the primal residual ``|x - z|`` and the dual residual
``rho sqrt(2) |z - z_prev|`` both below ``tol`` times the size of the trades
and of the prices (relative, with a floor of ``tol`` times the mean order's
quantity and price spread). The penalty adapts by residual balancing (He,
Yang & Wang 2000; Boyd et al. section 3.4.1): every 10 iterations ``rho`` is
doubled when the primal residual is ten times the dual one and halved in the
opposite case, ``u`` rescaled with it; after 2,000 iterations it is frozen,
which keeps the convergence of a fixed penalty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transactive.decentral.problem import P2PProblem

__all__ = ["ADMMResult", "AgentOrders", "Proposer", "proposals", "propose", "solve_admm"]

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

_BALANCE_EVERY = 10
_BALANCE_UNTIL = 2000
_MU, _TAU = 10.0, 2.0


@dataclass(frozen=True)
class AgentOrders:
    """What the agents' own problems need of their orders: each order's
    agent, value (a buy's price, minus a sell's) and quantity."""

    order_agent: Ints
    value: F64
    quantity: F64
    n_agents: int

    @classmethod
    def of(cls, problem: P2PProblem) -> AgentOrders:
        return cls(problem.order_agent, problem.value, problem.quantity, problem.n_agents)


@dataclass(frozen=True)
class ADMMResult:
    """Consensus trades per edge, the buyer's price per kWh of each edge, and
    how the iteration went."""

    trade_kwh: F64
    price: F64
    iterations: int
    primal_residual: float
    dual_residual: float
    rho: float
    converged: bool
    solve_time_s: float


def propose(orders: AgentOrders, w: F64, rho: float, copy_agent: Ints) -> F64:
    """Every agent's marginal value ``pi``: the smallest price at which the
    energy its edges propose, ``S(pi) = sum max(w + pi / rho, 0)``, reaches
    what its orders take, ``D(pi) = sum of the quantities of orders valued
    above pi``. ``S - D`` is nondecreasing and right-continuous; the root lies
    at a jump (an order's value: that order is partly filled) or on a linear
    piece between two breakpoints, solved in closed form.

    Examples
    --------
    One buyer (values 0.3 for 1 kWh, 0.1 for 1 kWh) and two edges with
    ``w = 0.5`` kWh each at ``rho = 1``: at ``pi = 0.1`` its edges propose
    ``2 x 0.6 = 1.2`` kWh, more than the 1 kWh valued above 0.1 and less
    than the 2 kWh valued at 0.1 or more, so ``pi = 0.1`` (its second order
    partly filled). Each seller (cost 0.1 for 5 kWh, one edge) proposes 0.4 kWh
    at its cost, ``pi = -0.1``.

    >>> o = AgentOrders(np.array([0, 0, 1, 2]), np.array([0.3, 0.1, -0.1, -0.1]),
    ...                 np.array([1.0, 1.0, 5.0, 5.0]), 3)
    >>> propose(o, np.array([0.5, 0.5, 0.5, 0.5]), 1.0, np.array([0, 0, 1, 2])).round(3).tolist()
    [0.1, -0.1, -0.1]
    """
    n_c = w.size
    key = np.concatenate([-rho * w, orders.value])
    agent = np.concatenate([copy_agent, orders.order_agent])
    # by agent, then by key: a sort of the keys, then a stable (radix) sort of
    # the agents in that order, faster than one lexsort; ties' order is immaterial
    narrow = agent.astype(np.uint16 if orders.n_agents <= 1 << 16 else np.uint32)
    by_key = np.argsort(key)
    order = by_key[np.argsort(narrow[by_key], kind="stable")]
    key, agent = key[order], agent[order]
    is_copy = order < n_c
    a_cum = np.cumsum(np.where(is_copy, w[np.minimum(order, n_c - 1)] if n_c else 0.0, 0.0))
    b_cum = np.cumsum(is_copy, dtype=np.float64)
    q_cum = np.cumsum(np.where(is_copy, 0.0, orders.quantity[np.maximum(order - n_c, 0)]))
    n = agent.size
    starts = np.flatnonzero(np.concatenate(([True], agent[1:] != agent[:-1])))
    ends = np.append(starts[1:], n) - 1
    count = ends - starts + 1

    def within(cum: F64) -> F64:  # cumulative sums restarted at each agent
        return cum - np.repeat(np.concatenate(([0.0], cum[starts[1:] - 1])), count)

    a_at, b_at, q_at = within(a_cum), within(b_cum), within(q_cum)
    d_at = np.repeat(q_at[ends], count) - q_at  # D just above each breakpoint
    g = a_at + b_at * key / rho - d_at
    pos = np.arange(n)
    first = np.minimum.reduceat(np.where(g >= 0, pos, n), starts)
    found = first < n
    k = np.where(found, first, ends)
    prev = np.where(found, np.maximum(k - 1, starts), ends)
    at_start = found & (k == starts)  # left of every breakpoint S = 0 < D: the root is here
    a_p, b_p, d_p = a_at[prev], b_at[prev], d_at[prev]
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = rho * (d_p - a_p) / b_p
    root = np.where(b_p > 0, np.clip(linear, key[prev], key[k]), key[k])
    root = np.where(found, np.where(at_start, key[k], root), linear)
    out = np.empty(orders.n_agents)
    out[agent[starts]] = root
    return out


def proposals(orders: AgentOrders, w: F64, rho: float, copy_agent: Ints) -> F64:
    """The agents' proposals ``x = max(w + pi / rho, 0)`` on their edges."""
    pi = propose(orders, w, rho, copy_agent)
    return np.maximum(w + pi[copy_agent] / rho, 0.0)


Proposer = Callable[[F64, float], F64]
"""Step 1 for all agents: ``(w, rho) -> x``, one entry per edge copy
(buyers' copies, then sellers'); :func:`solve_admm` computes it in this
process, :class:`~transactive.decentral.dask.DaskProposer` over workers."""


def solve_admm(problem: P2PProblem, *, tol: float = 1e-6, max_iter: int = 20000,
               rho: float | None = None, proposer: Proposer | None = None) -> ADMMResult:
    """Run the iteration from no trade and zero prices until both residuals
    are within ``tol`` (relative) or ``max_iter`` iterations have run; step 1
    by ``proposer`` (default: :func:`proposals` in this process).
    ``rho`` (per kWh per kWh) defaults to the spread of the order values
    over the mean order quantity and the square root of the mean number of
    edges per agent (an agent's price moves its proposals on all its edges)."""
    p = problem
    n_e = p.n_edges
    start = time.perf_counter()
    if n_e == 0:
        return ADMMResult(np.zeros(0), np.zeros(0), 0, 0.0, 0.0, rho or 0.0, True, 0.0)
    q_mean = float(p.quantity.mean())
    p_spread = float(np.ptp(p.value)) or max(float(np.abs(p.value).max()), 1e-3)
    if rho is None:
        rho = p_spread / q_mean / np.sqrt(2.0 * n_e / p.n_agents)
    if proposer is None:
        orders, copy_agent = AgentOrders.of(p), np.concatenate([p.edge_buyer, p.edge_seller])

        def proposer(w: F64, rho: float) -> F64:
            return proposals(orders, w, rho, copy_agent)

    half_cost = np.tile(0.5 * p.cost_per_kwh, 2)
    z, u = np.zeros(n_e), np.zeros(2 * n_e)
    floor_x = tol * q_mean * np.sqrt(2 * n_e)
    floor_price = tol * p_spread * np.sqrt(2 * n_e)
    r_norm = s_norm = np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        w = np.tile(z, 2) - u - half_cost / rho
        x = proposer(w, rho)
        z_new = 0.5 * (x[:n_e] + x[n_e:])
        u += x - np.tile(z_new, 2)
        r_norm = float(np.linalg.norm(x[:n_e] - x[n_e:])) / np.sqrt(2.0)
        s_norm = rho * np.sqrt(2.0) * float(np.linalg.norm(z_new - z))
        z = z_new
        eps_primal = tol * max(float(np.linalg.norm(x)), 1e-300) + floor_x
        eps_dual = tol * rho * float(np.linalg.norm(u)) + floor_price
        if r_norm <= eps_primal and s_norm <= eps_dual:
            converged = True
            break
        if it % _BALANCE_EVERY == 0 and it <= _BALANCE_UNTIL:
            if r_norm / eps_primal > _MU * s_norm / eps_dual:
                rho *= _TAU
                u /= _TAU
            elif s_norm / eps_dual > _MU * r_norm / eps_primal:
                rho /= _TAU
                u *= _TAU
    price = 0.5 * rho * (u[:n_e] - u[n_e:])
    return ADMMResult(z, price, it, r_norm, s_norm, rho, converged,
                      time.perf_counter() - start)
