"""Sealed-bid second-price (Vickrey) auction of one lot of identical units.

What it promises
----------------
One seller offers a lot of ``k`` whole units; buyers bid a price per unit.

- **Single lot** (``k = 1``): the highest bid wins and pays the larger of the
  second-highest bid and the reserve price (Vickrey 1961).
- **Multi-unit uniform form** (``k > 1``): the ``k`` highest unit bids win and
  every winning unit pays the ``(k+1)``-th highest unit bid, or the reserve
  if that is higher. A buy order of quantity ``q`` at price ``b`` is ``q`` unit
  bids of ``b``; fewer than ``k`` units sell when fewer unit bids reach the
  reserve.
- Bidding one's true value is a dominant strategy for every bidder who wants
  **one unit**. A bidder wanting several units can gain by bidding less for
  its later units (demand reduction, Ausubel & Cramton 2014); for truthful
  multi-unit demand use :mod:`~transactive.markets.vcg`.
- Winners never pay more than their bid (individual rationality), and the
  market is budget-balanced: the seller receives what the winners pay.

The lot is either the batch's single sell order (its quantity is ``k`` and
its price is the seller's reserve) or, without a sell order, ``units`` units
sold by the operator at ``reserve_price``. When both a sell order and
``reserve_price`` are given the higher of the two reserves applies. Ties
between equal bids go to the earlier order (time, then row).
"""

from __future__ import annotations

import math

import numpy as np

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import register
from transactive.markets.truthful import allocation, require_integer_quantity, sorted_curves
from transactive.orders import OrderBatch

__all__ = ["vickrey"]


def _lot(orders: OrderBatch, reserve_price: float | None, units: int | None
         ) -> tuple[int, float, bool]:
    """The lot size, the reserve, and whether a sell order is the seller."""
    if reserve_price is not None and not (
        isinstance(reserve_price, int | float) and math.isfinite(reserve_price)
    ):
        raise InputError("reserve_price", f"must be a finite number, got {reserve_price!r}")
    sells = np.flatnonzero(~orders.is_buy)
    if sells.size > 1:
        raise InputError("side", "vickrey sells one lot: at most one sell order is allowed",
                         row=int(sells[1]))
    if sells.size == 1:
        if units is not None:
            raise InputError("units", "the lot is the sell order's quantity; do not pass units")
        row = int(sells[0])
        reserve = float(orders.price[row])
        if reserve_price is not None:
            reserve = max(reserve, float(reserve_price))
        return int(orders.quantity[row]), reserve, True
    if reserve_price is None:
        raise InputError("reserve_price", "needed when the batch has no sell order "
                         "(the operator sells the lot at this reserve)")
    if units is None:
        units = 1
    if isinstance(units, bool) or not isinstance(units, int | np.integer) or units < 1:
        raise InputError("units", f"must be a whole number >= 1, got {units!r}")
    return int(units), float(reserve_price), False


@register("vickrey")
def vickrey(
    orders: OrderBatch, /, *, reserve_price: float | None = None, units: int | None = None
) -> Clearing:
    """Clear a second-price auction of ``k`` identical units.

    Parameters
    ----------
    orders : OrderBatch
        Buy orders (quantity = units wanted, whole numbers; price = per unit)
        and at most one sell order, the lot.
    reserve_price : float, optional
        The least price per unit; required when there is no sell order.
    units : int, optional
        Lot size when the operator sells (no sell order); default 1.

    Returns
    -------
    Clearing
        Every winning unit at the one price ``clearing_price``; ``info`` holds
        ``units`` (the lot), ``units_sold``, ``reserve_price`` and ``seller``
        (``"order"`` or ``"operator"``; when the operator sells, the energy
        bought has no sell order beside it and ``operator_surplus`` is the
        operator's revenue).

    Examples
    --------
    >>> import transactive as te
    >>> ob = te.OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "c", "s"],
    ...                    side=["buy", "buy", "buy", "sell"],
    ...                    price=[10.0, 7.0, 8.0, 5.0], quantity=[1, 1, 1, 1])
    >>> c = te.clear(ob, "vickrey")
    >>> c.accepted.tolist(), c.clearing_price
    ([1.0, 0.0, 0.0, 1.0], 8.0)
    >>> c2 = te.clear(ob.take([0, 1, 2]), "vickrey", reserve_price=6.0, units=2)
    >>> c2.accepted.tolist(), c2.clearing_price
    ([1.0, 0.0, 1.0], 7.0)
    """
    require_integer_quantity(orders, "vickrey")
    k, reserve, has_seller = _lot(orders, reserve_price, units)
    curves = sorted_curves(orders)
    bid_price, cum = curves.bid_price, curves.bid_cum
    eligible = float(cum[np.searchsorted(-bid_price, -reserve, side="right")])
    sold = min(float(k), eligible)
    # The (k+1)-th unit bid: the bid step holding unit k+1, if there is one.
    nxt = int(np.searchsorted(cum[1:], k + 1, side="left"))
    price = max(reserve, float(bid_price[nxt])) if nxt < bid_price.shape[0] else reserve
    accepted = allocation(orders, curves, sold, sold if has_seller else 0.0)
    return Clearing.from_allocation(
        "vickrey", orders, accepted, np.full(len(orders), price), price,
        info={
            "units": k,
            "units_sold": int(sold),
            "reserve_price": reserve,
            "seller": "order" if has_seller else "operator",
        },
    )
