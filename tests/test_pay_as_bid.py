"""Pay-as-bid double auction: hand-worked cases, agreement with the uniform
auction's allocation, and invariants under hypothesis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transactive as te
from transactive.errors import InputError
from transactive.markets.pay_as_bid import clear_pay_as_bid
from transactive.markets.uniform import clear_uniform
from transactive.orders import BUY, OrderBatch


def batch(side: Any, price: Any, quantity: Any, time: Any = None) -> OrderBatch:
    n = len(price)
    return OrderBatch(id=np.arange(n), participant=np.arange(n) % 3, side=side, price=price,
                      quantity=quantity, time=time)


def test_registry_case() -> None:
    # buy 2 @ 0.30 meets sell 1.5 @ 0.10: 1.5 trades; the buyer pays 0.30 per unit,
    # the seller receives 0.10; the operator keeps (0.30 - 0.10) * 1.5 = 0.30.
    c = te.clear(batch(["buy", "sell"], [0.30, 0.10], [2.0, 1.5]), "pay_as_bid")
    assert c.mechanism == "pay_as_bid"
    assert c.accepted.tolist() == [1.5, 1.5]
    assert c.price.tolist() == [0.30, 0.10]
    assert c.payment.tolist() == pytest.approx([0.45, -0.15])
    assert c.operator_surplus == pytest.approx(0.30) == pytest.approx(c.welfare)
    assert c.clearing_price == pytest.approx(0.30)
    assert c.info["sell_price"] == pytest.approx(0.10)


def test_unit_textbook_case() -> None:
    # bids 10, 8, 6, 4 and asks 3, 5, 7, 9, one unit each: 10-3 and 8-5 trade.
    ob = batch([1, 1, 1, 1, -1, -1, -1, -1], [10, 8, 6, 4, 3, 5, 7, 9], [1.0] * 8)
    c = clear_pay_as_bid(ob)
    assert c.accepted.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert c.payment.tolist() == [10, 8, 0, 0, -3, -5, 0, 0]
    assert c.clearing_price == 9.0  # (10 + 8) / 2
    assert c.info["sell_price"] == 4.0  # (3 + 5) / 2
    assert c.operator_surplus == 10.0 == c.welfare
    assert not c.surplus.any()  # every participant trades at its own limit


def test_volume_weighted_buy_price() -> None:
    # buys 2 @ 0.30 and 1 @ 0.22 (0.5 of it trades); sells 1.5 @ 0.10 and 1 @ 0.20
    ob = batch([1, 1, -1, -1], [0.30, 0.22, 0.10, 0.20], [2.0, 1.0, 1.5, 1.0])
    c = clear_pay_as_bid(ob)
    assert c.accepted.tolist() == [2.0, 0.5, 1.5, 1.0]
    assert c.clearing_price == pytest.approx((2.0 * 0.30 + 0.5 * 0.22) / 2.5)
    assert c.info["sell_price"] == pytest.approx((1.5 * 0.10 + 1.0 * 0.20) / 2.5)


def test_floor_and_cap_clip_the_prices_paid() -> None:
    # buy 1 @ 10 and sell 1 @ 1 trade; a cap of 6 limits what the buyer pays, a
    # floor of 2 what the seller receives; a sell @ 7 above the cap takes no part.
    ob = batch([1, -1, -1], [10.0, 1.0, 7.0], [1.0, 1.0, 1.0])
    c = clear_pay_as_bid(ob, price_floor=2.0, price_cap=6.0)
    assert c.accepted.tolist() == [1.0, 1.0, 0.0]
    assert c.payment.tolist() == [6.0, -2.0, 0.0]
    assert c.operator_surplus == 4.0


def test_no_trade() -> None:
    c = clear_pay_as_bid(batch([1, -1], [1.0, 2.0], [1.0, 1.0]))
    assert c.volume == 0
    assert math.isnan(c.clearing_price)
    assert math.isnan(c.info["sell_price"])
    assert not c.payment.any()
    assert clear_pay_as_bid(batch(np.zeros(0, dtype=int), np.zeros(0), np.zeros(0))).volume == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [({"tie_break": "lottery"}, "tie_break"), ({"price_floor": math.nan}, "price_floor"),
     ({"price_floor": 3.0, "price_cap": 2.0}, "price_floor"), ({"price_rule": "k"}, "price_rule")],
)
def test_bad_options(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        te.clear(batch([1, -1], [2.0, 1.0], [1.0, 1.0]), "pay_as_bid", **options)
    assert err.value.field == field


def test_input_never_mutated() -> None:
    rng = np.random.default_rng(2)
    ob = batch(rng.choice([1, -1], 500), rng.normal(0, 1, 500), rng.uniform(0.1, 2, 500))
    before = {name: getattr(ob, name).copy() for name in ("id", "side", "price", "quantity")}
    clear_pay_as_bid(ob, tie_break="time", price_floor=-0.5, price_cap=0.5)
    for name, values in before.items():
        assert np.array_equal(getattr(ob, name), values)


def test_same_allocation_as_uniform_on_random_batches() -> None:
    rng = np.random.default_rng(9)
    for case in range(400):
        n = int(rng.integers(0, 300))
        price = rng.integers(-4, 5, n) / 2.0 if case % 2 else rng.normal(0, 1, n)
        ob = batch(rng.choice([1, -1], n), price, rng.integers(1, 9, n) / 4.0,
                   rng.integers(0, 4, n).astype(float))
        tie = ("pro_rata", "time")[case % 2]
        pab, uni = clear_pay_as_bid(ob, tie_break=tie), clear_uniform(ob, tie_break=tie)
        np.testing.assert_array_equal(pab.accepted, uni.accepted)
        assert pab.volume == uni.volume


@st.composite
def order_batches(draw: st.DrawFn) -> OrderBatch:
    n = draw(st.integers(0, 25))
    side = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    price = draw(st.lists(st.one_of(st.integers(-5, 5).map(float), st.floats(-100, 100)),
                          min_size=n, max_size=n))
    quantity = draw(st.lists(st.integers(1, 40).map(lambda x: x / 8), min_size=n, max_size=n))
    return batch(np.array(side, dtype=int), np.array(price, dtype=float),
                 np.array(quantity, dtype=float))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ob=order_batches(), tie=st.sampled_from(["pro_rata", "time"]))
def test_invariants(ob: OrderBatch, tie: str) -> None:
    c = clear_pay_as_bid(ob, tie_break=tie)  # type: ignore[arg-type]
    uni = clear_uniform(ob, tie_break=tie)  # type: ignore[arg-type]
    is_buy = ob.side == BUY
    traded = c.accepted > 0
    assert np.all(c.accepted >= 0)
    assert np.all(c.accepted <= ob.quantity)
    assert c.accepted[is_buy].sum() == pytest.approx(c.accepted[~is_buy].sum(), abs=1e-9)
    assert c.volume == pytest.approx(uni.volume, abs=1e-12)
    np.testing.assert_array_equal(c.price[traded], ob.price[traded])  # own limit price
    assert np.all(np.isnan(c.price[~traded]))
    # nobody trades at a price worse than its limit; the gain from trade stays
    # with the operator
    assert np.allclose(c.surplus, 0.0, atol=1e-9)
    assert c.operator_surplus == pytest.approx(c.welfare, rel=1e-9, abs=1e-9)
    assert c.operator_surplus >= -1e-9
    if c.volume > 0:
        bids = ob.price[traded & is_buy]
        slack = 1e-12 * max(1.0, float(np.abs(bids).max()))  # the average, up to rounding
        assert bids.min() - slack <= c.clearing_price <= bids.max() + slack
