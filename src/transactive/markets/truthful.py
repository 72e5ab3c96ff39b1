"""Common ground of the truthful mechanisms: sorted step curves, the efficient
trade, participants, and the welfare optimum as a linear programme.

The mechanisms themselves live in :mod:`~transactive.markets.vickrey`,
:mod:`~transactive.markets.vcg`, :mod:`~transactive.markets.mcafee` and
:mod:`~transactive.markets.muda`; this module holds what they share.

Conventions used by all of them:

- **Step curves.** Every order is one step: a buy order of quantity ``q`` at
  limit ``b`` is ``q`` units each worth ``b``; a sell order is ``q`` units each
  costing its limit. A participant may own several steps.
- **Total order.** Bids are sorted by price descending, asks by price
  ascending; ties are broken by submission ``time``, then by row. Every
  allocation is a prefix of these sorted curves.
- **Efficient quantity.** ``Q* = max_p min(D(p), S(p))`` with ``D(p)`` the
  quantity bid at ``p`` or more and ``S(p)`` the quantity offered at ``p`` or
  less: the most energy that can trade with every traded bid at least every
  traded ask. Zero-gain trades (bid equal to ask) are included, as the
  uniform auction includes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, SolverError
from transactive.orders import OrderBatch

__all__ = [
    "Curves",
    "efficient_quantity",
    "prefix_fill",
    "sorted_curves",
    "welfare_optimum",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Curves:
    """The bid and ask step curves of a batch, in the total order.

    ``bid_rows``/``ask_rows`` are row positions in the batch; ``*_price`` and
    ``*_qty`` are the steps in curve order; ``*_cum`` are the cumulative
    quantities with a leading zero (length ``steps + 1``); ``*_owner`` is the
    participant code (an index into ``participants``) of each step.
    """

    bid_rows: IntArray
    bid_price: FloatArray
    bid_qty: FloatArray
    bid_cum: FloatArray
    bid_owner: IntArray
    ask_rows: IntArray
    ask_price: FloatArray
    ask_qty: FloatArray
    ask_cum: FloatArray
    ask_owner: IntArray
    participants: npt.NDArray[np.generic]
    owner: IntArray

    @property
    def quantity(self) -> float:
        """The efficient quantity ``Q*`` of these curves."""
        return efficient_quantity(self.bid_price, self.bid_cum, self.ask_price, self.ask_cum)


def _cum(qty: FloatArray) -> FloatArray:
    out = np.zeros(qty.shape[0] + 1)
    np.cumsum(qty, out=out[1:])
    return out


def sorted_curves(orders: OrderBatch) -> Curves:
    """Sort a batch into bid and ask step curves (see the module conventions).

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
    ...                 side=["buy", "buy", "sell"], price=[0.2, 0.3, 0.1],
    ...                 quantity=[1.0, 2.0, 2.5])
    >>> c = sorted_curves(ob)
    >>> c.bid_rows.tolist(), c.bid_cum.tolist(), c.quantity
    ([1, 0], [0.0, 2.0, 3.0], 2.5)
    """
    assert orders.time is not None  # always set by OrderBatch
    rows = np.arange(len(orders))
    participants, owner = np.unique(orders.participant, return_inverse=True)
    owner = owner.astype(np.int64)
    buy = orders.is_buy
    order = np.lexsort((rows, orders.time, np.where(buy, -orders.price, orders.price), ~buy))
    n_bid = int(buy.sum())
    bid_rows, ask_rows = order[:n_bid], order[n_bid:]
    return Curves(
        bid_rows=bid_rows,
        bid_price=orders.price[bid_rows],
        bid_qty=orders.quantity[bid_rows],
        bid_cum=_cum(orders.quantity[bid_rows]),
        bid_owner=owner[bid_rows],
        ask_rows=ask_rows,
        ask_price=orders.price[ask_rows],
        ask_qty=orders.quantity[ask_rows],
        ask_cum=_cum(orders.quantity[ask_rows]),
        ask_owner=owner[ask_rows],
        participants=participants,
        owner=owner,
    )


def efficient_quantity(
    bid_price: FloatArray, bid_cum: FloatArray, ask_price: FloatArray, ask_cum: FloatArray
) -> float:
    """``max_p min(D(p), S(p))`` for sorted step curves (bids descending, asks
    ascending, cumulative quantities with a leading zero).

    Both counts only change at a bid or an ask price, so the maximum is taken
    over those prices, all at once.

    Examples
    --------
    >>> efficient_quantity(np.array([3.0, 1.0]), np.array([0.0, 1.0, 2.0]),
    ...                    np.array([0.5, 2.0]), np.array([0.0, 1.0, 3.0]))
    1.0
    """
    if bid_price.size == 0 or ask_price.size == 0:
        return 0.0
    p = np.concatenate([bid_price, ask_price])
    demand = bid_cum[np.searchsorted(-bid_price, -p, side="right")]
    supply = ask_cum[np.searchsorted(ask_price, p, side="right")]
    return float(np.minimum(demand, supply).max())


def prefix_fill(qty: FloatArray, total: float) -> FloatArray:
    """Fill the steps ``qty`` in order until ``total`` is reached: the accepted
    quantity of each step (the last one partially).

    Examples
    --------
    >>> prefix_fill(np.array([2.0, 1.0, 3.0]), 2.5).tolist()
    [2.0, 0.5, 0.0]
    """
    start = np.concatenate([[0.0], np.cumsum(qty)[:-1]])
    return np.clip(total - start, 0.0, qty)


def allocation(orders: OrderBatch, curves: Curves, bid_total: float,
               ask_total: float) -> FloatArray:
    """Accepted quantity per batch row when the first ``bid_total`` of the bid
    curve and the first ``ask_total`` of the ask curve trade."""
    accepted = np.zeros(len(orders))
    accepted[curves.bid_rows] = prefix_fill(curves.bid_qty, bid_total)
    accepted[curves.ask_rows] = prefix_fill(curves.ask_qty, ask_total)
    return accepted


def require_one_side(orders: OrderBatch, curves: Curves, mechanism: str) -> None:
    """Refuse a batch in which one participant both buys and sells."""
    on_buy = np.zeros(curves.participants.shape[0], dtype=bool)
    on_buy[curves.bid_owner] = True
    both = on_buy[curves.ask_owner]
    if both.any():
        row = int(curves.ask_rows[np.flatnonzero(both)[0]])
        raise InputError(
            "participant",
            f"{orders.participant[row]!r} both buys and sells; {mechanism} treats each "
            "participant as a buyer or a seller (net the orders first)",
            row=row,
        )


def require_integer_quantity(orders: OrderBatch, mechanism: str) -> None:
    """Refuse a batch whose quantities are not whole units."""
    q = orders.quantity
    bad = np.flatnonzero(q != np.round(q))
    if bad.size:
        row = int(bad[0])
        raise InputError(
            "quantity",
            f"{mechanism} trades whole units: must be an integer, got {float(q[row])!r}",
            row=row,
        )


def split_by_participant(
    amount: FloatArray, owner: IntArray, accepted: FloatArray, n_participants: int
) -> FloatArray:
    """Spread each participant's ``amount`` over its orders in proportion to the
    quantity each order traded (orders that traded nothing get zero)."""
    traded = np.bincount(owner, weights=accepted, minlength=n_participants)
    share = np.divide(accepted, traded[owner], out=np.zeros_like(accepted),
                      where=traded[owner] > 0)
    return amount[owner] * share


def welfare_optimum(orders: OrderBatch, /) -> tuple[FloatArray, float]:
    """The welfare-maximising allocation, solved as a linear programme (HiGHS).

    ``max sum(side * price * x)`` subject to ``sum(side * x) = 0`` (energy bought
    equals energy sold) and ``0 <= x <= quantity``. It is the reference the
    audit measures efficiency against, and the default welfare solver of the
    generic (re-solving) VCG path.

    Returns
    -------
    accepted : ndarray
        Optimal quantity of each order.
    welfare : float
        The optimal gains from trade at the orders' prices.

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
    ...                 side=["buy", "sell", "sell"], price=[0.3, 0.1, 0.2],
    ...                 quantity=[2.0, 1.0, 1.5])
    >>> x, w = welfare_optimum(ob)
    >>> x.round(6).tolist(), round(w, 6)
    ([2.0, 1.0, 1.0], 0.3)
    """
    n = len(orders)
    if n == 0 or orders.is_buy.all() or not orders.is_buy.any():
        return np.zeros(n), 0.0
    side = orders.side.astype(np.float64)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, 1
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = side * orders.price
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = orders.quantity.astype(np.float64)
    lp.row_lower_ = lp.row_upper_ = np.zeros(1)  # energy balance
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(n + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.zeros(n, dtype=np.int32)
    lp.a_matrix_.value_ = side
    status = h.passModel(lp)
    if status != highspy.HighsStatus.kOk:
        raise SolverError(f"HiGHS refused the welfare LP: {status}")
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"welfare LP not solved: {h.modelStatusToString(h.getModelStatus())}")
    x = np.clip(np.asarray(h.getSolution().col_value, dtype=np.float64), 0.0, orders.quantity)
    return x, float(np.dot(side * orders.price, x))

