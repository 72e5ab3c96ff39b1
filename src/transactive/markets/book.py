"""Continuous double auction: a price-time priority limit order book.

:class:`OrderBook` keeps the resting orders of one product and matches every
incoming order against them as it arrives:

- **Priority** is price first, then time: a better price always trades first,
  and among orders at one price the one queued earliest trades first (FIFO).
- **Price**: every trade executes at the resting (maker) order's price; an
  incoming order walks the book level by level while its limit allows.
- **Time in force**: ``"gtc"`` (good till cancelled: the remainder rests),
  ``"ioc"`` (immediate or cancel: the remainder is cancelled, never rests),
  ``"fok"`` (fill or kill: fills completely at once or does nothing). A market
  order (``price=None``) never rests.
- **Modify**: a price change or a quantity increase loses time priority (the
  order is queued again at the back and may trade at once); a quantity
  decrease keeps it.
- The book is never crossed: after every event the best bid is below the best
  ask whenever both exist.
- Every bad event raises :class:`~transactive.errors.InputError` naming the
  field, before anything changes.

Sides are ``BUY = +1`` and ``SELL = -1`` (``"buy"``/``"sell"`` accepted), as in
:mod:`transactive.orders`. Quantities are divisible energy (kWh), prices are
per unit and may be negative.

How it is fast in plain Python: each side is a dict of price level -> deque of
orders (FIFO) plus a heap of level keys (bids keyed by ``-price`` so both sides
are min-heaps); empty levels and cancelled orders are removed lazily and the
structures are compacted when the dead entries outgrow the live ones, so
every event costs O(log levels) amortised plus O(1) per fill (a fill-or-kill
order also scans the levels within its limit). ``benchmarks/bench_book.py``
measures it.

The mechanism ``"book"`` (:func:`clear_book`) runs a sealed
:class:`~transactive.orders.OrderBatch` through an empty book in time order.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from heapq import heapify, heappop, heappush, nsmallest
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import register
from transactive.orders import _SIDE_WORDS, BUY, SELL, OrderBatch

__all__ = ["Depth", "Fill", "OrderBook", "OrderState", "clear_book"]

Status = Literal["open", "filled", "cancelled"]
TimeInForce = Literal["gtc", "ioc", "fok"]

OPEN: Status = "open"
FILLED: Status = "filled"
CANCELLED: Status = "cancelled"
_REPLACED = "replaced"  # internal: a queue entry left behind by a re-queued order
_TIFS: dict[Any, TimeInForce] = {"gtc": "gtc", "ioc": "ioc", "fok": "fok"}
_SIDES: dict[Any, int] = {BUY: BUY, SELL: SELL, **_SIDE_WORDS}
_INF = math.inf
_MIN_DEAD_LIMIT = 1024  # dead queue entries tolerated before compacting


class Fill(NamedTuple):
    """One trade: ``quantity`` at ``price`` between a taker and a maker.

    ``price`` is the maker's limit price; ``sequence`` numbers the book's
    trades from 0 in the order they happened.
    """

    taker_id: Hashable
    maker_id: Hashable
    buy_id: Hashable
    sell_id: Hashable
    price: float
    quantity: float
    sequence: int


_new_fill = tuple.__new__  # builds a Fill without the Python-level __new__


class OrderState(NamedTuple):
    """A snapshot of one order: ``filled + remaining == quantity`` always.

    ``price`` is ``nan`` for a market order; ``remaining`` is what is still
    resting (``status == "open"``) or what was never filled (otherwise).
    """

    id: Hashable
    participant: Any
    side: int
    price: float
    quantity: float
    filled: float
    remaining: float
    status: Status
    tif: TimeInForce


class Depth(NamedTuple):
    """The top levels of each side, best first: price, total quantity and
    number of orders per level."""

    bid_price: npt.NDArray[np.float64]
    bid_quantity: npt.NDArray[np.float64]
    bid_orders: npt.NDArray[np.int64]
    ask_price: npt.NDArray[np.float64]
    ask_quantity: npt.NDArray[np.float64]
    ask_orders: npt.NDArray[np.int64]


class _Order:
    """The book's record of one order (mutable; never handed out)."""

    __slots__ = ("id", "key", "participant", "price", "quantity", "remaining", "side",
                 "status", "tif")

    def __init__(self, order_id: Hashable, participant: Any, side: int, price: float,
                 quantity: float, remaining: float, tif: TimeInForce) -> None:
        self.id = order_id
        self.participant = participant
        self.side = side
        self.price = price
        self.key = -side * price  # level key: -price for bids, price for asks
        self.quantity = quantity
        self.remaining = remaining
        self.status: str = OPEN
        self.tif = tif


