"""The continuous double auction order book, against a naive reference.

``RefBook`` below is deliberately slow and obvious: one list of resting
orders, sorted by (price, arrival) on every use. The fast ``OrderBook`` must
agree with it fill by fill. Quantities are multiples of 1/4 and prices lie on
a small grid, so all arithmetic is exact and equal prices are frequent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import transactive as te
from transactive.errors import InputError
from transactive.markets.book import Fill, OrderBook, OrderState, clear_book
from transactive.orders import BUY, SELL, OrderBatch

PRICES = [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
QUANTITIES = [0.25 * k for k in range(1, 13)]
TIFS = ["gtc", "gtc", "gtc", "ioc", "fok"]


# ----------------------------------------------------------------- reference
@dataclass
class RefOrder:
    participant: Any
    side: int
    price: float  # nan: market order
    quantity: float
    remaining: float
    status: str
    tif: str


class RefBook:
    """A limit order book written to be obviously right, not fast."""

    def __init__(self) -> None:
        self.orders: dict[Any, RefOrder] = {}
        self.resting: list[Any] = []  # ids of open orders, any order
        self.stamp: dict[Any, int] = {}  # when each resting order was queued
        self.clock = 0
        self.fills: list[tuple[Any, ...]] = []

    def queue(self, side: int) -> list[Any]:
        """Open ids of one side, best price first, then earliest queued."""
        def priority(oid: Any) -> tuple[float, int]:
            o = self.orders[oid]
            return (-o.price if side == BUY else o.price, self.stamp[oid])
        return sorted((i for i in self.resting if self.orders[i].side == side), key=priority)

    def add(self, oid: Any, participant: Any, side: int, qty: float, price: float | None,
            tif: str) -> list[tuple[Any, ...]]:
        self.orders[oid] = RefOrder(participant, side, math.nan if price is None else price,
                                    qty, qty, "open", tif)
        return self._run(oid)

    def cancel(self, oid: Any) -> None:
        self.orders[oid].status = "cancelled"
        self.resting.remove(oid)

    def modify(self, oid: Any, price: float | None, qty: float | None) -> list[tuple[Any, ...]]:
        o = self.orders[oid]
        filled = o.quantity - o.remaining
        new_price = o.price if price is None else price
        new_qty = o.quantity if qty is None else qty
        keeps_place = new_price == o.price and new_qty <= o.quantity
        o.price, o.quantity, o.remaining = new_price, new_qty, new_qty - filled
        if o.remaining == 0:
            o.status = "filled"
            self.resting.remove(oid)
            return []
        if keeps_place:
            return []
        self.resting.remove(oid)
        return self._run(oid)

    def _run(self, oid: Any) -> list[tuple[Any, ...]]:
        o = self.orders[oid]

        def crosses(maker_price: float) -> bool:
            if math.isnan(o.price):
                return True
            return maker_price <= o.price if o.side == BUY else maker_price >= o.price

        makers = [m for m in self.queue(-o.side) if crosses(self.orders[m].price)]
        if o.tif == "fok" and sum(self.orders[m].remaining for m in makers) < o.remaining:
            o.status = "cancelled"
            return []
        fills = []
        for m in makers:
            if o.remaining == 0:
                break
            mo = self.orders[m]
            q = min(o.remaining, mo.remaining)
            o.remaining -= q
            mo.remaining -= q
            buy, sell = (oid, m) if o.side == BUY else (m, oid)
            fills.append((oid, m, buy, sell, mo.price, q, len(self.fills)))
            self.fills.append(fills[-1])
            if mo.remaining == 0:
                mo.status = "filled"
                self.resting.remove(m)
        if o.remaining == 0:
            o.status = "filled"
        elif o.tif != "gtc" or math.isnan(o.price):
            o.status = "cancelled"
        else:
            self.clock += 1
            self.stamp[oid] = self.clock
            self.resting.append(oid)
        return fills

    def best(self, side: int) -> float | None:
        q = self.queue(side)
        return self.orders[q[0]].price if q else None


# ----------------------------------------------------------------- helpers
def same(a: Any, b: Any) -> bool:
    """Equality that treats nan as equal to nan."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def assert_agree(book: OrderBook, ref: RefBook) -> None:
    """Every order's state, both queues and the best prices agree."""
    for oid, r in ref.orders.items():
        s = book.order(oid)
        want = (oid, r.participant, r.side, r.price, r.quantity, r.quantity - r.remaining,
                r.remaining, r.status, r.tif)
        assert all(same(x, y) for x, y in zip(s, want, strict=True)), (s, want)
    assert book.open_orders(BUY) == ref.queue(BUY)
    assert book.open_orders(SELL) == ref.queue(SELL)
    assert book.best_bid() == ref.best(BUY)
    assert book.best_ask() == ref.best(SELL)


