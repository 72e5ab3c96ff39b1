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

How it is fast in plain Python: orders live in parallel lists (so millions
of them add no work for the garbage collector); each side is a dict of price
level -> deque of order rows (FIFO) plus a heap of level keys (bids keyed by
``-price`` so both sides are min-heaps); empty levels and cancelled orders are
removed lazily and the structures are compacted when the dead entries
outgrow the live ones, so every event costs O(log levels) amortised plus
O(1) per fill (a fill-or-kill order also scans the levels within its
limit). ``benchmarks/bench_book.py`` measures it.

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
_ORDER_COLUMNS = [("id", object), ("participant", object), ("side", np.int8),
                  ("price", np.float64), ("quantity", np.float64), ("remaining", np.float64),
                  ("status", object), ("tif", object)]


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
        # Orders live in parallel lists, one row per queue entry (a modify that
        # re-queues an order gives it a new row). Lists of plain values keep
        # millions of orders out of the garbage collector's way.
        self._row: dict[Hashable, int] = {}  # order id -> its current row
        self._id: list[Hashable] = []
        self._participant: list[Any] = []
        self._side: list[int] = []
        self._price: list[float] = []  # nan: market order
        self._quantity: list[float] = []
        self._remaining: list[float] = []
        self._status: list[str] = []  # OPEN, FILLED, CANCELLED or _REPLACED
        self._tif: list[TimeInForce] = []
        # Each side: level key (-price for bids, price for asks) -> FIFO of rows,
        # and a min-heap of the keys (with stale entries, dropped lazily).
        self._bid_levels: dict[float, deque[int]] = {}
        self._ask_levels: dict[float, deque[int]] = {}
        self._bid_heap: list[float] = []
        self._ask_heap: list[float] = []
        self._trades: list[Fill] = []
        self._dead = 0  # rows no longer open but still in a queue
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
        if oid in self._row:
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
        return self._execute(self._new_row(oid, participant, s, p, qty, qty, t))

    def cancel(self, order_id: Hashable) -> None:
        """Take an open order out of the book."""
        row = self._open_row(order_id)
        self._status[row] = CANCELLED
        self._unqueue(row)

    def modify(self, order_id: Hashable, price: float | None = None,
               quantity: float | None = None) -> list[Fill]:
        """Change an open order's limit price and/or total quantity.

        ``quantity`` is the new total (filled part included): below the filled
        quantity is an error, equal to it leaves the order filled. A quantity
        decrease alone keeps time priority; a price change or a quantity
        increase queues the order again at the back, where a new price may
        trade at once (the trades are returned).
        """
        row = self._open_row(order_id)
        old_price, old_qty = self._price[row], self._quantity[row]
        new_price = old_price if price is None else _number("price", price)
        new_qty = old_qty if quantity is None else _quantity(quantity)
        filled = old_qty - self._remaining[row]
        if new_qty < filled:
            raise InputError("quantity", f"must be >= the filled quantity {filled!r}, "
                             f"got {quantity!r}")
        if new_price == old_price and new_qty <= old_qty:  # keeps its place
            self._quantity[row] = new_qty
            self._remaining[row] = new_qty - filled
            if new_qty == filled:
                self._status[row] = FILLED
                self._unqueue(row)
            return []
        self._status[row] = _REPLACED
        self._unqueue(row)
        again = self._new_row(self._id[row], self._participant[row], self._side[row],
                              new_price, new_qty, new_qty - filled, "gtc")
        if new_qty == filled:
            self._status[again] = FILLED
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
            queues = [[self._remaining[r] for r in side_levels[k] if self._status[r] is OPEN]
                      for k in keys]
            cols += [np.array(keys, dtype=np.float64) * sign + 0.0,
                     np.array([math.fsum(q) for q in queues], dtype=np.float64),
                     np.array([len(q) for q in queues], dtype=np.int64)]
        return Depth(*cols)

    def open_orders(self, side: int | str) -> list[Hashable]:
        """Ids of the resting orders of one side in priority order (best price
        first, then earliest queued)."""
        side_levels = self._bid_levels if _side(side) == BUY else self._ask_levels
        return [self._id[r] for k in sorted(side_levels) for r in side_levels[k]
                if self._status[r] is OPEN]

    def order(self, order_id: Hashable) -> OrderState:
        """The state of an order the book has seen (open, filled or cancelled)."""
        try:
            r = self._row[order_id]
        except (KeyError, TypeError):
            raise InputError("order_id", f"unknown order id {order_id!r}") from None
        return OrderState(self._id[r], self._participant[r], self._side[r], self._price[r],
                          self._quantity[r], self._quantity[r] - self._remaining[r],
                          self._remaining[r], self._status[r], self._tif[r])  # type: ignore[arg-type]

    def orders_frame(self) -> pd.DataFrame:
        """Every order the book has seen, one row each in arrival order, with
        the columns of :class:`OrderState`."""
        rows = np.fromiter(self._row.values(), dtype=np.int64, count=len(self._row))
        frame = pd.DataFrame({name: np.asarray(getattr(self, f"_{name}"), dtype=dtype)[rows]
                              for name, dtype in _ORDER_COLUMNS})
        frame.insert(5, "filled", frame["quantity"] - frame["remaining"])
        return frame

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
        status = self._status
        return sum(status[r] is OPEN for side_levels in (self._bid_levels, self._ask_levels)
                   for q in side_levels.values() for r in q)

    # ---------------------------------------------------------------- matching
    def _new_row(self, oid: Hashable, participant: Any, side: int, price: float,
                 quantity: float, remaining: float, tif: TimeInForce) -> int:
        row = len(self._id)
        self._row[oid] = row
        self._id.append(oid)
        self._participant.append(participant)
        self._side.append(side)
        self._price.append(price)
        self._quantity.append(quantity)
        self._remaining.append(remaining)
        self._status.append(OPEN)
        self._tif.append(tif)
        return row

    def _execute(self, row: int) -> list[Fill]:
        """Match a new (or re-queued) order, then rest or cancel what is left."""
        side, price, tif = self._side[row], self._price[row], self._tif[row]
        if side == BUY:
            heap, levels = self._ask_heap, self._ask_levels
            own_heap, own_levels = self._bid_heap, self._bid_levels
        else:
            heap, levels = self._bid_heap, self._bid_levels
            own_heap, own_levels = self._ask_heap, self._ask_levels
        limit = _INF if price != price else side * price  # in the opposite side's keys
        if tif == "fok" and not self._fillable(levels, limit, self._remaining[row]):
            self._status[row] = CANCELLED
            return []
        # a stale top entry above the limit hides no level within it: skip the walk
        fills = self._match(row, heap, levels, limit) if heap and heap[0] <= limit else []
        if self._remaining[row] == 0.0:
            self._status[row] = FILLED
        elif tif != "gtc" or limit == _INF:
            self._status[row] = CANCELLED
        else:  # rest at the back of its level
            key = -limit
            queue = own_levels.get(key)
            if queue is not None:
                queue.append(row)
            else:
                own_levels[key] = deque((row,))
                heappush(own_heap, key)
                if len(own_heap) > 2 * len(own_levels) + 64:  # many stale entries
                    own_heap[:] = list(own_levels)
                    heapify(own_heap)
        return fills

    def _match(self, row: int, heap: list[float], levels: dict[float, deque[int]],
               limit: float) -> list[Fill]:
        """Trade order ``row`` against the opposite side while its limit allows."""
        ids, price, remaining, status = self._id, self._price, self._remaining, self._status
        fills: list[Fill] = []
        trades = self._trades
        rem = remaining[row]
        tid = ids[row]
        buying = self._side[row] == BUY
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
                if status[maker] is not OPEN:
                    queue.popleft()
                    self._dead -= 1
                    continue
                mrem = remaining[maker]
                if mrem <= rem:
                    qty = mrem
                    rem -= mrem
                    remaining[maker] = 0.0
                    status[maker] = FILLED
                    queue.popleft()
                else:
                    qty = rem
                    remaining[maker] = mrem - rem
                    rem = 0.0
                mid = ids[maker]
                fill = _new_fill(Fill, (tid, mid, tid if buying else mid,
                                        mid if buying else tid, price[maker], qty, len(trades)))
                fills.append(fill)
                trades.append(fill)
                if rem == 0.0:
                    break
            while queue and status[queue[0]] is not OPEN:
                queue.popleft()
                self._dead -= 1
            if not queue:
                del levels[key]
                heappop(heap)
            if rem == 0.0:
                break
        remaining[row] = rem
        return fills

    def _fillable(self, levels: dict[float, deque[int]], limit: float, quantity: float) -> bool:
        """Whether matching would fill ``quantity`` completely (same arithmetic
        and order as :meth:`_match`, so the answer is exact)."""
        rem = quantity
        for key in sorted(k for k in levels if k <= limit):
            for maker in levels[key]:
                if self._status[maker] is OPEN:
                    if self._remaining[maker] >= rem:
                        return True
                    rem -= self._remaining[maker]
        return False

    def _unqueue(self, row: int) -> None:
        """Take a no-longer-open row out of its queue (lazily unless at the head)."""
        side = self._side[row]
        levels = self._bid_levels if side == BUY else self._ask_levels
        key = -side * self._price[row]
        queue = levels[key]
        if queue[0] != row:
            self._dead += 1
            if self._dead > self._dead_limit:
                self._compact()
            return
        queue.popleft()
        while queue and self._status[queue[0]] is not OPEN:
            queue.popleft()
            self._dead -= 1
        if not queue:
            del levels[key]  # its heap entry goes stale and is dropped lazily

    def _compact(self) -> None:
        """Drop every dead queue entry and stale heap entry."""
        status = self._status
        live = 0
        for levels, heap in ((self._bid_levels, self._bid_heap),
                             (self._ask_levels, self._ask_heap)):
            for key in list(levels):
                queue = deque(r for r in levels[key] if status[r] is OPEN)
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
    def _top(heap: list[float], levels: dict[float, deque[int]]) -> float | None:
        while heap and heap[0] not in levels:
            heappop(heap)
        return heap[0] if heap else None

    def _open_row(self, order_id: Hashable) -> int:
        try:
            row = self._row[order_id]
        except (KeyError, TypeError):
            raise InputError("order_id", f"unknown order id {order_id!r}") from None
        if self._status[row] is not OPEN:
            raise InputError("order_id", f"order {order_id!r} is already {self._status[row]}")
        return row


# ----------------------------------------------------------------- mechanism
@register("book")
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
