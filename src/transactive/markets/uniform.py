"""Uniform-price (pay-as-clear) double auction: the k-double auction over divisible orders.

Allocation: every unit whose bid is at least its ask trades (zero-surplus
units too), so the volume is the welfare-maximal one, where aggregate demand
``D(p)`` (buys priced at or above ``p``) meets aggregate supply ``S(p)``
(sells priced at or below ``p``). Orders strictly inside the crossing trade in
full; the orders at the one marginal price level of the long side share what
is left (see :mod:`transactive.markets._curves` for the algorithm, which finds
the crossing in a few linear passes, without sorting the orders).

Price: every accepted order trades at one price chosen in the interval
``[p_low, p_high]`` with

- ``p_low = max(last accepted ask, first rejected bid)``,
- ``p_high = min(last accepted bid, first rejected ask)``,

missing terms ignored. A price level counts as accepted when any quantity at
it trades, and as rejected when any quantity at it does not: a partly filled
level is both, so the interval is then that level's price alone (a rationed
order priced anywhere else would want more, or nothing). The tie rule never
moves the interval. It is the set of competitive-equilibrium prices: the
prices ``p`` at which every buy priced above ``p`` and every sell priced below
``p`` trades in full, the orders priced at ``p`` trade any part, and demand
meets supply at the traded volume.
It is also the interval ``[max(s_k, b_(k+1)), min(b_k, s_(k+1))]`` of the unit
double auction, reading a quantity ``q`` as ``q`` units at one price (at a
partly filled level ``b_k = b_(k+1)`` or ``s_k = s_(k+1)``), from which the
k-double auction picks
``p = p_low + k (p_high - p_low)``; Satterthwaite & Williams (1989), "The
rate of convergence to efficiency in the buyer's bid double auction as the
market becomes large", *Review of Economic Studies* 56(4), 477-498, and
Rustichini, Satterthwaite & Williams (1994), *Econometrica* 62(5),
1041-1063. ``k = 0`` is the bottom of the interval and favours buyers,
``k = 1`` the top and favours sellers (the buyer's bid double auction of
Satterthwaite & Williams, whose price buyers' bids set).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets._curves import TieBreak, allocate
from transactive.markets.registry import register
from transactive.orders import OrderBatch

__all__ = ["PRICE_RULES", "PriceRule", "clear_uniform"]

PriceRule = Literal["midpoint", "k", "marginal_bid", "marginal_ask"]
PRICE_RULES: tuple[PriceRule, ...] = ("midpoint", "k", "marginal_bid", "marginal_ask")


def _check_k(k: object) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise InputError("k", f"must be a number in [0, 1], got {k!r}")
    if not 0.0 <= float(k) <= 1.0:  # also refuses nan
        raise InputError("k", f"must be in [0, 1], got {k!r}")
    return float(k)


def _between(p_low: float, p_high: float, k: float) -> float:
    """``p_low + k (p_high - p_low)``, kept inside ``[p_low, p_high]`` despite
    rounding (and without overflow when the interval is wider than a float)."""
    width = p_high - p_low
    price = p_low + k * width if math.isfinite(width) else (1 - k) * p_low + k * p_high
    return min(max(price, p_low), p_high)


@register("uniform")
def clear_uniform(
    orders: OrderBatch,
    /,
    *,
    price_rule: PriceRule = "midpoint",
    k: float = 0.5,
    tie_break: TieBreak = "pro_rata",
    price_floor: float | None = None,
    price_cap: float | None = None,
) -> Clearing:
    """Clear ``orders`` in one uniform-price double auction.

    Parameters
    ----------
    orders : OrderBatch
        Divisible buy and sell orders; never changed.
    price_rule : {"midpoint", "k", "marginal_bid", "marginal_ask"}
        Where in ``[p_low, p_high]`` the price lies: ``"midpoint"`` is
        ``(p_low + p_high) / 2``; ``"k"`` is ``p_low + k (p_high - p_low)``
        (computed as such for the midpoint too, with ``k = 1/2``);
        ``"marginal_bid"`` is ``p_high`` (set by the bids, as with ``k = 1``;
        favours sellers); ``"marginal_ask"`` is ``p_low`` (``k = 0``; favours
        buyers).
    k : float
        In ``[0, 1]``; used by ``price_rule="k"``.
    tie_break : {"pro_rata", "time"}
        How the orders at the rationed marginal level share what is left: in
        proportion to their quantities, or first come first served by
        ``orders.time`` then row.
    price_floor, price_cap : float, optional
        Buys priced below the floor and sells priced above the cap take no
        part, and the price is clipped to ``[price_floor, price_cap]``.

    Returns
    -------
    Clearing
        Mechanism ``"uniform"``: every accepted order pays (buy) or receives
        (sell) ``clearing_price`` per unit. ``clearing_price`` is ``nan`` when
        nothing trades (no orders, one side only, or the best bid below the
        best ask). ``info`` holds ``p_low``, ``p_high``, ``price_rule``, ``k``
        and ``tie_break``.

    Raises
    ------
    InputError
        For a bad option, naming it.

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "c", "d"],
    ...                 side=["buy", "buy", "sell", "sell"],
    ...                 price=[0.30, 0.22, 0.10, 0.20], quantity=[2.0, 1.0, 1.5, 1.0])
    >>> c = clear_uniform(ob)
    >>> c.accepted.tolist(), c.info["p_low"], c.info["p_high"], round(c.clearing_price, 3)
    ([2.0, 0.5, 1.5, 1.0], 0.22, 0.22, 0.22)

    The bid at 0.22 is partly filled, so 0.22 is the only clearing price: below
    it that buyer would want its whole unit. With half a unit less on offer at
    0.20, the bid at 0.22 gets nothing, no level is partly filled, and the price
    lies between that rejected bid and the last accepted one:

    >>> ob2 = OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "c", "d"],
    ...                  side=["buy", "buy", "sell", "sell"],
    ...                  price=[0.30, 0.22, 0.10, 0.20], quantity=[2.0, 1.0, 1.5, 0.5])
    >>> c = clear_uniform(ob2)
    >>> c.accepted.tolist(), c.info["p_low"], c.info["p_high"], round(c.clearing_price, 3)
    ([2.0, 0.0, 1.5, 0.5], 0.22, 0.3, 0.26)
    >>> round(clear_uniform(ob, price_cap=0.15).clearing_price, 3)  # the 0.20 ask is out
    0.15
    """
    if price_rule not in PRICE_RULES:
        raise InputError("price_rule", f"must be one of {', '.join(PRICE_RULES)}; "
                         f"got {price_rule!r}")
    k = _check_k(k)
    alloc = allocate(orders, tie_break=tie_break, price_floor=price_floor, price_cap=price_cap)
    p_low, p_high = alloc.p_low, alloc.p_high
    if alloc.volume <= 0:
        price = math.nan
    else:
        weight = {"midpoint": 0.5, "k": k, "marginal_bid": 1.0, "marginal_ask": 0.0}[price_rule]
        price = _between(p_low, p_high, weight)
        if price_floor is not None:
            price = max(price, float(price_floor))
        if price_cap is not None:
            price = min(price, float(price_cap))
    payment = None
    if alloc.volume > 0:  # the default side * accepted * price, without its per-order branch
        payment = orders.side.astype(np.float64)
        payment *= alloc.accepted
        payment *= price
    return Clearing.from_allocation(
        "uniform", orders, alloc.accepted, price, price, payment=payment, copy=False,
        info={"p_low": p_low, "p_high": p_high, "price_rule": price_rule, "k": k,
              "tie_break": tie_break},
    )