# ----------------------------------------------------------------- validation
def _side(side: Any) -> int:
    if type(side) is not bool:
        try:
            code = _SIDES.get(side)
        except TypeError:  # unhashable
            code = None
        if code is None and isinstance(side, str):
            code = _SIDE_WORDS.get(side.strip().lower())
        if code is not None:
            return code
    raise InputError("side", f"must be 'buy' (+1) or 'sell' (-1), got {side!r}")


def _tif(tif: Any) -> TimeInForce:
    code = _TIFS.get(tif.strip().lower()) if isinstance(tif, str) else None
    if code is None:
        raise InputError("tif", f"must be 'gtc', 'ioc' or 'fok', got {tif!r}")
    return code


def _number(field: str, value: Any) -> float:
    """A finite float from a Python or numpy real number."""
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                              np.floating)):
            raise InputError(field, f"must be a number, got {value!r}")
        value = float(value)
    if not -_INF < value < _INF:
        raise InputError(field, f"must be a finite number, got {value!r}")
    return value + 0.0  # no negative zero


def _quantity(value: Any) -> float:
    q = _number("quantity", value)
    if q <= 0.0:
        raise InputError("quantity", f"must be > 0, got {value!r}")
    return q


def _order_id(order_id: Any) -> Hashable:
    if type(order_id) is int or type(order_id) is str:
        return order_id
    if isinstance(order_id, np.integer):
        return int(order_id)
    if isinstance(order_id, np.str_):
        return str(order_id)
    raise InputError("order_id", f"must be an int or a str, got {order_id!r}")


