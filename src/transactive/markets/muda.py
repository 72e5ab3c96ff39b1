"""MUDA: the multi-unit double auction of Segal-Halevi, Hassidim & Aumann
(AAAI 2018, arXiv:1712.06848), for divisible step curves.

What it promises
----------------
1. Split the participants at random into two halves, *left* and *right*.
2. In each half compute a competitive (Walrasian) price: the midpoint of the
   interval of prices at which that half's demand and supply balance.
3. Each half trades at the **other** half's price: every buy step priced
   above it and every sell step priced below it wants to trade in full. The
   short side trades everything; the long side is rationed by a lottery over
   participants (each gets all it wants, in the order of a random priority,
   the last one partly; within a participant its best steps go first).

No participant's report moves the price it trades at, and the split and the
priorities are drawn for every participant before the reports are read, so
truthful reporting is a dominant strategy for every realisation of the
randomness (universally truthful), also for participants with several
steps. Every trade in a half is at one price, so the market is strongly
budget-balanced (the operator keeps nothing and adds nothing), and no one
trades at a loss. The price of truthfulness is efficiency: the halves trade
at prices that are not their own, and rationing may hand units to the less
valuable of the long side. The loss shrinks as markets grow.

A half without bids or without asks has no competitive price, and then the
other half does not trade. Each participant must be a buyer or a seller.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets._curves import allocate
from transactive.markets.registry import register
from transactive.markets.truthful import prefix_fill, require_one_side, sorted_curves
from transactive.orders import OrderBatch

__all__ = ["muda", "walrasian_price"]

FloatArray = npt.NDArray[np.float64]


def walrasian_price(orders: OrderBatch) -> float:
    """Midpoint of the interval of prices that clear a batch, or nan when a
    side is empty.

    With trade, the interval is the uniform auction's ``[p_low, p_high]``
    (:mod:`~transactive.markets._curves`), the competitive-equilibrium prices:
    every buy priced above the price and every sell priced below it trades in
    full, and a partly filled level pins the price to its own limit. Without
    trade it is ``[highest bid, lowest ask]``.

    Examples
    --------
    >>> ob = OrderBatch(id=range(4), participant=list("abxy"), side=[1, 1, -1, -1],
    ...                 price=[9.0, 4.0, 2.0, 6.0], quantity=[1.0] * 4)
    >>> walrasian_price(ob)  # one unit trades; [max(2, 4), min(9, 6)]
    5.0
    >>> ob = OrderBatch(id=range(6), participant=list("abcxyz"), side=[1, 1, 1, -1, -1, -1],
    ...                 price=[250.0, 150.0, 350.0, 200.0, 100.0, 300.0],
    ...                 quantity=[5.0, 4.0, 3.0, 5.0, 4.0, 3.0])
    >>> walrasian_price(ob)  # 8 units; the asks at 200 are partly filled: 200 alone
    200.0
    """
    buy = orders.is_buy
    if buy.all() or not buy.any():
        return float("nan")
    crossing = allocate(orders)
    if crossing.volume > 0:
        return 0.5 * (crossing.p_low + crossing.p_high)
    return 0.5 * (float(orders.price[buy].max()) + float(orders.price[~buy].min()))


def _trade_at(orders: OrderBatch, rows: npt.NDArray[np.int64], price: float,
              priority: FloatArray, owner: npt.NDArray[np.int64]) -> FloatArray:
    """Accepted quantity of the orders ``rows`` (one half) trading at ``price``."""
    accepted = np.zeros(rows.shape[0])
    if not np.isfinite(price):
        return accepted
    assert orders.time is not None  # always set by OrderBatch
    side, limit = orders.side[rows], orders.price[rows]
    wants = ((side > 0) & (limit > price)) | ((side < 0) & (limit < price))
    qty = np.where(wants, orders.quantity[rows], 0.0)
    demand, supply = qty[side > 0].sum(), qty[side < 0].sum()
    short = min(demand, supply)
    long_side = 1 if demand > supply else -1
    accepted[:] = qty
    on_long = np.flatnonzero(wants & (side == long_side))
    order = on_long[np.lexsort((
        on_long, orders.time[rows][on_long], -long_side * limit[on_long],
        priority[owner[rows][on_long]],
    ))]
    accepted[order] = prefix_fill(qty[order], short)
    return accepted


@register("muda")
def muda(orders: OrderBatch, /, *, rng: np.random.Generator | None = None) -> Clearing:
    """Clear a double auction of step curves with MUDA.

    Parameters
    ----------
    orders : OrderBatch
        Each order is one step; a participant may own several, on one side.
    rng : numpy.random.Generator
        Draws the split and the lottery priorities (required: the mechanism
        is randomised, and the caller owns the seed).

    Returns
    -------
    Clearing
        ``price`` is the price of each order's half; ``clearing_price`` is the
        volume-weighted mean trade price. ``info`` holds ``left`` (bool per
        order), ``left_trade_price`` and ``right_trade_price`` (nan when that
        half cannot trade).

    Examples
    --------
    >>> import numpy as np
    >>> import transactive as te
    >>> ob = te.OrderBatch(id=range(8), participant=list("abcdwxyz"),
    ...                    side=[1, 1, 1, 1, -1, -1, -1, -1],
    ...                    price=[9.0, 8.0, 7.0, 6.0, 1.0, 2.0, 3.0, 4.0],
    ...                    quantity=[1.0] * 8)
    >>> c = te.clear(ob, "muda", rng=np.random.default_rng(3))
    >>> bool(abs(c.operator_surplus) < 1e-12), bool((c.surplus >= 0).all())
    (True, True)
    """
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", "MUDA draws a random split: pass "
                         "rng=numpy.random.default_rng(seed)")
    curves = sorted_curves(orders)
    require_one_side(orders, curves, "muda")
    n_part = curves.participants.shape[0]
    left_part: npt.NDArray[np.bool_] = np.asarray(rng.random(n_part) < 0.5)
    priority: FloatArray = np.asarray(rng.random(n_part), dtype=np.float64)
    left = left_part[curves.owner]
    halves = (np.flatnonzero(left), np.flatnonzero(~left))
    own_price = [walrasian_price(orders.take(rows)) for rows in halves]
    trade_price = (own_price[1], own_price[0])  # each half trades at the other's price
    accepted = np.zeros(len(orders))
    unit = np.full(len(orders), np.nan)
    for rows, price in zip(halves, trade_price, strict=True):
        accepted[rows] = _trade_at(orders, rows, price, priority, curves.owner)
        unit[rows] = price
    volume = accepted[orders.is_buy].sum()
    mean_price = float(np.dot(accepted, np.nan_to_num(unit)) / (2 * volume)) if volume > 0 \
        else float("nan")
    left_ro = left.copy()
    left_ro.flags.writeable = False
    return Clearing.from_allocation(
        "muda", orders, accepted, unit, mean_price,
        info={"left": left_ro, "left_trade_price": trade_price[0],
              "right_trade_price": trade_price[1]},
    )
