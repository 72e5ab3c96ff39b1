"""Vickrey-Clarke-Groves (VCG) double auction for divisible energy.

What it promises
----------------
Every order is one step of its participant's bid (buy) or offer (sell) curve;
a participant may own several steps but only on one side. VCG

- **allocates efficiently**: the welfare-maximising trade, which is the
  uniform auction's volume ``Q*`` (see :mod:`~transactive.markets.truthful`);
- **charges each participant the externality it imposes**: with ``W`` the
  welfare of everyone, ``W_-i`` the best welfare of the others when ``i`` is
  absent and ``v_i`` the value of ``i``'s own allocation (negative cost for a
  seller), participant ``i`` pays ``W_-i - (W - v_i)``. A buyer pays at most its
  value and a seller receives at least its cost (individual rationality), and
  truthful reporting is a dominant strategy;
- **runs a deficit**: buyers pay less than sellers receive. The operator's
  deficit is ``-payment.sum()`` (``info["operator_deficit"]``); no mechanism
  can be efficient, truthful, individually rational and budget-balanced at
  once (Myerson & Satterthwaite 1983).

How the "without ``i``" welfares are computed
---------------------------------------------
Not one re-clear per participant. Removing a buyer ``i`` who bought ``a_i``
leaves the others' allocation a prefix of the sorted curves, and the others
re-optimise only inside a window of length ``a_i`` just below ``Q*``: the
residual (unaccepted) demand of the others against the supply steps between
``Q* - a_i`` and ``Q*``. Its crossing ``t_i`` and values come from prefix sums;
``i``'s own residual steps are subtracted through one grouped prefix-sum table,
and all participants are bisected at once (``O(n log n)`` in total). Then

    ``payment_i = V_rest,-i(t_i) + C_S(Q*) - C_S(Q* - a_i + t_i)``

(the value of the demand ``i`` displaces plus the supply cost it causes).
Sellers use the same routine on the mirrored market (prices negated, sides
swapped), which leaves welfare and payments unchanged.

Network extension point
-----------------------
Pass ``welfare_solver``: any function ``solver(orders) -> (accepted,
welfare)``. Then ``W`` and every ``W_-i`` come from that solver (one re-solve per
trading participant). :func:`~transactive.markets.truthful.welfare_optimum`
(a HiGHS LP) is one; a DC-OPF welfare maximiser from :mod:`transactive.grid`
gives the network VCG, whose payments then include the congestion and loss
externalities each participant causes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import register
from transactive.markets.truthful import (
    Curves,
    allocation,
    prefix_fill,
    require_one_side,
    sorted_curves,
    split_by_participant,
)
from transactive.orders import OrderBatch

__all__ = ["WelfareSolver", "vcg", "vcg_payments"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class WelfareSolver(Protocol):
    """Solves the welfare-maximising allocation of a batch: returns the
    accepted quantity of each order and the welfare at the orders' prices."""

    def __call__(self, orders: OrderBatch, /) -> tuple[FloatArray, float]: ...


def _cum(values: FloatArray) -> FloatArray:
    out = np.zeros(values.shape[0] + 1)
    np.cumsum(values, out=out[1:])
    return out


def _cost(price: FloatArray, cum: FloatArray, costs: FloatArray, x: FloatArray) -> FloatArray:
    """Area under an ascending step curve from 0 to ``x`` (``x`` within it)."""
    idx = np.clip(np.searchsorted(cum, x, side="right") - 1, 0, price.shape[0] - 1)
    return costs[idx] + price[idx] * (x - cum[idx])