def snapshot(book: OrderBook, ids: Any) -> tuple[Any, ...]:
    """Everything observable about a book whose orders are ``ids``."""
    states = [book.order(oid) for oid in ids]
    depth = tuple(tuple(a.tolist()) for a in book.depth(100))
    return (repr(states), book.open_orders(BUY), book.open_orders(SELL), book.best_bid(),
            book.best_ask(), depth, book.trades())


def random_events(rng: np.random.Generator, ref: RefBook, n: int) -> list[tuple[Any, ...]]:
    """``n`` valid events drawn against the state of ``ref`` (which they update)."""
    events = []
    for i in range(n):
        open_ids = ref.resting
        u = rng.random()
        if u < 0.25 and open_ids:
            oid = open_ids[rng.integers(len(open_ids))]
            events.append(("cancel", oid))
            ref.cancel(oid)
        elif u < 0.4 and open_ids:
            oid = open_ids[rng.integers(len(open_ids))]
            o = ref.orders[oid]
            filled = o.quantity - o.remaining
            price = None if rng.random() < 0.4 else float(rng.choice(PRICES))
            qty = None if rng.random() < 0.4 else filled + 0.25 * int(rng.integers(filled == 0, 8))
            events.append(("modify", oid, price, qty))
            ref.modify(oid, price, qty)
        else:
            side = BUY if rng.random() < 0.5 else SELL
            price = None if rng.random() < 0.08 else float(rng.choice(PRICES))
            qty = float(rng.choice(QUANTITIES))
            tif = str(rng.choice(TIFS))
            events.append(("add", i, f"p{i % 3}", side, qty, price, tif))
            ref.add(i, f"p{i % 3}", side, qty, price, tif)
    return events


def apply(book: OrderBook, event: tuple[Any, ...]) -> list[Fill]:
    if event[0] == "add":
        _, oid, who, side, qty, price, tif = event
        return book.add(oid, who, side, qty, price, tif)
    if event[0] == "cancel":
        book.cancel(event[1])
        return []
    return book.modify(event[1], price=event[2], quantity=event[3])


# ----------------------------------------------------------------- agreement
def test_agrees_with_reference_fill_by_fill_on_random_sequences() -> None:
    rng = np.random.default_rng(20240601)
    n_fills = 0
    for _ in range(3000):
        ref = RefBook()
        events = random_events(rng, ref, int(rng.integers(5, 50)))
        book = OrderBook()
        fills = [f for e in events for f in apply(book, e)]
        assert [tuple(f) for f in fills] == ref.fills
        assert book.trades() == fills
        assert_agree(book, ref)
        n_fills += len(fills)
    assert n_fills > 10_000  # the sequences trade a lot


def test_agrees_with_reference_on_a_long_sequence_event_by_event() -> None:
    rng = np.random.default_rng(7)
    ref, shadow = RefBook(), RefBook()
    events = random_events(rng, shadow, 3000)
    book = OrderBook()
    for e in events:
        assert [tuple(f) for f in apply(book, e)] == [
            tuple(f) for f in apply_ref(ref, e)]
    assert_agree(book, ref)
    assert len(book) == len(ref.resting)


