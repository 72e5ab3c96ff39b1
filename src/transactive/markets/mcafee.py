"""McAfee's trade-reduction double auction (McAfee 1992).

What it promises
----------------
Buyers and sellers trade whole units. Sort the unit bids descending
``b1 >= b2 >= ...`` and the unit asks ascending ``s1 <= s2 <= ...``, and let
``k`` be the efficient number of trades (the largest ``k`` with ``b_k >= s_k``).
With the candidate price ``p0 = (b_{k+1} + s_{k+1}) / 2``:

- if ``s_k <= p0 <= b_k``, all ``k`` units trade at ``p0`` (budget-balanced);
- otherwise (or when there is no ``(k+1)``-th bid or ask) only ``k - 1`` units
  trade: buyers pay ``b_k``, sellers receive ``s_k``, and the operator keeps
  ``(k - 1) * (b_k - s_k) >= 0``.

For traders who each want **one unit**, truthful reporting is a dominant
strategy, no trader loses (individual rationality), the operator never runs
a deficit, and at most the least valuable of the ``k`` efficient trades is
lost. An order of quantity ``q`` is ``q`` unit orders at one price; with such
multi-unit orders the rule applies unit by unit, but a trader wanting several
units may then gain from misreporting, as in every uniform-price auction.
Ties between equal prices go to the earlier order (time, then row).
"""

from __future__ import annotations

import numpy as np

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import register
from transactive.markets.truthful import (
    allocation,
    require_integer_quantity,
    require_one_side,
    sorted_curves,
)
from transactive.orders import OrderBatch

__all__ = ["mcafee"]


def _unit_price(price: np.ndarray, cum: np.ndarray, unit: int) -> float:
    """Price of the ``unit``-th unit (1-based) of a sorted step curve, or nan."""
    if unit < 1 or cum[-1] < unit:
        return float("nan")
    return float(price[np.searchsorted(cum[1:], unit, side="left")])


@register("mcafee")
def mcafee(orders: OrderBatch, /, *, unit_kwh: float | None = None) -> Clearing:
    """Clear a double auction of whole units by McAfee's trade-reduction rule.

    Without ``unit_kwh`` every quantity must be a whole number of units. With
    it, divisible energy is traded in lots of ``unit_kwh``: each order offers
    ``floor(quantity / unit_kwh)`` lots (a remainder under one lot does not
    trade) and the rule runs lot by lot; prices stay per kWh.

    Returns
    -------
    Clearing
        ``price`` is ``p0`` for everyone, or ``b_k`` for buyers and ``s_k`` for
        sellers after a reduction; ``clearing_price`` is ``p0`` or ``b_k``.
        ``info`` holds ``efficient_units`` (``k``), ``branch``
        (``"single_price"``, ``"trade_reduction"`` or ``"no_trade"``), ``p0`` (nan when
        undefined), ``buyer_price`` and ``seller_price``.

    Examples
    --------
    Bids 9, 8, 4 and asks 2, 3, 6: ``k = 2``, ``p0 = (4 + 6) / 2 = 5`` lies in
    ``[s_2, b_2] = [3, 8]``, so two units trade at 5.

    >>> import transactive as te
    >>> ob = te.OrderBatch(id=range(6), participant=list("abcxyz"),
    ...                    side=[1, 1, 1, -1, -1, -1],
    ...                    price=[9.0, 8.0, 4.0, 2.0, 3.0, 6.0], quantity=[1] * 6)
    >>> c = te.clear(ob, "mcafee")
    >>> c.accepted.tolist(), c.clearing_price, c.info["branch"]
    ([1.0, 1.0, 0.0, 1.0, 1.0, 0.0], 5.0, 'single_price')
    """
    if unit_kwh is not None:
        return _in_lots(orders, unit_kwh)
    require_integer_quantity(orders, "mcafee")
    curves = sorted_curves(orders)
    require_one_side(orders, curves, "mcafee")
    k = round(curves.quantity)
    b_k = _unit_price(curves.bid_price, curves.bid_cum, k)
    s_k = _unit_price(curves.ask_price, curves.ask_cum, k)
    p0 = 0.5 * (_unit_price(curves.bid_price, curves.bid_cum, k + 1)
                + _unit_price(curves.ask_price, curves.ask_cum, k + 1))
    if k == 0:
        branch, trades, buyer_price, seller_price = "no_trade", 0, b_k, s_k
    elif s_k <= p0 <= b_k:  # nan (no (k+1)-th bid or ask) compares False
        branch, trades, buyer_price, seller_price = "single_price", k, p0, p0
    else:
        branch, trades, buyer_price, seller_price = "trade_reduction", k - 1, b_k, s_k
    accepted = allocation(orders, curves, float(trades), float(trades))
    unit = np.where(orders.is_buy, buyer_price, seller_price)
    return Clearing.from_allocation(
        "mcafee", orders, accepted, unit, buyer_price,
        info={
            "efficient_units": k,
            "branch": branch,
            "p0": p0,
            "buyer_price": buyer_price,
            "seller_price": seller_price,
        },
    )


def _in_lots(orders: OrderBatch, unit_kwh: float) -> Clearing:
    """McAfee over lots of ``unit_kwh``, mapped back to the orders in kWh."""
    if not (isinstance(unit_kwh, int | float) and np.isfinite(unit_kwh) and unit_kwh > 0):
        raise InputError("unit_kwh", f"must be a finite number > 0, got {unit_kwh!r}")
    lots = np.floor(orders.quantity / unit_kwh + 1e-9)
    keep = np.flatnonzero(lots >= 1)
    n = len(orders)
    accepted, price, payment = np.zeros(n), np.full(n, np.nan), np.zeros(n)
    info: dict[str, object] = {"branch": "no_trade", "unit_kwh": unit_kwh}
    clearing_price = float("nan")
    if keep.size:
        sub = orders.take(keep)
        in_lots = OrderBatch._trusted(id=sub.id, participant=sub.participant, side=sub.side,
                                      price=sub.price, quantity=lots[keep], time=sub.time)
        c = mcafee(in_lots)
        accepted[keep] = c.accepted * unit_kwh
        price[keep] = c.price
        payment[keep] = c.payment * unit_kwh
        clearing_price = c.clearing_price
        info = {**c.info, "unit_kwh": unit_kwh}
    return Clearing.from_allocation("mcafee", orders, accepted, price, clearing_price,
                                    payment=payment, info=info)