def _one_side(
    price: FloatArray, qty: FloatArray, acc: FloatArray, owner: IntArray,
    other_price: FloatArray, other_qty: FloatArray, q_star: float, n_part: int,
) -> FloatArray:
    """VCG payments of the participants owning the descending curve ``price``
    against the ascending curve ``other_price`` (buyers against sellers, or
    sellers against buyers in the mirrored market)."""
    bought = np.bincount(owner, weights=acc, minlength=n_part)
    who = np.flatnonzero(bought > 0)
    pay = np.zeros(n_part)
    if who.size == 0:
        return pay
    a: FloatArray = np.asarray(bought[who], dtype=np.float64)
    base: FloatArray = q_star - a  # the others' accepted quantity on this side

    # The others' residual (unaccepted) steps, and i's own share of them.
    rest = qty - acc
    keep = rest > 0
    rp, rq, rown = price[keep], rest[keep], owner[keep]
    n_r = rp.shape[0]
    e, v = _cum(rq), _cum(rp * rq)
    stride = n_r + 1
    grouped = np.argsort(rown, kind="stable")
    keys = rown[grouped] * stride + grouped
    own_q, own_v = _cum(rq[grouped]), _cum((rp * rq)[grouped])
    first = np.searchsorted(keys, who * stride)

    def others_before(g: IntArray) -> tuple[FloatArray, FloatArray]:
        pos = np.searchsorted(keys, who * stride + g)
        return e[g] - (own_q[pos] - own_q[first]), v[g] - (own_v[pos] - own_v[first])

    # The opposite curve, read inside the window [Q* - a_i, Q*].
    o_cum = _cum(other_qty)
    o_cost = _cum(other_price * other_qty)

    def window_supply(p: FloatArray) -> FloatArray:
        full = o_cum[np.searchsorted(other_price, p, side="right")]
        return np.clip(full - base, 0.0, a)

    def residual_demand(p: FloatArray) -> FloatArray:
        return others_before(np.searchsorted(-rp, -p, side="right"))[0]

    # Crossing t_i = max_p min(D(p), S(p)): bisect all participants at once on
    # the candidate prices, where D - S is non-increasing.
    cand = np.unique(np.concatenate([rp, other_price]))
    lo = np.full(who.shape[0], -1, dtype=np.int64)
    hi = np.full(who.shape[0], cand.shape[0], dtype=np.int64)
    while (hi - lo > 1).any():
        active = hi - lo > 1
        mid = np.clip((lo + hi) // 2, 0, cand.shape[0] - 1)
        p = cand[mid]
        ok = residual_demand(p) >= window_supply(p)
        lo = np.where(active & ok, mid, lo)
        hi = np.where(active & ~ok, mid, hi)
    last = cand.shape[0] - 1
    t = np.maximum(
        np.where(lo >= 0, window_supply(cand[np.clip(lo, 0, last)]), 0.0),
        np.where(hi <= last, residual_demand(cand[np.clip(hi, 0, last)]), 0.0),
    )
    t = np.minimum(t, a)

    # Value of the others' residual demand up to t_i: find the step holding t_i.
    displaced = np.zeros(who.shape[0])
    if n_r:
        g_lo = np.zeros(who.shape[0], dtype=np.int64)
        g_hi = np.full(who.shape[0], n_r + 1, dtype=np.int64)
        while (g_hi - g_lo > 1).any():
            active = g_hi - g_lo > 1
            mid = (g_lo + g_hi) // 2
            ok = others_before(np.minimum(mid, n_r))[0] <= t
            g_lo = np.where(active & ok, mid, g_lo)
            g_hi = np.where(active & ~ok, mid, g_hi)
        q_before, v_before = others_before(g_lo)
        step_price = rp[np.minimum(g_lo, n_r - 1)]
        displaced = v_before + np.where(g_lo < n_r, step_price * (t - q_before), 0.0)

    pay[who] = (displaced + _cost(other_price, o_cum, o_cost, np.full_like(a, q_star))
                - _cost(other_price, o_cum, o_cost, base + t))
    return pay


def vcg_payments(curves: Curves, q_star: float) -> FloatArray:
    """Each participant's VCG payment (positive pays, negative receives) when
    the first ``q_star`` of both sorted curves trade, by the incremental
    method of the module docstring.

    Examples
    --------
    Two buyers (values 3 and 1.5) and two sellers (costs 1 and 2), one unit
    each: one unit trades; the buyer pays the 1.5 it outbids, the seller
    receives the 2 it undercuts.

    >>> ob = OrderBatch(id=[1, 2, 3, 4], participant=["b1", "b2", "s1", "s2"],
    ...                 side=[1, 1, -1, -1], price=[3.0, 1.5, 1.0, 2.0],
    ...                 quantity=[1.0, 1.0, 1.0, 1.0])
    >>> c = sorted_curves(ob)
    >>> vcg_payments(c, c.quantity).tolist()
    [1.5, 0.0, -2.0, 0.0]
    """
    n = curves.participants.shape[0]
    bid_acc = prefix_fill(curves.bid_qty, q_star)
    ask_acc = prefix_fill(curves.ask_qty, q_star)
    buyers = _one_side(curves.bid_price, curves.bid_qty, bid_acc, curves.bid_owner,
                       curves.ask_price, curves.ask_qty, q_star, n)
    sellers = _one_side(-curves.ask_price, curves.ask_qty, ask_acc, curves.ask_owner,
                        -curves.bid_price, curves.bid_qty, q_star, n)
    return buyers + sellers


def _resolved_payments(
    orders: OrderBatch, curves: Curves, accepted: FloatArray, welfare: float,
    solver: WelfareSolver,
) -> FloatArray:
    """VCG payments with every ``W_-i`` re-solved by ``solver`` (the generic
    path, e.g. through a network optimiser). A participant that trades nothing
    pays nothing: removing it leaves the optimum unchanged."""
    n = curves.participants.shape[0]
    own_value = np.bincount(curves.owner, weights=orders.side * orders.price * accepted,
                            minlength=n)
    traded = np.bincount(curves.owner, weights=accepted, minlength=n)
    pay = np.zeros(n)
    for i in np.flatnonzero(traded > 0):
        _, without = solver(orders.take(curves.owner != i))
        pay[i] = without - (welfare - own_value[i])
    return pay


@register("vcg")
def vcg(orders: OrderBatch, /, *, welfare_solver: WelfareSolver | None = None) -> Clearing:
    """Clear a double auction of step curves with VCG payments.

    Parameters
    ----------
    orders : OrderBatch
        Each order is one step; a participant may own several steps, all on
        one side.
    welfare_solver : callable, optional
        ``solver(orders) -> (accepted, welfare)``; when given, the allocation
        and each participant's "without me" welfare come from it (one
        re-solve per trading participant) instead of the incremental method:
        the extension point for network-constrained VCG.

    Returns
    -------
    Clearing
        ``payment`` splits each participant's VCG payment over its orders in
        proportion to the quantity each traded, ``price`` is the per-unit
        price that implies. ``clearing_price`` is the buyers' average price
        per unit; ``info`` holds ``operator_deficit`` (money the operator adds;
        ``-operator_surplus``), ``buyer_price_avg``, ``seller_price_avg``
        (per unit) and ``method`` (``"incremental"`` or ``"resolve"``).

    Examples
    --------
    >>> import transactive as te
    >>> ob = te.OrderBatch(id=[1, 2, 3, 4], participant=["b1", "b2", "s1", "s2"],
    ...                    side=[1, 1, -1, -1], price=[3.0, 1.5, 1.0, 2.0],
    ...                    quantity=[1.0, 1.0, 1.0, 1.0])
    >>> c = te.clear(ob, "vcg")
    >>> c.accepted.tolist(), c.payment.tolist(), c.info["operator_deficit"]
    ([1.0, 0.0, 1.0, 0.0], [1.5, 0.0, -2.0, 0.0], 0.5)
    """
    if welfare_solver is not None and not callable(welfare_solver):
        raise InputError("welfare_solver", "must be a function orders -> (accepted, welfare)")
    curves = sorted_curves(orders)
    require_one_side(orders, curves, "vcg")
    n = curves.participants.shape[0]
    if welfare_solver is None:
        q_star = curves.quantity
        accepted = allocation(orders, curves, q_star, q_star)
        per_participant = vcg_payments(curves, q_star)
        method = "incremental"
    else:
        accepted, welfare = welfare_solver(orders)
        accepted = np.asarray(accepted, dtype=np.float64)
        per_participant = _resolved_payments(orders, curves, accepted, welfare, welfare_solver)
        method = "resolve"
    payment = split_by_participant(per_participant, curves.owner, accepted, n)
    unit = np.divide(np.abs(payment), accepted, out=np.full_like(accepted, np.nan),
                     where=accepted > 0)
    buy = orders.is_buy
    bought, sold = float(accepted[buy].sum()), float(accepted[~buy].sum())
    paid, received = float(payment[buy].sum()), float(-payment[~buy].sum())
    buyer_avg = paid / bought if bought > 0 else float("nan")
    return Clearing.from_allocation(
        "vcg", orders, accepted, unit, buyer_avg, payment=payment,
        info={
            "operator_deficit": received - paid,
            "buyer_price_avg": buyer_avg,
            "seller_price_avg": received / sold if sold > 0 else float("nan"),
            "method": method,
        },
    )