class OrderBook:
    """A price-time priority limit order book for one product.

    Examples
    --------
    >>> book = OrderBook()
    >>> book.add(1, "alice", "sell", 2.0, price=0.30)
    []
    >>> book.add(2, "bob", "sell", 1.0, price=0.25)
    []
    >>> [(f.maker_id, f.price, f.quantity) for f in book.add(3, "carol", "buy", 2.5, 0.30)]
    [(2, 0.25, 1.0), (1, 0.3, 1.5)]
    >>> book.best_bid(), book.best_ask()
    (None, 0.3)
    >>> book.order(1).remaining, book.order(1).status
    (0.5, 'open')
    """

    def __init__(self) -> None:
        self._orders: dict[Hashable, _Order] = {}
        self._bid_levels: dict[float, deque[_Order]] = {}
        self._ask_levels: dict[float, deque[_Order]] = {}
        self._bid_heap: list[float] = []
        self._ask_heap: list[float] = []
        self._trades: list[Fill] = []
        self._dead = 0
        self._dead_limit = _MIN_DEAD_LIMIT

    # ------------------------------------------------------------------ events
    def add(self, order_id: Hashable, participant: Any, side: int | str, quantity: float,
            price: float | None = None, tif: TimeInForce = "gtc") -> list[Fill]:
        """Submit an order; return the trades it made, in order.

        Parameters
        ----------
        order_id : int or str
            New, unique for the life of the book.
        participant : any
            Who sends the order (recorded, not interpreted).
        side : ``"buy"``/``"sell"`` or ``BUY``/``SELL``
        quantity : float
            Finite, > 0.
        price : float or None
            Limit price (finite); ``None`` for a market order, which never rests.
        tif : ``"gtc"``, ``"ioc"`` or ``"fok"``

        Raises
        ------
        InputError
            For a duplicate or malformed id, a bad side or tif, a quantity that
            is not finite and > 0, or a price that is not finite; the book is
            left as it was.
        """
        # fast paths for plain Python values; the helpers handle the rest
        oid = order_id if type(order_id) is int or type(order_id) is str else _order_id(order_id)
        if oid in self._orders:
            raise InputError("order_id", f"duplicate order id {oid!r}")
        s = side if type(side) is int and side in (BUY, SELL) else _side(side)
        fast_qty = type(quantity) is float and 0.0 < quantity < _INF
        qty = quantity if fast_qty else _quantity(quantity)
        if price is None:
            p = math.nan
        elif type(price) is float and -_INF < price < _INF:
            p = price + 0.0
        else:
            p = _number("price", price)
        t: TimeInForce = "gtc" if type(tif) is str and tif == "gtc" else _tif(tif)
        order = _Order(oid, participant, s, p, qty, qty, t)
        self._orders[oid] = order
        return self._execute(order)

    def cancel(self, order_id: Hashable) -> None:
        """Take an open order out of the book."""
        order = self._open_order(order_id)
        order.status = CANCELLED
        self._unqueue(order)

    def modify(self, order_id: Hashable, price: float | None = None,
               quantity: float | None = None) -> list[Fill]:
        """Change an open order's limit price and/or total quantity.

        ``quantity`` is the new total (filled part included): below the filled
        quantity is an error, equal to it leaves the order filled. A quantity
        decrease alone keeps time priority; a price change or a quantity
        increase queues the order again at the back, where a new price may
        trade at once (the trades are returned).
        """
        order = self._open_order(order_id)
        new_price = order.price if price is None else _number("price", price)
        new_qty = order.quantity if quantity is None else _quantity(quantity)
        filled = order.quantity - order.remaining
        if new_qty < filled:
            raise InputError("quantity", f"must be >= the filled quantity {filled!r}, "
                             f"got {quantity!r}")
        if new_price == order.price and new_qty <= order.quantity:
            order.quantity = new_qty
            order.remaining = new_qty - filled
            if order.remaining == 0.0:
                order.status = FILLED
                self._unqueue(order)
            return []
        order.status = _REPLACED
        self._unqueue(order)
        again = _Order(order.id, order.participant, order.side, new_price, new_qty,
                       new_qty - filled, "gtc")
        self._orders[order.id] = again
        if again.remaining == 0.0:
            again.status = FILLED
            return []
        return self._execute(again)

    # ------------------------------------------------------------ introspection
    def best_bid(self) -> float | None:
        """The highest resting buy price, or ``None`` if there is no bid."""
        key = self._top(self._bid_heap, self._bid_levels)
        return None if key is None else -key + 0.0

    def best_ask(self) -> float | None:
        """The lowest resting sell price, or ``None`` if there is no ask."""
        return self._top(self._ask_heap, self._ask_levels)

    def depth(self, levels: int = 5) -> Depth:
        """Price, quantity and order count of the best ``levels`` levels per side."""
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 0:
            raise InputError("levels", f"must be an integer >= 0, got {levels!r}")
        cols: list[npt.NDArray[Any]] = []
        for side_levels, sign in ((self._bid_levels, -1.0), (self._ask_levels, 1.0)):
            keys = nsmallest(int(levels), side_levels)
            queues = [[o.remaining for o in side_levels[k] if o.status is OPEN] for k in keys]
            cols += [np.array(keys, dtype=np.float64) * sign + 0.0,
                     np.array([math.fsum(q) for q in queues], dtype=np.float64),
                     np.array([len(q) for q in queues], dtype=np.int64)]
        return Depth(*cols)

    def open_orders(self, side: int | str) -> list[Hashable]:
        """Ids of the resting orders of one side in priority order (best price
        first, then earliest queued)."""
        side_levels = self._bid_levels if _side(side) == BUY else self._ask_levels
        return [o.id for k in sorted(side_levels) for o in side_levels[k] if o.status is OPEN]

    def order(self, order_id: Hashable) -> OrderState:
        """The state of an order the book has seen (open, filled or cancelled)."""
        o = self._known(order_id)
        return OrderState(o.id, o.participant, o.side, o.price, o.quantity,
                          o.quantity - o.remaining, o.remaining, o.status,  # type: ignore[arg-type]
                          o.tif)

    def trades(self) -> list[Fill]:
        """Every trade so far, in order (a copy)."""
        return list(self._trades)

    def trades_frame(self) -> pd.DataFrame:
        """Every trade so far, one row each, with the columns of :class:`Fill`."""
        frame = pd.DataFrame.from_records(self._trades, columns=list(Fill._fields))
        return frame.astype({"price": np.float64, "quantity": np.float64,
                             "sequence": np.int64})

    def __len__(self) -> int:
        """Number of resting orders (counted, O(book))."""
        return sum(o.status is OPEN for side_levels in (self._bid_levels, self._ask_levels)
                   for q in side_levels.values() for o in q)

    # ---------------------------------------------------------------- matching
    def _execute(self, order: _Order) -> list[Fill]:
        """Match a new (or re-queued) order, then rest or cancel what is left."""
        if order.side == BUY:
            heap, levels = self._ask_heap, self._ask_levels
            own_heap, own_levels = self._bid_heap, self._bid_levels
        else:
            heap, levels = self._bid_heap, self._bid_levels
            own_heap, own_levels = self._ask_heap, self._ask_levels
        limit = -order.key  # in the opposite side's key space; nan for market orders
        if limit != limit:
            limit = _INF
        if order.tif == "fok" and not self._fillable(levels, limit, order.remaining):
            order.status = CANCELLED
            return []
        # a stale top entry above the limit hides no level within it: skip the walk
        fills = self._match(order, heap, levels, limit) if heap and heap[0] <= limit else []
        if order.remaining == 0.0:
            order.status = FILLED
        elif order.tif != "gtc" or limit == _INF:
            order.status = CANCELLED
        else:  # rest at the back of its level
            key = order.key
            queue = own_levels.get(key)
            if queue is not None:
                queue.append(order)
            else:
                own_levels[key] = deque((order,))
                heappush(own_heap, key)
                if len(own_heap) > 2 * len(own_levels) + 64:  # many stale entries
                    own_heap[:] = list(own_levels)
                    heapify(own_heap)
        return fills

    def _match(self, taker: _Order, heap: list[float], levels: dict[float, deque[_Order]],
               limit: float) -> list[Fill]:
        """Trade ``taker`` against the opposite side while its limit allows."""
        fills: list[Fill] = []
        trades = self._trades
        rem = taker.remaining
        tid = taker.id
        buying = taker.side == BUY
        while heap:
            key = heap[0]
            queue = levels.get(key)
            if queue is None:  # a stale heap entry: the level emptied earlier
                heappop(heap)
                continue
            if key > limit:
                break
            while queue:
                maker = queue[0]
                if maker.status is not OPEN:
                    queue.popleft()
                    self._dead -= 1
                    continue
                mrem = maker.remaining
                if mrem <= rem:
                    qty = mrem
                    rem -= mrem
                    maker.remaining = 0.0
                    maker.status = FILLED
                    queue.popleft()
                else:
                    qty = rem
                    maker.remaining = mrem - rem
                    rem = 0.0
                mid = maker.id
                fill = _new_fill(Fill, (tid, mid, tid if buying else mid,
                                        mid if buying else tid, maker.price, qty, len(trades)))
                fills.append(fill)
                trades.append(fill)
                if rem == 0.0:
                    break
            while queue and queue[0].status is not OPEN:
                queue.popleft()
                self._dead -= 1
            if not queue:
                del levels[key]
                heappop(heap)
            if rem == 0.0:
                break
        taker.remaining = rem
        return fills

    @staticmethod
    def _fillable(levels: dict[float, deque[_Order]], limit: float, quantity: float) -> bool:
        """Whether matching would fill ``quantity`` completely (same arithmetic
        and order as :meth:`_match`, so the answer is exact)."""
        rem = quantity
        for key in sorted(k for k in levels if k <= limit):
            for maker in levels[key]:
                if maker.status is OPEN:
                    if maker.remaining >= rem:
                        return True
                    rem -= maker.remaining
        return False

    def _unqueue(self, order: _Order) -> None:
        """Take a no-longer-open order out of its queue (lazily unless at the head)."""
        levels = self._bid_levels if order.side == BUY else self._ask_levels
        queue = levels[order.key]
        if queue[0] is not order:
            self._dead += 1
            if self._dead > self._dead_limit:
                self._compact()
            return
        queue.popleft()
        while queue and queue[0].status is not OPEN:
            queue.popleft()
            self._dead -= 1
        if not queue:
            del levels[order.key]  # its heap entry goes stale and is dropped lazily

    def _compact(self) -> None:
        """Drop every dead queue entry and stale heap entry."""
        live = 0
        for levels, heap in ((self._bid_levels, self._bid_heap),
                             (self._ask_levels, self._ask_heap)):
            for key in list(levels):
                queue = deque(o for o in levels[key] if o.status is OPEN)
                if queue:
                    levels[key] = queue
                    live += len(queue)
                else:
                    del levels[key]
            heap[:] = list(levels)
            heapify(heap)
        self._dead = 0
        self._dead_limit = max(_MIN_DEAD_LIMIT, live)

    @staticmethod
    def _top(heap: list[float], levels: dict[float, deque[_Order]]) -> float | None:
        while heap and heap[0] not in levels:
            heappop(heap)
        return heap[0] if heap else None

    # ----------------------------------------------------------------- helpers
    def _known(self, order_id: Hashable) -> _Order:
        try:
            return self._orders[order_id]
        except (KeyError, TypeError):
            raise InputError("order_id", f"unknown order id {order_id!r}") from None

    def _open_order(self, order_id: Hashable) -> _Order:
        order = self._known(order_id)
        if order.status is not OPEN:
            raise InputError("order_id", f"order {order_id!r} is already {order.status}")
        return order


