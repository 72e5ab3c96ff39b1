"""Pay-as-bid (discriminatory) double auction over divisible orders.

The accepted quantities are those of the uniform-price auction
(:mod:`transactive.markets.uniform`): every unit whose bid is at least its ask
trades, with the same tie rules at the marginal level. What differs is the
price: each accepted order pays (buy) or receives (sell) its *own* limit
price, clipped to ``[price_floor, price_cap]`` when those are given. So no
order ever trades at a price worse than its limit, and the whole gain from
trade, ``sum(bid * bought) - sum(ask * sold)``, stays with the market
operator as :attr:`~transactive.clearing.Clearing.operator_surplus` (without
clipping it equals :attr:`~transactive.clearing.Clearing.welfare`), while
every participant's surplus at its reported price is zero.
"""

from __future__ import annotations

import math

import numpy as np

from transactive.clearing import Clearing
from transactive.markets._curves import TieBreak, allocate, limit_prices
from transactive.markets.registry import register
from transactive.orders import BUY, OrderBatch

__all__ = ["clear_pay_as_bid"]


@register("pay_as_bid")
def clear_pay_as_bid(
    orders: OrderBatch,
    /,
    *,
    tie_break: TieBreak = "pro_rata",
    price_floor: float | None = None,
    price_cap: float | None = None,
) -> Clearing:
    """Clear ``orders`` in one pay-as-bid double auction.

    Parameters
    ----------
    orders : OrderBatch
        Divisible buy and sell orders; never changed.
    tie_break : {"pro_rata", "time"}
        How the orders at the rationed marginal level share what is left (as
        in :func:`~transactive.markets.uniform.clear_uniform`).
    price_floor, price_cap : float, optional
        Buys priced below the floor and sells priced above the cap take no
        part; the prices paid are clipped to ``[price_floor, price_cap]``.

    Returns
    -------
    Clearing
        Mechanism ``"pay_as_bid"``: ``price[i]`` is order ``i``'s own limit
        price where it trades. ``clearing_price`` is the volume-weighted
        average price the buyers pay (``nan`` when nothing trades);
        ``info["sell_price"]`` is the volume-weighted average price the sellers
        receive. ``operator_surplus`` (buyers' payments minus sellers'
        receipts) is the gain from trade the operator keeps.

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                 price=[0.30, 0.10], quantity=[2.0, 1.5])
    >>> c = clear_pay_as_bid(ob)
    >>> c.accepted.tolist(), c.payment.round(3).tolist(), round(c.operator_surplus, 3)
    ([1.5, 1.5], [0.45, -0.15], 0.3)
    >>> round(c.clearing_price, 3), round(c.info["sell_price"], 3)
    (0.3, 0.1)
    """
    alloc = allocate(orders, tie_break=tie_break, price_floor=price_floor, price_cap=price_cap)
    own = limit_prices(orders.price, price_floor, price_cap)
    if alloc.volume <= 0:
        return Clearing.from_allocation(
            "pay_as_bid", orders, alloc.accepted, own, math.nan,
            info={"sell_price": math.nan, "tie_break": tie_break},
        )
    payment = orders.side.astype(np.float64)  # the default side * accepted * price
    payment *= alloc.accepted
    payment *= own
    buy_value = float(np.multiply(payment, (orders.side == BUY).view(np.uint8)).sum())
    sell_value = buy_value - float(payment.sum())
    return Clearing.from_allocation(
        "pay_as_bid", orders, alloc.accepted, own, buy_value / alloc.volume, payment=payment,
        copy=False,
        info={"sell_price": sell_value / alloc.volume, "tie_break": tie_break},
    )
