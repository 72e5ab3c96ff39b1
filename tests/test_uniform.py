"""Uniform-price double auction: hand-worked cases, a naive sorted reference,
an LP for the welfare-maximal volume, invariants under hypothesis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import transactive as te
from transactive.errors import InputError
from transactive.markets._curves import cross
from transactive.markets.uniform import PRICE_RULES, clear_uniform
from transactive.orders import BUY, SELL, OrderBatch

RULES = [(rule, k) for rule in PRICE_RULES for k in ((0.0, 0.3, 1.0) if rule == "k" else (0.5,))]
TIES = ["pro_rata", "time"]


def batch(side: Any, price: Any, quantity: Any, time: Any = None) -> OrderBatch:
    n = len(price)
    return OrderBatch(id=np.arange(n), participant=np.arange(n) % 5, side=side, price=price,
                      quantity=quantity, time=time)


# --------------------------------------------------------------------- naive reference
def naive(orders: OrderBatch, price_rule: str = "midpoint", k: float = 0.5,
          tie_break: str = "pro_rata", price_floor: float | None = None,
          price_cap: float | None = None) -> tuple[npt.NDArray[np.float64], float]:
    """Sorted, order-by-order reference: sort the buys by price (highest first)
    and the sells (lowest first), then time and row, and walk both lists,
    trading while bid >= ask. That is the time-priority allocation; for pro
    rata the partly traded price level is shared again in proportion."""
    p, q, side = orders.price.tolist(), orders.quantity.tolist(), orders.side.tolist()
    time = orders.time.tolist()
    n = len(p)
    live = [not ((side[i] == BUY and price_floor is not None and p[i] < price_floor)
                 or (side[i] != BUY and price_cap is not None and p[i] > price_cap))
            for i in range(n)]
    buys = sorted((i for i in range(n) if live[i] and side[i] == BUY),
                  key=lambda i: (-p[i], time[i], i))
    sells = sorted((i for i in range(n) if live[i] and side[i] != BUY),
                   key=lambda i: (p[i], time[i], i))
    accepted = np.zeros(n)
    i = j = 0
    rest_b = q[buys[0]] if buys else 0.0
    rest_s = q[sells[0]] if sells else 0.0
    while i < len(buys) and j < len(sells) and p[buys[i]] >= p[sells[j]]:
        x = min(rest_b, rest_s)
        accepted[buys[i]] += x
        accepted[sells[j]] += x
        rest_b -= x
        rest_s -= x
        if rest_b <= 1e-12 * q[buys[i]]:  # this buy is filled
            accepted[buys[i]] = q[buys[i]]
            i += 1
            rest_b = q[buys[i]] if i < len(buys) else 0.0
        if rest_s <= 1e-12 * q[sells[j]]:
            accepted[sells[j]] = q[sells[j]]
            j += 1
            rest_s = q[sells[j]] if j < len(sells) else 0.0
    levels: dict[tuple[int, float], list[int]] = {}
    for r in buys + sells:
        levels.setdefault((side[r], p[r]), []).append(r)
    traded_b: dict[float, float] = {}
    traded_s: dict[float, float] = {}
    unfilled: set[tuple[int, float]] = set()  # levels where some quantity does not trade
    for (s, price), rows in levels.items():
        got = float(sum(accepted[r] for r in rows))
        (traded_b if s == BUY else traded_s)[price] = got
        total = sum(q[r] for r in rows)
        if got < total * (1 - 1e-12):
            unfilled.add((s, price))
        if tie_break == "pro_rata" and 0 < got < total * (1 - 1e-12):
            for r in rows:
                accepted[r] = q[r] * (got / total)
    if not any(traded_b.values()):
        return accepted, math.nan
    # the unit auction's [max(s_k, b_(k+1)), min(b_k, s_(k+1))]: the (k+1)-th unit of
    # a side is its best unit left over, at a partly filled level if there is one
    last_bid = min(lv for lv, t in traded_b.items() if t > 0)
    last_ask = max(lv for lv, t in traded_s.items() if t > 0)
    rej_b = sorted((lv for lv in traded_b if (BUY, lv) in unfilled), reverse=True)
    rej_s = sorted(lv for lv in traded_s if (SELL, lv) in unfilled)
    p_low = max([last_ask, *rej_b[:1]])
    p_high = min([last_bid, *rej_s[:1]])
    weight = {"midpoint": 0.5, "k": k, "marginal_bid": 1.0, "marginal_ask": 0.0}[price_rule]
    width = p_high - p_low
    price = p_low + weight * width if math.isfinite(width) else (
        (1 - weight) * p_low + weight * p_high)
    price = min(max(price, p_low), p_high)
    if price_floor is not None:
        price = max(price, price_floor)
    if price_cap is not None:
        price = min(price, price_cap)
    return accepted, price


def random_batch(rng: np.random.Generator, n: int | None = None) -> OrderBatch:
    """Small batches mixing ties (integer price grids, dyadic quantities that sum
    exactly), continuous values, negative prices and repeated times."""
    n = int(rng.integers(0, 40)) if n is None else n
    share = rng.uniform(0.2, 0.8)
    side = rng.choice([1, -1], n, p=[share, 1 - share])
    mode = rng.integers(0, 4)
    if mode == 0:
        price = rng.integers(-3, 4, n).astype(float)
    elif mode == 1:
        price = np.round(rng.normal(0.2, 0.1, n), 2)
    elif mode == 2:
        price = rng.normal(0.0, 1.0, n)
    else:
        price = rng.choice([-1.5, 0.0, 0.25, 0.5, 7.0], n)
    quantity = rng.integers(1, 16, n) / 4.0 if rng.random() < 0.6 else rng.lognormal(0.0, 1.0, n)
    time = rng.integers(0, 5, n).astype(float) if rng.random() < 0.5 else None
    return batch(side, price, quantity, time)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def agree(orders: OrderBatch, **options: Any) -> None:
    got = clear_uniform(orders, **options)
    ref_acc, ref_price = naive(orders, **options)
    scale = max(float(orders.quantity.sum()), 1.0)
    np.testing.assert_allclose(got.accepted, ref_acc, rtol=1e-9, atol=1e-12 * scale)
    assert same(got.clearing_price, ref_price), (got.clearing_price, ref_price, options)


# --------------------------------------------------------------------- hand-worked cases
def test_registry_doctest_case() -> None:
    # buy 2 @ 0.30, sell 1.5 @ 0.10: the buy is the long side and partly filled. At
    # any price below 0.30 the buyer wants all 2 units and only 1.5 are offered, so
    # 0.30 is the only price at which 1.5 units clear: [p_low, p_high] = [0.30, 0.30]
    # (in unit terms b_k = b_(k+1) = 0.30: the buyer's next unit is left over).
    ob = batch(["buy", "sell"], [0.30, 0.10], [2.0, 1.5])
    c = te.clear(ob, "uniform")
    assert c.volume == 1.5
    assert c.accepted.tolist() == [1.5, 1.5]
    assert (c.info["p_low"], c.info["p_high"]) == (0.30, 0.30)
    for rule in PRICE_RULES:  # a one-point interval: every rule gives its price
        assert clear_uniform(ob, price_rule=rule).clearing_price == 0.30
    assert c.payment.tolist() == pytest.approx([0.45, -0.45])
    assert c.operator_surplus == pytest.approx(0.0)


def test_issue_8_partly_filled_ask_level_sets_the_price() -> None:
    # Issue 8's case: buys 5 @ 250, 4 @ 150, 3 @ 350; sells 5 @ 200, 4 @ 100, 3 @ 300.
    # Demand above 200 is 3 + 5 = 8; supply below 200 is 4, at 200 it is 4 + 5 = 9.
    # 8 units trade: the sells at 200 are partly filled (4 of 5). At p in (200, 250)
    # 8 are demanded and 9 offered, at p < 200 only 4 are offered: p = 200 alone.
    ob = batch([1, 1, 1, -1, -1, -1], [250, 150, 350, 200, 100, 300], [5, 4, 3, 5, 4, 3])
    for rule, k in RULES:
        c = clear_uniform(ob, price_rule=rule, k=k)  # type: ignore[arg-type]
        assert c.accepted.tolist() == [5, 0, 3, 4, 4, 0]
        assert (c.info["p_low"], c.info["p_high"], c.clearing_price) == (200, 200, 200)
    # one more ask unit at 200 is filled by one more bid unit at 250: the 200 level
    # fills exactly, the levels beside it bound the interval, [200, 250]
    full = batch([1, 1, 1, -1, -1, -1], [250, 150, 350, 200, 100, 300], [6, 4, 3, 5, 4, 3])
    c = clear_uniform(full)
    assert (c.info["p_low"], c.info["p_high"], c.clearing_price) == (200, 250, 225)


def test_textbook_unit_case() -> None:
    # bids 10, 8, 6, 4; asks 3, 5, 7, 9 (one unit each): two trades (10-3, 8-5);
    # b_2 = 8, s_2 = 5, b_3 = 6, s_3 = 7 -> [max(5, 6), min(8, 7)] = [6, 7].
    ob = batch([1, 1, 1, 1, -1, -1, -1, -1], [10, 8, 6, 4, 3, 5, 7, 9], [1.0] * 8)
    expected = {"midpoint": 6.5, "marginal_ask": 6.0, "marginal_bid": 7.0}
    for rule, price in expected.items():
        c = clear_uniform(ob, price_rule=rule)  # type: ignore[arg-type]
        assert c.accepted.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
        assert c.clearing_price == price
    assert clear_uniform(ob, price_rule="k", k=0.25).clearing_price == 6.25
    assert clear_uniform(ob, price_rule="k", k=1.0).clearing_price == 7.0  # sellers' end
    c = clear_uniform(ob)
    assert (c.info["p_low"], c.info["p_high"], c.info["k"]) == (6.0, 7.0, 0.5)
    assert c.welfare == (10 - 3) + (8 - 5)
    assert c.surplus.tolist() == [3.5, 1.5, 0, 0, 3.5, 1.5, 0, 0]


def test_pro_rata_and_time_at_the_marginal_level() -> None:
    # sells 3 @ 1 and 1 @ 2; buys at 5: 1 + 3 (rows 1, 2 at time 1, 0); buys at 0.5: 2.
    # D(2) = 4 = S(2): levels 1, 2, 5 with E(1) = 4 - 3 = 1, E(2) = 0, E(5) = 4 - 4 = 0
    # -> p_minus = 5 and everything at or above it trades: volume 4, nothing rationed.
    ob = batch([-1, 1, 1, -1, 1], [1, 5, 5, 2, 0.5], [3, 1, 3, 1, 2], time=[0, 1, 0, 2, 3])
    c = clear_uniform(ob)
    assert c.accepted.tolist() == [3, 1, 3, 1, 0]
    # last bid 5, last ask 2, first rejected bid 0.5 -> [2, 5]
    assert (c.info["p_low"], c.info["p_high"]) == (2.0, 5.0)
    # add a sell of 2 @ 1.5: supply 6 at 2 for demand 4: the sells at 2 are out, the
    # sells at 1 and 1.5 (5 units) exceed demand 4 -> the 1.5 level is rationed to 1.
    ob2 = batch([-1, 1, 1, -1, 1, -1, -1], [1, 5, 5, 2, 0.5, 1.5, 1.5], [3, 1, 3, 1, 2, 2, 2],
                time=[0, 1, 0, 2, 3, 5, 4])
    pro = clear_uniform(ob2)
    assert pro.accepted.tolist() == [3, 1, 3, 0, 0, 0.5, 0.5]
    by_time = clear_uniform(ob2, tie_break="time")  # row 6 came first (time 4)
    assert by_time.accepted.tolist() == [3, 1, 3, 0, 0, 0, 1]
    # the asks at 1.5 are partly filled (1 of 4): at any price above 1.5 they would
    # offer all 4, 3 + 4 = 7 > 4 demanded; below it only 3 are offered. So the price
    # is 1.5 alone (last ask and first unit left over both at 1.5), for both tie rules
    for c in (pro, by_time):
        assert (c.info["p_low"], c.info["p_high"], c.clearing_price) == (1.5, 1.5, 1.5)


def test_time_ties_break_by_row() -> None:
    ob = batch([1, 1, 1, -1], [4, 4, 4, 1], [1, 1, 1, 1.5], time=[7, 3, 3, 0])
    assert clear_uniform(ob, tie_break="time").accepted.tolist() == [0, 1, 0.5, 1.5]
    assert clear_uniform(ob).accepted.tolist() == [0.5, 0.5, 0.5, 1.5]


def test_zero_surplus_units_trade_and_negative_prices() -> None:
    # bid -2 meets ask -2: a zero-surplus trade that still happens, at -2.
    c = clear_uniform(batch([1, -1, -1], [-2.0, -2.0, -1.0], [1.0, 0.5, 1.0]))
    assert c.accepted.tolist() == [0.5, 0.5, 0.0]
    assert c.clearing_price == -2.0  # [max(-2), min(-2, -1)]
    assert c.payment.tolist() == [-1.0, 1.0, 0.0]  # the buyer is paid, the seller pays


@pytest.mark.parametrize(
    ("side", "price", "quantity"),
    [([], [], []), ([1, 1], [3, 4], [1, 1]), ([-1], [1], [2]), ([1, -1], [1.0, 1.5], [1, 1])],
    ids=["empty", "buys-only", "sells-only", "no-overlap"],
)
def test_no_trade(side: list[int], price: list[float], quantity: list[float]) -> None:
    c = clear_uniform(batch(np.array(side, dtype=int), np.array(price, dtype=float),
                            np.array(quantity, dtype=float)))
    assert c.volume == 0
    assert math.isnan(c.clearing_price)
    assert math.isnan(c.info["p_low"])
    assert math.isnan(c.info["p_high"])
    assert not c.accepted.any()
    assert not c.payment.any()


def test_floor_and_cap() -> None:
    ob = batch([1, 1, -1, -1], [10.0, 3.0, 1.0, 6.0], [1.0, 1.0, 1.0, 1.0])
    # open market: bid 10 - ask 1 trades; first rejected bid 3, ask 6 -> [3, 6]
    assert clear_uniform(ob).clearing_price == 4.5
    # floor 4 drops the bid at 3: [max(1), min(10, 6)] = [1, 6] -> 3.5, clipped to 4
    c = clear_uniform(ob, price_floor=4.0)
    assert (c.info["p_low"], c.info["p_high"], c.clearing_price) == (1.0, 6.0, 4.0)
    # cap 2 drops the ask at 6: [3, 10] -> 6.5, clipped to 2
    c = clear_uniform(ob, price_cap=2.0)
    assert (c.info["p_low"], c.info["p_high"], c.clearing_price) == (3.0, 10.0, 2.0)
    # a floor above every bid: nothing trades
    assert clear_uniform(ob, price_floor=11.0).volume == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [({"k": 1.5}, "k"), ({"k": -0.1}, "k"), ({"k": math.nan}, "k"), ({"k": "half"}, "k"),
     ({"price_rule": "vwap"}, "price_rule"), ({"tie_break": "random"}, "tie_break"),
     ({"price_floor": math.nan}, "price_floor"), ({"price_cap": math.inf}, "price_cap"),
     ({"price_floor": 2.0, "price_cap": 1.0}, "price_floor"), ({"price_cap": "1"}, "price_cap")],
)
def test_bad_options(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        clear_uniform(batch([1, -1], [2.0, 1.0], [1.0, 1.0]), **options)
    assert err.value.field == field


def test_unknown_option_and_wrong_input_via_registry() -> None:
    ob = batch([1, -1], [2.0, 1.0], [1.0, 1.0])
    with pytest.raises(InputError, match="price_rul"):
        te.clear(ob, "uniform", price_rul="k")
    with pytest.raises(InputError) as err:
        clear_uniform(ob.to_frame())  # type: ignore[arg-type]
    assert err.value.field == "orders"


def test_input_never_mutated() -> None:
    ob = random_batch(np.random.default_rng(3), 300)
    before = {name: getattr(ob, name).copy() for name in ("id", "side", "price", "quantity")}
    for rule, k in RULES:
        clear_uniform(ob, price_rule=rule, k=k, tie_break="time", price_floor=-1.0)  # type: ignore[arg-type]
    for name, values in before.items():
        assert np.array_equal(getattr(ob, name), values)
        assert not getattr(ob, name).flags.writeable


# --------------------------------------------------------------------- reference checks
def test_agrees_with_naive_reference_on_thousands_of_cases() -> None:
    rng = np.random.default_rng(20260601)
    for case in range(1500):
        ob = random_batch(rng)
        rule, k = RULES[case % len(RULES)]
        tie = TIES[case % 2]
        bounds: dict[str, float] = {}
        if case % 7 == 0 and len(ob):
            bounds = {"price_floor": float(np.quantile(ob.price, 0.3)),
                      "price_cap": float(np.quantile(ob.price, 0.8))}
        agree(ob, price_rule=rule, k=k, tie_break=tie, **bounds)


def test_search_rounds_agree_with_one_sort() -> None:
    # Tiny buckets and a tiny final set force many bucketing rounds, windows at
    # the edges and levels found in earlier rounds; the answer must not change.
    rng = np.random.default_rng(7)
    for case in range(800):
        ob = random_batch(rng, int(rng.integers(1, 120)))
        is_buy = ob.side == BUY
        tie = TIES[case % 2]
        ref = cross(ob.price, ob.quantity, is_buy, np.asarray(ob.time), tie_break=tie)
        assert len(ob) <= 2048  # one sort: the reference
        for n_buckets, final_size in ((2, 1), (3, 2), (64, 4)):
            got = cross(ob.price, ob.quantity, is_buy, np.asarray(ob.time),
                        tie_break=tie, n_buckets=n_buckets, final_size=final_size)
            np.testing.assert_allclose(got.accepted, ref.accepted, rtol=1e-9, atol=1e-12)
            for name in ("p_low", "p_high", "last_bid", "last_ask", "first_rejected_bid",
                         "first_rejected_ask"):
                assert same(getattr(got, name), getattr(ref, name)), (name, n_buckets)


def test_large_batches_agree_with_naive_reference() -> None:
    rng = np.random.default_rng(11)
    for n in (5_000, 20_000):
        for grid in (None, 0.01):
            price = rng.normal(0.25, 0.05, n)
            if grid:
                price = np.round(price / grid) * grid
            ob = batch(rng.choice([1, -1], n), price, rng.integers(1, 40, n) / 8.0,
                       rng.integers(0, 50, n).astype(float))
            for tie in TIES:
                agree(ob, tie_break=tie)


def test_extreme_price_ranges() -> None:
    # spans that overflow a float, a cluster with far outliers, subnormal gaps
    ob = batch([1, -1, 1, -1, 1, -1], [1e308, -1e308, 0.5, 0.4, 0.5, 0.5], [1, 1, 2, 1, 1, 3])
    agree(ob)
    is_buy = ob.side == BUY
    ref = cross(ob.price, ob.quantity, is_buy, np.asarray(ob.time))
    got = cross(ob.price, ob.quantity, is_buy, np.asarray(ob.time), n_buckets=2,
                final_size=1)
    np.testing.assert_array_equal(got.accepted, ref.accepted)
    tiny = batch([1, -1, 1, -1, 1], [5e-324, 0.0, 1e-323, 5e-324, 0.0], [1, 2, 1, 1, 1])
    agree(tiny, price_rule="marginal_bid")
    is_buy = tiny.side == BUY
    ref = cross(tiny.price, tiny.quantity, is_buy, np.asarray(tiny.time))
    got = cross(tiny.price, tiny.quantity, is_buy, np.asarray(tiny.time), n_buckets=2,
                final_size=1)
    np.testing.assert_array_equal(got.accepted, ref.accepted)
    assert (got.p_low, got.p_high) == (ref.p_low, ref.p_high)


def lp_volume(orders: OrderBatch) -> tuple[float, float]:
    """Welfare-maximal welfare and the largest volume achieving it, by two LPs."""
    n = len(orders)
    signed = orders.side.astype(float)
    bounds = list(zip(np.zeros(n), orders.quantity, strict=True))
    eq = signed[None, :]
    first = linprog(-signed * orders.price, A_eq=eq, b_eq=[0.0], bounds=bounds, method="highs")
    assert first.status == 0
    best = -first.fun
    slack = 1e-9 * max(1.0, abs(best))
    second = linprog(-(signed > 0).astype(float), A_ub=(-signed * orders.price)[None, :],
                     b_ub=[-best + slack], A_eq=eq, b_eq=[0.0], bounds=bounds, method="highs")
    assert second.status == 0
    return best, -second.fun


def test_volume_is_welfare_maximal_lp() -> None:
    rng = np.random.default_rng(5)
    for _ in range(150):
        ob = random_batch(rng, int(rng.integers(2, 25)))
        c = clear_uniform(ob)
        welfare, volume = lp_volume(ob)
        assert c.welfare == pytest.approx(welfare, rel=1e-7, abs=1e-7)
        assert c.volume == pytest.approx(volume, rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------- invariants
@st.composite
def order_batches(draw: st.DrawFn) -> OrderBatch:
    n = draw(st.integers(0, 25))
    side = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    grid = draw(st.booleans())
    if grid:
        price = draw(st.lists(st.integers(-5, 5).map(float), min_size=n, max_size=n))
    else:
        price = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n))
    quantity = draw(st.lists(st.one_of(st.integers(1, 64).map(lambda x: x / 8),
                                       st.floats(1e-3, 1e3)), min_size=n, max_size=n))
    time = draw(st.none() | st.lists(st.integers(0, 3).map(float), min_size=n, max_size=n))
    return batch(np.array(side, dtype=int), np.array(price, dtype=float),
                 np.array(quantity, dtype=float), time)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ob=order_batches(), rule=st.sampled_from(RULES), tie=st.sampled_from(TIES))
def test_invariants(ob: OrderBatch, rule: tuple[str, float], tie: str) -> None:
    c = clear_uniform(ob, price_rule=rule[0], k=rule[1], tie_break=tie)  # type: ignore[arg-type]
    is_buy = ob.side == BUY
    scale = max(float(ob.quantity.sum()), 1.0)
    assert np.all(c.accepted >= 0)
    assert np.all(c.accepted <= ob.quantity)
    assert c.accepted[is_buy].sum() == pytest.approx(c.accepted[~is_buy].sum(), abs=1e-9 * scale)
    traded = c.accepted > 0
    assert np.all(c.price[traded & is_buy] <= ob.price[traded & is_buy])  # buyers: at most bid
    assert np.all(c.price[traded & ~is_buy] >= ob.price[traded & ~is_buy])  # sellers: at least ask
    assert np.all(c.surplus >= -1e-9 * scale * max(1.0, float(np.abs(ob.price).max(initial=0))))
    if c.volume > 0:
        assert c.info["p_low"] <= c.clearing_price <= c.info["p_high"]
        assert c.operator_surplus == pytest.approx(
            0.0, abs=1e-9 * scale * max(1.0, abs(c.clearing_price)))
    agree(ob, price_rule=rule[0], k=rule[1], tie_break=tie)