def apply_ref(ref: RefBook, event: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if event[0] == "add":
        return ref.add(*event[1:])
    if event[0] == "cancel":
        ref.cancel(event[1])
        return []
    return ref.modify(*event[1:])


# ----------------------------------------------------------------- stateful
class BookMachine(RuleBasedStateMachine):
    """Random events against the book and the reference; invariants after each."""

    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook()
        self.ref = RefBook()
        self.next_id = 0
        self.queued_at: dict[int, int] = {}  # own record of each order's queue time
        self.dead: dict[int, Any] = {}  # cancelled id -> its state when cancelled
        self.step = 0

    # ---- events
    def _check_fills(self, taker: int, fills: list[Fill]) -> None:
        for f in fills:
            assert f.taker_id == taker
            assert f.taker_id not in self.dead
            assert f.maker_id not in self.dead
            maker = self.ref.orders[f.maker_id]
            assert f.price == maker.price  # the maker's price
            buy, sell = self.ref.orders[f.buy_id], self.ref.orders[f.sell_id]
            assert buy.side == BUY
            assert sell.side == SELL
            assert math.isnan(buy.price) or f.price <= buy.price
            assert math.isnan(sell.price) or f.price >= sell.price
            assert f.quantity > 0

    def _requeued(self, oid: int) -> None:
        self.step += 1
        if self.book.order(oid).status == "open":
            self.queued_at[oid] = self.step

    @rule(side=st.sampled_from([BUY, SELL, "buy", "sell"]), qty=st.sampled_from(QUANTITIES),
          price=st.one_of(st.none(), st.sampled_from(PRICES)), tif=st.sampled_from(TIFS))
    def add(self, side: Any, qty: float, price: float | None, tif: str) -> None:
        oid = self.next_id
        self.next_id += 1
        fills = self.book.add(oid, "p", side, qty, price, tif)
        code = BUY if side in (BUY, "buy") else SELL
        assert [tuple(f) for f in fills] == self.ref.add(oid, "p", code, qty, price, tif)
        self._check_fills(oid, fills)
        state = self.book.order(oid)
        if tif != "gtc" or price is None:  # IOC and market orders never rest
            assert state.status != "open"
            assert oid not in self.book.open_orders(code)
        if tif == "fok":  # all or nothing
            assert state.filled in (0.0, qty)
            assert (state.filled == 0.0) == (fills == [])
        self._requeued(oid)

    @precondition(lambda self: self.ref.resting)
    @rule(pick=st.integers(min_value=0))
    def cancel(self, pick: int) -> None:
        oid = self.ref.resting[pick % len(self.ref.resting)]
        self.book.cancel(oid)
        self.ref.cancel(oid)
        self.dead[oid] = self.book.order(oid)

    @precondition(lambda self: self.ref.resting)
    @rule(pick=st.integers(min_value=0), price=st.one_of(st.none(), st.sampled_from(PRICES)),
          extra=st.one_of(st.none(), st.integers(0, 8)))
    def modify(self, pick: int, price: float | None, extra: int | None) -> None:
        oid = self.ref.resting[pick % len(self.ref.resting)]
        before = self.book.order(oid)
        qty = None if extra is None else before.filled + 0.25 * max(extra, before.filled == 0)
        fills = self.book.modify(oid, price=price, quantity=qty)
        assert [tuple(f) for f in fills] == self.ref.modify(oid, price, qty)
        self._check_fills(oid, fills)
        after = self.book.order(oid)
        if after.price != before.price or after.quantity > before.quantity:
            self._requeued(oid)
        else:
            assert fills == []

    @precondition(lambda self: self.next_id > 0)
    @rule(pick=st.integers(min_value=0), data=st.data())
    def bad_event(self, pick: int, data: st.DataObject) -> None:
        oid = pick % self.next_id
        state = self.book.order(oid)
        choices: list[tuple[str, Any]] = [
            ("order_id", lambda: self.book.add(oid, "p", BUY, 1.0, 1.0)),
            ("order_id", lambda: self.book.cancel(self.next_id + 5)),
            ("order_id", lambda: self.book.modify("nobody", price=1.0)),
            ("quantity", lambda: self.book.add(self.next_id, "p", BUY, 0.0, 1.0)),
            ("quantity", lambda: self.book.add(self.next_id, "p", SELL, -1.0, 1.0)),
            ("quantity", lambda: self.book.add(self.next_id, "p", SELL, math.nan, 1.0)),
            ("quantity", lambda: self.book.add(self.next_id, "p", SELL, math.inf, 1.0)),
            ("price", lambda: self.book.add(self.next_id, "p", BUY, 1.0, math.nan)),
            ("price", lambda: self.book.add(self.next_id, "p", BUY, 1.0, -math.inf)),
            ("side", lambda: self.book.add(self.next_id, "p", 0, 1.0, 1.0)),
            ("side", lambda: self.book.add(self.next_id, "p", "hold", 1.0, 1.0)),
            ("tif", lambda: self.book.add(self.next_id, "p", BUY, 1.0, 1.0, "day")),
        ]
        if state.status != "open":  # cancel / modify of a filled or cancelled order
            choices += [("order_id", lambda: self.book.cancel(oid)),
                        ("order_id", lambda: self.book.modify(oid, quantity=5.0))]
        else:
            if state.filled > 0:
                choices.append(("quantity", lambda: self.book.modify(
                    oid, price=PRICES[0], quantity=state.filled - 0.25)))
            choices += [("price", lambda: self.book.modify(oid, price=math.nan)),
                        ("quantity", lambda: self.book.modify(oid, quantity=0.0))]
        field, event = data.draw(st.sampled_from(choices))
        before = snapshot(self.book, range(self.next_id))
        with pytest.raises(InputError) as err:
            event()
        assert err.value.field == field
        assert snapshot(self.book, range(self.next_id)) == before
        with pytest.raises(InputError):  # no order was registered either
            self.book.order(self.next_id)

    # ---- invariants
    @invariant()
    def never_crossed(self) -> None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            assert bid < ask

    @invariant()
    def fifo_within_each_level(self) -> None:
        for side in (BUY, SELL):
            ids = self.book.open_orders(side)
            keys = [(-side * self.book.order(i).price, self.queued_at[i]) for i in ids]
            assert keys == sorted(keys)

    @invariant()
    def agrees_with_reference(self) -> None:
        assert_agree(self.book, self.ref)

    @invariant()
    def quantities_add_up(self) -> None:
        bought = sold = 0.0
        for oid in range(self.next_id):
            s = self.book.order(oid)
            assert s.filled + s.remaining == s.quantity
            assert 0 <= s.filled <= s.quantity
            if s.side == BUY:
                bought += s.filled
            else:
                sold += s.filled
        assert bought == sold == sum(f.quantity for f in self.book.trades())

    @invariant()
    def cancelled_orders_stay_put(self) -> None:
        for oid, state in self.dead.items():
            assert self.book.order(oid) == state


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------- worked by hand
def test_incoming_order_walks_the_book_at_maker_prices() -> None:
    book = OrderBook()
    book.add("a", "s1", "sell", 1.0, 10.0)
    book.add("b", "s2", "sell", 2.0, 11.0)
    book.add("c", "s3", "sell", 1.0, 11.0)
    book.add("d", "s4", "sell", 1.0, 12.0)
    fills = book.add("x", "buyer", "buy", 3.5, 11.5)
    assert fills == [Fill("x", "a", "x", "a", 10.0, 1.0, 0),
                     Fill("x", "b", "x", "b", 11.0, 2.0, 1),
                     Fill("x", "c", "x", "c", 11.0, 0.5, 2)]
    assert book.order("x").status == "filled"
    assert book.order("c")[4:8] == (1.0, 0.5, 0.5, "open")
    assert (book.best_bid(), book.best_ask()) == (None, 11.0)
    depth = book.depth(5)
    assert depth.ask_price.tolist() == [11.0, 12.0]
    assert depth.ask_quantity.tolist() == [0.5, 1.0]
    assert depth.ask_orders.tolist() == [1, 1]
    assert depth.bid_price.size == 0


def test_limit_remainder_rests_at_its_own_price() -> None:
    book = OrderBook()
    book.add(1, "s", SELL, 1.0, 0.20)
    fills = book.add(2, "b", BUY, 3.0, 0.25)
    assert [(f.price, f.quantity) for f in fills] == [(0.20, 1.0)]
    assert book.order(2)[5:8] == (1.0, 2.0, "open")
    assert (book.best_bid(), book.best_ask()) == (0.25, None)


def test_time_priority_and_modify() -> None:
    book = OrderBook()
    for oid in ("first", "second", "third"):
        book.add(oid, "p", "buy", 2.0, 5.0)
    book.modify("first", quantity=1.0)  # decrease: keeps its place
    assert book.open_orders("buy") == ["first", "second", "third"]
    book.modify("second", quantity=3.0)  # increase: to the back
    assert book.open_orders("buy") == ["first", "third", "second"]
    book.modify("first", price=5.5)  # better price: front of a new level
    book.modify("first", price=5.0)  # back again, now behind the others
    assert book.open_orders("buy") == ["third", "second", "first"]
    fills = book.add("s", "q", "sell", 4.0, 4.0)
    assert [(f.maker_id, f.price, f.quantity) for f in fills] == [
        ("third", 5.0, 2.0), ("second", 5.0, 2.0)]


def test_modify_price_may_trade_at_once_at_the_makers_price() -> None:
    book = OrderBook()
    book.add(1, "s", "sell", 1.0, 3.0)
    book.add(2, "b", "buy", 2.0, 2.0)
    fills = book.modify(2, price=3.5)
    assert fills == [Fill(2, 1, 2, 1, 3.0, 1.0, 0)]
    assert book.order(2)[4:8] == (2.0, 1.0, 1.0, "open")
    assert book.best_bid() == 3.5


def test_modify_quantity_against_filled_part() -> None:
    book = OrderBook()
    book.add(1, "s", "sell", 4.0, 3.0)
    book.add(2, "b", "buy", 1.5, 3.0)
    with pytest.raises(InputError, match="filled") as err:
        book.modify(1, quantity=1.0)
    assert err.value.field == "quantity"
    book.modify(1, quantity=1.5)  # down to what it filled: done
    assert book.order(1)[4:8] == (1.5, 1.5, 0.0, "filled")
    assert book.best_ask() is None
    with pytest.raises(InputError, match="already filled"):
        book.cancel(1)


def test_ioc_market_and_fok() -> None:
    book = OrderBook()
    assert book.add("m", "p", "buy", 1.0) == []  # market order, empty book
    assert book.order("m").status == "cancelled"
    book.add(1, "s", "sell", 1.0, 10.0)
    book.add(2, "s", "sell", 1.0, 11.0)
    fills = book.add("ioc", "p", "buy", 3.0, 10.0, tif="ioc")
    assert [(f.maker_id, f.quantity) for f in fills] == [(1, 1.0)]
    assert book.order("ioc")[5:8] == (1.0, 2.0, "cancelled")
    assert book.best_bid() is None
    ids = ["m", 1, 2, "ioc"]
    before = snapshot(book, ids)
    assert book.add("fok1", "p", "buy", 1.5, 11.0, tif="fok") == []  # only 1.0 there
    assert book.order("fok1")[5:8] == (0.0, 1.5, "cancelled")
    assert snapshot(book, ids) == before
    book.add(3, "s", "sell", 1.0, 11.0)
    fills = book.add("fok2", "p", "buy", 1.5, 11.0, tif="FOK")
    assert [(f.maker_id, f.quantity) for f in fills] == [(2, 1.0), (3, 0.5)]
    fills = book.add("mkt", "p", "buy", 9.0)  # market order sweeps the rest
    assert [(f.maker_id, f.price, f.quantity) for f in fills] == [(3, 11.0, 0.5)]
    assert book.order("mkt")[5:8] == (0.5, 8.5, "cancelled")
    assert math.isnan(book.order("mkt").price)


def test_negative_and_zero_prices() -> None:
    book = OrderBook()
    book.add(1, "pv", "sell", 2.0, -0.05)  # paid to take surplus solar
    book.add(2, "pv", "sell", 2.0, 0.0)
    book.add(3, "ev", "buy", 1.0, -0.10)
    assert (book.best_bid(), book.best_ask()) == (-0.10, -0.05)
    fills = book.add(4, "ev", "buy", 3.0, 0.0)
    assert [(f.price, f.quantity) for f in fills] == [(-0.05, 2.0), (0.0, 1.0)]
    assert str(book.best_ask()) == "0.0"


def test_trades_frame() -> None:
    book = OrderBook()
    assert list(book.trades_frame().columns) == list(Fill._fields)
    assert book.trades_frame().empty
    book.add(1, "s", "sell", 1.0, 2.0)
    book.add(2, "b", "buy", 0.5, 2.0)
    frame = book.trades_frame()
    assert frame.to_dict("records") == [dict(taker_id=2, maker_id=1, buy_id=2, sell_id=1,
                                             price=2.0, quantity=0.5, sequence=0)]


def test_orders_frame_matches_order_states() -> None:
    book = OrderBook()
    book.add("a", "x", "sell", 2.0, 1.0)
    book.add("b", "y", "buy", 0.5)
    book.add("c", "z", "buy", 1.0, 0.5)
    book.modify("c", price=0.75)  # a new row inside; one row per order outside
    frame = book.orders_frame()
    assert list(frame.columns) == list(OrderState._fields)
    assert frame["id"].tolist() == ["a", "b", "c"]
    for record, oid in zip(frame.itertuples(index=False), "abc", strict=True):
        assert all(same(x, y) for x, y in zip(record, book.order(oid), strict=True))


@pytest.mark.parametrize(("call", "field"), [
    (lambda b: b.add(1, "p", "buy", 1.0, 1.0), "order_id"),  # duplicate
    (lambda b: b.add(1.5, "p", "buy", 1.0, 1.0), "order_id"),
    (lambda b: b.add(None, "p", "buy", 1.0, 1.0), "order_id"),
    (lambda b: b.add(9, "p", "buy", True, 1.0), "quantity"),
    (lambda b: b.add(9, "p", "buy", "1", 1.0), "quantity"),
    (lambda b: b.add(9, "p", "buy", 1.0, "1"), "price"),
    (lambda b: b.add(9, "p", True, 1.0, 1.0), "side"),
    (lambda b: b.add(9, "p", [1], 1.0, 1.0), "side"),
    (lambda b: b.add(9, "p", 2, 1.0, 1.0), "side"),
    (lambda b: b.add(9, "p", "buy", 1.0, 1.0, tif=None), "tif"),
    (lambda b: b.cancel([1]), "order_id"),
    (lambda b: b.cancel(2), "order_id"),  # already cancelled
    (lambda b: b.modify(2, price=1.0), "order_id"),
    (lambda b: b.modify(1, price=math.inf), "price"),
    (lambda b: b.modify(1, quantity=-2.0), "quantity"),
    (lambda b: b.depth(-1), "levels"),
])
def test_bad_events_name_the_field_and_change_nothing(call: Any, field: str) -> None:
    book = OrderBook()
    book.add(1, "p", "sell", 2.0, 1.0)
    book.add(2, "p", "sell", 2.0, 1.5)
    book.cancel(2)
    before = snapshot(book, [1, 2])
    with pytest.raises(InputError) as err:
        call(book)
    assert err.value.field == field
    assert snapshot(book, [1, 2]) == before
    assert len(book.orders_frame()) == 2


def test_numpy_inputs_are_accepted() -> None:
    book = OrderBook()
    book.add(np.int64(1), "p", np.int8(-1), np.float32(2.0), np.float64(1.0))
    book.add(np.str_("b"), "p", "BUY", np.int64(1), np.int64(1), tif=np.str_("ioc"))
    assert book.order(1).remaining == 1.0
    assert type(book.trades()[0].price) is float


def test_dead_entries_are_compacted() -> None:
    """A head order that never trades, with endless add/cancel behind it and
    levels made and emptied below it, keeps the structures bounded."""
    book = OrderBook()
    book.add("head", "p", "sell", 1.0, 5.0)
    book.add("bid", "p", "buy", 1.0, 1.0)
    for i in range(20_000):
        book.add(i, "p", "sell", 1.0, 5.0)
        book.add(-i - 1, "p", "buy", 1.0, 0.5 - 0.001 * (i % 500))
        book.cancel(i)
        book.cancel(-i - 1)
    assert len(book._ask_levels[5.0]) < 2_100
    assert len(book._bid_heap) < 200
    assert book.open_orders("sell") == ["head"]
    assert book.open_orders("buy") == ["bid"]
    assert len(book) == 2


# ----------------------------------------------------------------- mechanism
def test_clear_book_worked_example_and_time_order() -> None:
    ob = OrderBatch(id=["s1", "s2", "b1", "b2"], participant=["a", "b", "c", "d"],
                    side=["sell", "sell", "buy", "buy"], price=[0.30, 0.20, 0.35, 0.25],
                    quantity=[1.0, 1.0, 1.5, 2.0], time=[0.0, 1.0, 3.0, 2.0])
    c = te.clear(ob, "book")
    # b2 (t=2) buys s2 at 0.20 (1.0); then b1 (t=3) buys s1 at 0.30 (1.0), 0.5 unfilled
    assert c.accepted.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert c.price.tolist() == [0.30, 0.20, 0.30, 0.20]
    assert c.clearing_price == 0.30
    assert c.info["n_trades"] == 2
    trades = c.info["trades"]
    assert trades[["buy_id", "sell_id"]].values.tolist() == [["b2", "s2"], ["b1", "s1"]]
    assert c.operator_surplus == pytest.approx(0.0)
    assert c.volume == 2.0


def test_clear_book_no_trade_and_empty() -> None:
    ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
                    price=[0.1, 0.2], quantity=[1.0, 1.0])
    c = clear_book(ob)
    assert c.accepted.tolist() == [0.0, 0.0]
    assert math.isnan(c.clearing_price)
    assert np.isnan(c.price).all()
    assert c.info["n_trades"] == 0
    empty = OrderBatch(id=np.array([], dtype=np.int64), participant=np.array([], dtype=str),
                       side=np.array([], dtype=np.int8), price=np.array([]),
                       quantity=np.array([]))
    assert len(clear_book(empty).accepted) == 0


def test_clear_book_matches_reference_on_random_batches() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        side = rng.choice([BUY, SELL], n)
        price = rng.choice(PRICES, n)
        qty = rng.choice(QUANTITIES, n)
        time = rng.integers(0, 10, n).astype(float)
        ob = OrderBatch(id=np.arange(100, 100 + n), participant=np.arange(n) % 4, side=side,
                        price=price, quantity=qty, time=time)
        c = clear_book(ob)
        ref = RefBook()
        for row in np.argsort(time, kind="stable"):
            ref.add(int(row), None, int(side[row]), float(qty[row]), float(price[row]), "gtc")
        want = np.array([ref.orders[i].quantity - ref.orders[i].remaining for i in range(n)])
        assert c.accepted.tolist() == want.tolist()
        assert c.volume == c.accepted[side == SELL].sum()  # bought == sold
        assert c.operator_surplus == pytest.approx(0.0, abs=1e-9)
        assert c.info["n_trades"] == len(ref.fills)
        if ref.fills:
            assert c.clearing_price == ref.fills[-1][4]
        # each order's average price lies within its limit
        traded = c.accepted > 0
        assert np.all((c.price[traded] - price[traded]) * side[traded] <= 1e-12)
