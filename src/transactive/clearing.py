"""The result of clearing a market: immutable, one row per order.

Conventions:

- ``accepted[i]`` is the quantity order ``i`` trades, ``0 <= accepted <= quantity``.
- ``price[i]`` is the average price per unit order ``i`` pays (buy) or
  receives (sell) on its accepted quantity; ``nan`` where nothing was accepted.
- ``payment[i]`` is the money order ``i``'s participant pays to the market:
  positive for a buyer, negative for a seller (a seller *receives*
  ``-payment``). The operator's surplus is ``payment.sum()``: zero when the
  market is budget-balanced, negative when it runs a deficit (as VCG does).
- ``welfare`` is the gains from trade at the reported limit prices:
  ``sum(accepted * price_limit * side)`` (buyers' value minus sellers' cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.orders import BUY, OrderBatch

__all__ = ["Clearing", "json_value"]


def _adopt(values: npt.ArrayLike, copy: bool = True) -> npt.NDArray[np.float64]:
    """A float64 array we own: a copy, or (``copy=False``) the array itself
    when it is already a writeable float64 array."""
    arr = np.array(values, dtype=np.float64, copy=True if copy else None)
    return arr if arr.flags.writeable else arr.copy()


def _readonly(values: npt.ArrayLike, copy: bool = True) -> npt.NDArray[np.float64]:
    arr = _adopt(values, copy)
    arr.flags.writeable = False
    return arr


def json_value(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, nan and infinities as None.

    Examples
    --------
    >>> json_value(np.float64(0.5)), json_value(float("nan")), json_value(np.int64(3))
    (0.5, None, 3)
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass(frozen=True, eq=False)
class Clearing:
    """Allocations, prices and payments of one cleared market.

    Build it with :meth:`from_allocation`; the arrays are read-only.
    """

    mechanism: str
    orders: OrderBatch
    accepted: npt.NDArray[np.float64]
    price: npt.NDArray[np.float64]
    payment: npt.NDArray[np.float64]
    clearing_price: float
    node_price: npt.NDArray[np.float64] | None = None
    info: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_allocation(
        cls,
        mechanism: str,
        orders: OrderBatch,
        accepted: npt.ArrayLike,
        price: npt.ArrayLike,
        clearing_price: float,
        *,
        payment: npt.ArrayLike | None = None,
        node_price: npt.ArrayLike | None = None,
        info: dict[str, Any] | None = None,
        copy: bool = True,
    ) -> Clearing:
        """Assemble a clearing; ``payment`` defaults to ``side * accepted * price``.

        ``price`` is the per-unit price of each order; it is set to ``nan``
        where nothing is accepted. With ``copy=False`` the float64 arrays
        passed in are adopted (made read-only) instead of copied: for
        mechanisms handing over arrays they built and will not touch again.
        """
        acc = _readonly(accepted, copy)
        unit = _adopt(price, copy)
        if unit.shape != acc.shape:
            unit = np.broadcast_to(unit, acc.shape).copy()
        np.copyto(unit, np.nan, where=acc <= 0)
        unit.flags.writeable = False
        if payment is None:
            pay = orders.side * acc * unit
            np.copyto(pay, 0.0, where=acc <= 0)
        else:
            pay = _adopt(payment, copy)
        pay.flags.writeable = False
        return cls(
            mechanism=mechanism,
            orders=orders,
            accepted=acc,
            price=unit,
            payment=pay,
            clearing_price=float(clearing_price),
            node_price=None if node_price is None else _readonly(node_price),
            info=MappingProxyType(dict(info or {})),
        )

    # ----------------------------------------------------------------- figures
    @property
    def volume(self) -> float:
        """Quantity bought (equal to quantity sold)."""
        return float(self.accepted[self.orders.side == BUY].sum())

    @property
    def welfare(self) -> float:
        """Gains from trade at the reported limit prices (``inf`` if the sum
        overflows, as it can with limits near the float range)."""
        with np.errstate(over="ignore"):
            return float(np.dot(self.accepted * self.orders.side, self.orders.price))

    @property
    def operator_surplus(self) -> float:
        """Money the market keeps: ``payment.sum()`` (negative is a deficit)."""
        return float(self.payment.sum())

    @property
    def surplus(self) -> npt.NDArray[np.float64]:
        """Each order's surplus at its reported value: value of what it traded
        minus what it paid (buyers), or money received minus cost (sellers)."""
        return self.accepted * self.orders.side * self.orders.price - self.payment

    # ----------------------------------------------------------------- export
    def to_frame(self) -> pd.DataFrame:
        """One row per order: the order's columns plus ``accepted``,
        ``clearing_price`` (per-unit price) and ``payment``."""
        frame = self.orders.to_frame().rename(columns={"price": "limit_price"})
        frame["accepted"] = self.accepted
        frame["price"] = self.price
        frame["payment"] = self.payment
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: mechanism, price, volume, welfare and the
        allocation of every order that traded."""
        traded = np.flatnonzero(self.accepted > 0)
        o = self.orders
        allocations = [
            {
                "id": json_value(o.id[i]),
                "participant": json_value(o.participant[i]),
                "side": "buy" if o.side[i] == BUY else "sell",
                "quantity": json_value(self.accepted[i]),
                "price": json_value(self.price[i]),
                "payment": json_value(self.payment[i]),
            }
            for i in traded
        ]
        return {
            "mechanism": self.mechanism,
            "price": json_value(self.clearing_price),
            "volume": json_value(self.volume),
            "welfare": json_value(self.welfare),
            "operator_surplus": json_value(self.operator_surplus),
            "allocations": allocations,
        }