# ----------------------------------------------------------------- mechanism
@register("book")  # type: ignore[arg-type]  # Mechanism wants **options
def clear_book(orders: OrderBatch, /) -> Clearing:
    """Run sealed orders through an empty continuous double auction.

    The orders enter as good-till-cancelled limit orders in time order
    (``orders.time``, then row). Each order's accepted quantity is what it
    filled, its price the volume-weighted price of its trades (each at the
    resting order's price); ``clearing_price`` is the last trade's price
    (``nan`` if none). ``info`` holds ``n_trades`` and ``trades`` (a frame of
    the fills with the batch's order ids).

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
    ...                 side=["sell", "sell", "buy"], price=[0.30, 0.20, 0.35],
    ...                 quantity=[1.0, 1.0, 1.5])
    >>> c = clear_book(ob)
    >>> c.accepted.tolist(), c.price.round(3).tolist()
    ([0.5, 1.0, 1.5], [0.3, 0.2, 0.233])
    >>> c.clearing_price, c.info["n_trades"]
    (0.3, 2)
    """
    n = len(orders)
    when = np.arange(n) if orders.time is None else orders.time
    seq = np.argsort(when, kind="stable")
    book = OrderBook()
    add = book.add
    for row, who, side, qty, limit in zip(seq.tolist(), orders.participant[seq].tolist(),
                                          orders.side[seq].tolist(),
                                          orders.quantity[seq].tolist(),
                                          orders.price[seq].tolist(), strict=True):
        add(row, who, side, qty, limit)
    trades = book.trades_frame()
    buy = trades["buy_id"].to_numpy(dtype=np.int64)
    sell = trades["sell_id"].to_numpy(dtype=np.int64)
    quantity = trades["quantity"].to_numpy()
    value = quantity * trades["price"].to_numpy()
    accepted = np.bincount(buy, quantity, n) + np.bincount(sell, quantity, n)
    paid = np.bincount(buy, value, n) + np.bincount(sell, value, n)
    price = np.divide(paid, accepted, out=np.full(n, np.nan), where=accepted > 0)
    for name in ("taker_id", "maker_id", "buy_id", "sell_id"):
        trades[name] = orders.id[trades[name].to_numpy(dtype=np.int64)]
    return Clearing.from_allocation(
        "book", orders, accepted, price,
        float(trades["price"].iloc[-1]) if len(trades) else math.nan,
        info={"n_trades": len(trades), "trades": trades},
    )
