"""Automated market makers: invariants, exact accounting, quotes, liquidity,
the ``"amm"`` mechanism and arbitrage to the utility's price band.

Reserves after swaps and the energy a limit order trades are checked against
references written from the invariants alone (closed forms for constant
product and constant sum, bisection for StableSwap), never the pool's own code.

Accounting claims (no energy or money created, the constant product never
falls) are checked exactly, with ``fractions.Fraction`` over the stored
floats; the StableSwap level comes from Newton's method and is compared with
a relative tolerance of 1e-12.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transactive as te
from transactive.errors import InputError
from transactive.markets.amm import Pool, Position, arbitrage_to_band

INVARIANTS = ("constant_product", "constant_sum", "stableswap")
SLIVER = 1e-9  # share of a reserve a constant sum pool keeps from limit orders (module docs)


# --------------------------------------------------------------------- references
# Written from the invariants alone, in plain floats and bisection: nothing here
# calls the pool's own curve code.
def bisect(f, lo: float, hi: float) -> float:
    """The root of an increasing ``f`` on ``[lo, hi]`` (``f(lo) <= 0 <= f(hi)``)."""
    for _ in range(2000):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def stableswap_d(a: float, u: float, v: float) -> float:
    """``D`` with ``4A(u + v) + D = 4AD + D^3 / (4uv)``: the excess ``D^3 / (4uv) +
    (4A - 1) D - 4A(u + v)`` rises from ``-4A(u + v)`` at 0 to ``>= 0`` at ``u + v``."""
    return bisect(lambda d: d**3 / (4 * u * v) + (4 * a - 1) * d - 4 * a * (u + v), 0.0, u + v)


def stableswap_v(a: float, d: float, u: float) -> float:
    """The ``v`` on the level-``d`` curve at ``u`` (the left side grows with ``v``)."""
    def g(v: float) -> float:
        return 4 * a * (u + v) + d - 4 * a * d - d**3 / (4 * u * v)
    hi = d
    while g(hi) < 0:
        hi *= 2
    return bisect(g, 0.0, hi)


def stableswap_price(a: float, d: float, u: float, v: float) -> float:
    """``-dv/du`` on the curve, by implicit differentiation of
    ``4A(u + v) - D^3 / (4uv)`` (constant along it)."""
    return (4 * a + d**3 / (4 * u * u * v)) / (4 * a + d**3 / (4 * u * v * v))


def reference_swap(pool: Pool, kind: str, amount: float) -> tuple[float, float]:
    """Reserves ``(energy_kwh, money)`` after a swap, from the invariant in closed form
    (the fee stays in the pool: only ``1 - fee`` of the input moves along the curve)."""
    x, y, f, peg = pool.energy_kwh, pool.money, pool.fee, pool.peg_price_per_kwh
    a = pool.amplification
    if pool.invariant == "constant_product":
        if kind == "sell_energy":
            return x + amount, x * y / (x + amount * (1 - f))
        if kind == "spend_money":
            return x * y / (y + amount * (1 - f)), y + amount
        return x - amount, y + (x * y / (x - amount) - y) / (1 - f)  # buy_energy
    if pool.invariant == "constant_sum":
        if kind == "sell_energy":
            return x + amount, y - amount * (1 - f) * peg
        if kind == "spend_money":
            return x - amount * (1 - f) / peg, y + amount
        return x - amount, y + amount * peg / (1 - f)
    d = stableswap_d(a, x * peg, y)
    if kind == "sell_energy":
        return x + amount, stableswap_v(a, d, (x + amount * (1 - f)) * peg)
    if kind == "spend_money":
        return stableswap_v(a, d, y + amount * (1 - f)) / peg, y + amount
    return x - amount, y + (stableswap_v(a, d, (x - amount) * peg) - y) / (1 - f)


def reference_limit_kwh(pool: Pool, side: int, limit: float, quantity: float) -> float:
    """Energy a limit order trades by the marginal rule: buy while the pool's price
    over ``1 - fee`` is at most ``limit``, sell while its price times ``1 - fee`` is
    at least ``limit``; energy sold counts the fee, so it is the curve's move over
    ``1 - fee``. Closed form for constant product, bisection for StableSwap."""
    x, y, keep, peg = pool.energy_kwh, pool.money, 1 - pool.fee, pool.peg_price_per_kwh
    target = limit * keep if side == 1 else limit / keep  # the pool price where it stops
    if pool.invariant == "constant_sum":  # one price: all or nothing, bar the sliver
        if side == 1:
            return min(quantity, x * (1 - SLIVER)) if peg < target else 0.0
        return min(quantity, y * (1 - SLIVER) / (peg * keep)) if peg > target else 0.0
    if pool.invariant == "constant_product":
        x_stop = math.sqrt(x * y / target)
    else:
        a = pool.amplification
        d = stableswap_d(a, x * peg, y)

        def price_below(log_u: float) -> float:  # rises as u (the energy reserve) falls
            u = math.exp(log_u)
            return target / peg - stableswap_price(a, d, u, stableswap_v(a, d, u))
        x_stop = math.exp(bisect(price_below, math.log(d) - 40, math.log(d) + 40)) / peg
    room = x - x_stop if side == 1 else (x_stop - x) / keep
    return max(min(quantity, room), 0.0)


def exact_level(pool: Pool) -> F:
    """The invariant of the stored reserves, exactly where it is a polynomial."""
    x, y = F(pool.energy_kwh), F(pool.money)
    if pool.invariant == "constant_product":
        return x * y
    return x * F(pool.peg_price_per_kwh) + y


def assert_grew(before: Pool, after: Pool) -> None:
    if before.invariant == "stableswap":
        assert after.level >= before.level * (1 - 1e-12)
    else:
        assert exact_level(after) >= exact_level(before)


def assert_conserved(before: Pool, after: Pool, receipt) -> None:
    """Reserves plus what the trader got never exceed reserves plus what it gave."""
    e_in, e_out = (receipt.energy_kwh, 0.0) if receipt.side == -1 else (0.0, receipt.energy_kwh)
    m_in, m_out = (receipt.money, 0.0) if receipt.side == 1 else (0.0, receipt.money)
    assert F(after.energy_kwh) + F(e_out) <= F(before.energy_kwh) + F(e_in)
    assert F(after.money) + F(m_out) <= F(before.money) + F(m_in)
    assert after.energy_kwh > 0
    assert after.money > 0


# --------------------------------------------------------------------- by hand
def test_constant_product_swaps_by_hand():
    pool = Pool.create(100.0, 25.0, fee=0.003)
    # buy 10 kWh: x -> 90, y must reach 2500/90; the trader pays (2500/90 - 25)/0.997
    after, r = pool.buy(10.0)
    assert r.money == pytest.approx((2500 / 90 - 25) / 0.997, rel=1e-13)
    assert r.fee == pytest.approx(r.money * 0.003, rel=1e-12)
    assert after.energy_kwh == 90.0
    # sell 10 kWh: 9.97 enters the curve, 25 - 2500/109.97 comes out
    after, r = pool.swap("energy", 10.0)
    assert r.money == pytest.approx(25 - 2500 / 109.97, rel=1e-13)
    assert after.energy_kwh == 110.0  # the fee stays in the pool
    # spend 5 money: 4.985 enters the curve, 100 - 2500/29.985 kWh comes out
    after, r = pool.swap("money", 5.0)
    assert r.energy_kwh == pytest.approx(100 - 2500 / 29.985, rel=1e-13)
    assert r.side == 1
    assert r.fee_asset == "money"


def test_constant_sum_trades_at_the_peg_and_stableswap_at_it_when_balanced():
    cs = Pool.create(100.0, 20.0, invariant="constant_sum", fee=0.0)
    assert cs.price_per_kwh == pytest.approx(0.2)
    _, r = cs.buy(60.0)
    assert r.average_price_per_kwh == pytest.approx(0.2, rel=1e-13)
    ss = Pool.create(100.0, 20.0, invariant="stableswap", amplification=50.0, fee=0.0)
    assert ss.price_per_kwh == pytest.approx(0.2, rel=1e-12)
    # near the peg a StableSwap pool is far deeper than a constant product one
    cp = Pool.create(100.0, 20.0, fee=0.0)
    assert ss.quote_buy(20.0).price_impact < cp.quote_buy(20.0).price_impact / 10


def test_stableswap_level_solves_the_invariant():
    for a in (0.5, 10.0, 1000.0):
        pool = Pool.create(300.0, 20.0, invariant="stableswap", amplification=a)
        u, v, d = F(300.0) * F(pool.peg_price_per_kwh), F(20.0), F(pool.level)
        residual = 4 * F(a) * (u + v) + d - 4 * F(a) * d - d**3 / (4 * u * v)
        assert abs(float(residual)) <= 1e-12 * float(d) * (4 * a + 1)
    # a tiny amplification behaves like constant product, a huge one like constant sum
    moved = dict(energy_kwh=300.0, money=20.0, peg_price_per_kwh=0.2, shares=1.0, fee=0.0)
    flat = Pool(invariant="stableswap", amplification=1e6, **moved)
    curved = Pool(invariant="stableswap", amplification=1e-6, **moved)
    assert flat.price_per_kwh == pytest.approx(0.2, rel=1e-3)
    assert curved.price_per_kwh == pytest.approx(20.0 / 300.0, rel=1e-3)


def test_impermanent_loss_closed_form():
    # no fee, constant product: a price move by r loses 2 sqrt(r) / (1 + r) - 1
    pool = Pool.create(100.0, 100.0, fee=0.0)
    founder = Position(pool.shares, 100.0, 100.0)
    assert pool.impermanent_loss(founder) == pytest.approx(0.0, abs=1e-12)
    for energy in (10.0, 30.0, 50.0, 75.0):
        moved, _ = pool.buy(energy)
        r = moved.price_per_kwh / pool.price_per_kwh
        assert moved.impermanent_loss(founder) == pytest.approx(
            2 * math.sqrt(r) / (1 + r) - 1, abs=1e-10)


# --------------------------------------------------------------------- properties
operation = st.tuples(
    st.sampled_from(["sell_energy", "spend_money", "buy_energy", "limit_buy", "limit_sell"]),
    st.floats(0.0, 500.0),
    st.floats(0.01, 2.0),
)


@settings(max_examples=60, deadline=None)
@given(
    invariant=st.sampled_from(INVARIANTS),
    fee=st.sampled_from([0.0, 0.003, 0.05]),
    amplification=st.floats(0.1, 500.0),
    reserves=st.tuples(st.floats(1.0, 1e4), st.floats(1.0, 1e4)),
    ops=st.lists(operation, min_size=1, max_size=12),
)
def test_swap_sequences_keep_the_invariant_and_create_nothing(
    invariant, fee, amplification, reserves, ops
):
    pool = Pool.create(*reserves, invariant=invariant, fee=fee, amplification=amplification)
    for kind, amount, limit_factor in ops:
        before = pool
        try:
            if kind == "sell_energy":
                quoted = pool.quote("energy", amount)
                pool, receipt = pool.swap("energy", amount)
            elif kind == "spend_money":
                quoted = pool.quote("money", amount)
                pool, receipt = pool.swap("money", amount)
            elif kind == "buy_energy":
                quoted = pool.quote_buy(amount)
                pool, receipt = pool.buy(amount)
            else:
                side = 1 if kind == "limit_buy" else -1
                limit = pool.price_per_kwh * limit_factor
                expected = reference_limit_kwh(pool, side, limit, amount)
                pool, receipt = pool.limit_order(side, limit, amount)
                if receipt is None:
                    assert pool is before
                    # nothing, or a dust fill refused (its rounding passes the limit):
                    # dust in energy, or in the money it fetches at the limit, against
                    # the scale the pool rounds at (its reserves' value)
                    scale = before.energy_kwh * before.peg_price_per_kwh + before.money
                    assert (expected <= 1e-9 * max(before.energy_kwh, 1.0)
                            or expected * limit <= 1e-9 * max(scale, 1.0))
                    continue
                assert receipt.energy_kwh == pytest.approx(expected, rel=1e-7,
                                                           abs=1e-9 * before.energy_kwh)
                if side == 1:  # the marginal rule bounds the average price
                    assert receipt.average_price_per_kwh <= limit * (1 + 1e-9)
                else:
                    assert receipt.average_price_per_kwh >= limit * (1 - 1e-9)
                kind = "buy_energy" if side == 1 else "sell_energy"
                quoted = receipt
        except InputError:
            assert pool is before
            continue
        if quoted is not receipt:
            assert receipt == quoted  # the quote, asked first, is exactly what executes
        traded = receipt.money if kind == "spend_money" else receipt.energy_kwh
        x_ref, y_ref = reference_swap(before, kind, traded)
        scale = before.energy_kwh * before.peg_price_per_kwh + before.money
        assert pool.energy_kwh == pytest.approx(x_ref, rel=1e-9,
                                                abs=1e-11 * scale / before.peg_price_per_kwh)
        assert pool.money == pytest.approx(y_ref, rel=1e-9, abs=1e-11 * scale)
        # the money the trader paid (or got) is the pool's money change
        assert (receipt.money if receipt.side == 1 else -receipt.money) == pytest.approx(
            y_ref - before.money, rel=1e-9, abs=1e-11 * scale)
        assert_grew(before, pool)
        assert_conserved(before, pool, receipt)
        assert pool.shares == before.shares


@settings(max_examples=60, deadline=None)
@given(
    invariant=st.sampled_from(INVARIANTS),
    reserves=st.tuples(st.floats(0.5, 1e4), st.floats(0.5, 1e4)),
    fraction=st.floats(1e-6, 10.0),
    skew=st.floats(1.0, 3.0),
)
def test_deposit_then_withdraw_returns_the_deposit(invariant, reserves, fraction, skew):
    pool = Pool.create(*reserves, invariant=invariant)
    energy, money = reserves[0] * fraction, reserves[1] * fraction * skew  # money in excess
    joined, position = pool.deposit(energy, money)
    # the pool took the energy in full and money pro rata
    assert position.energy_kwh <= energy
    assert position.money <= money
    assert position.energy_kwh == pytest.approx(energy, rel=1e-12)
    assert position.money == pytest.approx(money / skew, rel=1e-12)
    left, out = joined.withdraw(position.shares)
    # back: never more than was taken, less only by rounding (relative 1e-12)
    assert out.energy_kwh <= position.energy_kwh
    assert out.money <= position.money
    assert out.energy_kwh == pytest.approx(position.energy_kwh, rel=1e-12)
    assert out.money == pytest.approx(position.money, rel=1e-12)
    assert left.shares == pytest.approx(pool.shares, rel=1e-12)
    assert F(left.energy_kwh) + F(out.energy_kwh) <= F(joined.energy_kwh)


def test_round_number_deposit_and_withdrawal_are_exact():
    pool = Pool.create(100.0, 50.0, fee=0.0)
    joined, position = pool.deposit(50.0, 25.0)
    assert (position.energy_kwh, position.money) == (50.0, 25.0)
    left, out = joined.withdraw(position.shares)
    assert (out.energy_kwh, out.money) == (50.0, 25.0)
    assert (left.energy_kwh, left.money) == (100.0, 50.0)


def test_fees_accrue_to_liquidity_providers():
    pool = Pool.create(1000.0, 250.0, fee=0.01)
    founder = Position(pool.shares, 1000.0, 250.0)
    traded = pool
    for _ in range(10):  # buy and sell back and forth
        traded, bought = traded.buy(50.0)
        traded, _ = traded.swap("energy", bought.energy_kwh)
    _, out = traded.withdraw(founder.shares)
    price = pool.price_per_kwh
    assert out.energy_kwh * price + out.money > 1000.0 * price + 250.0
    assert traded.impermanent_loss(founder, price_per_kwh=price) > 0  # fees beat holding


def test_emptied_pool_refuses_trades_and_reopens_on_deposit():
    pool = Pool.create(10.0, 5.0)
    empty, out = pool.withdraw(pool.shares)
    assert (out.energy_kwh, out.money) == (10.0, 5.0)
    assert empty.is_empty
    with pytest.raises(InputError, match="empty") as info:
        empty.quote("energy", 1.0)
    assert info.value.field == "pool"
    reopened, position = empty.deposit(4.0, 1.0)
    assert reopened.price_per_kwh == pytest.approx(0.25)
    assert position.shares == reopened.shares


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.swap("energy", -1.0), "amount"),
        (lambda p: p.swap("energy", float("nan")), "amount"),
        (lambda p: p.swap("coal", 1.0), "give"),
        (lambda p: p.swap("energy", 10.0, min_out=100.0), "min_out"),
        (lambda p: p.buy(10.0, max_money=0.01), "max_money"),
        (lambda p: p.buy(100.0), "energy_kwh"),  # the whole reserve
        (lambda p: p.buy(-2.0), "energy_kwh"),
        (lambda p: p.deposit(0.0, 1.0), "energy_kwh"),
        (lambda p: p.deposit(1.0, 1.0, min_shares=1e9), "min_shares"),
        (lambda p: p.withdraw(p.shares * 2), "shares"),
        (lambda p: p.withdraw(p.shares / 2, min_money=1e9), "shares"),
        (lambda p: p.limit_order(0, 1.0, 1.0), "side"),
        (lambda p: p.limit_order(-1, -1.0, math.inf), "energy_kwh"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(call, field):
    pool = Pool.create(100.0, 25.0)
    snapshot = (pool.energy_kwh, pool.money, pool.shares)
    with pytest.raises(InputError) as info:
        call(pool)
    assert info.value.field == field
    assert (pool.energy_kwh, pool.money, pool.shares) == snapshot


def test_constant_sum_cannot_be_drained():
    pool = Pool.create(10.0, 2.0, invariant="constant_sum", fee=0.0)
    with pytest.raises(InputError, match="drain"):
        pool.swap("energy", 100.0)  # 20 money would have to come out of 2
    with pytest.raises(InputError, match="drain"):
        pool.swap("money", 2.5)  # 12.5 kWh would have to come out of 10
    emptied, r = pool.swap("money", 2.0)  # exactly the reserve's worth: a sliver stays
    assert 0 < emptied.energy_kwh < 1e-12
    assert r.energy_kwh < 10.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"invariant": "constant_mean"}, "invariant"),
        ({"fee": 1.0}, "fee"),
        ({"fee": -0.1}, "fee"),
        ({"amplification": 0.0}, "amplification"),
        ({"peg_price_per_kwh": -1.0}, "peg_price_per_kwh"),
    ],
)
def test_bad_pool_parameters(kwargs, field):
    with pytest.raises(InputError) as info:
        Pool.create(10.0, 2.0, **kwargs)
    assert info.value.field == field
    with pytest.raises(InputError, match="both reserves"):
        Pool.create(0.0, 2.0)


# --------------------------------------------------------------------- as a market
def test_amm_market_executes_in_time_order_by_the_marginal_rule():
    pool = Pool.create(1000.0, 250.0, fee=0.003)  # 0.25 per kWh
    ob = te.OrderBatch(
        id=[1, 2, 3, 4], participant=["a", "b", "c", "d"], side=["buy", "buy", "sell", "buy"],
        price=[0.26, 0.26, 0.10, 0.20], quantity=[100.0, 100.0, 30.0, 5.0],
        time=[0.0, 1.0, 2.0, 3.0],
    )
    c = te.clear(ob, "amm", pool=pool)
    # a: buys until the marginal cost is 0.26: the curve price 0.26 * 0.997, so
    # x = sqrt(k / p) (constant product), fewer than the 100 kWh it wanted
    k = 1000.0 * 250.0
    assert c.accepted[0] == pytest.approx(1000.0 - math.sqrt(k / (0.26 * 0.997)), rel=1e-9)
    assert c.accepted[1] < 1e-3  # b, with the same limit, finds the price at it
    assert c.accepted[2] == 30.0  # c sells in full at ~0.26 > 0.10
    assert c.accepted[3] == 0.0  # the pool is dearer than 0.20
    assert np.all(c.price[:3][c.accepted[:3] > 0] <= np.array([0.26, 0.26, np.inf])[
        c.accepted[:3] > 0])
    assert c.volume == pytest.approx(c.accepted[:2].sum())
    assert c.info["pool_net_kwh"] == pytest.approx(30.0 - c.volume)
    # the pool's money by hand: a pays (k / x1 - 250) / 0.997 to move the curve to
    # x1 (the fee stays in the pool); c's 30 kWh put 29.91 on the curve through
    # (x1, y1) and take y1 - x1 y1 / (x1 + 29.91) out; b and d trade nothing
    x1 = math.sqrt(k / (0.26 * 0.997))
    y1 = 250.0 + (k / x1 - 250.0) / 0.997
    paid_c = y1 - x1 * y1 / (x1 + 30 * 0.997)
    final = c.info["pool"]
    assert final.money == pytest.approx(y1 - paid_c, rel=1e-12)
    assert c.payment.tolist() == pytest.approx([y1 - 250.0, 0.0, -paid_c, 0.0], rel=1e-12)
    # (a difference of sums near 250: rounding in the pool's favour, 16 eps of its
    # size per swap, shows at 1e-12)
    assert c.info["pool_money_change"] == pytest.approx(y1 - paid_c - 250.0, abs=1e-10)
    assert c.operator_surplus == pytest.approx(y1 - paid_c - 250.0, abs=1e-10)
    assert final.energy_kwh == pytest.approx(1000.0 - c.volume + 30.0)
    assert c.clearing_price == final.price_per_kwh
    assert pool.energy_kwh == 1000.0  # the input pool is untouched


def test_amm_market_refuses_a_missing_or_empty_pool():
    ob = te.OrderBatch(id=[1], participant=["a"], side=["buy"], price=[1.0], quantity=[1.0])
    with pytest.raises(InputError) as info:
        te.clear(ob, "amm", pool={"energy_kwh": 1})
    assert info.value.field == "pool"
    empty = Pool.create(1.0, 1.0)
    empty = empty.withdraw(empty.shares)[0]
    with pytest.raises(InputError, match="empty"):
        te.clear(ob, "amm", pool=empty)


@pytest.mark.parametrize("invariant", INVARIANTS)
def test_arbitrage_brings_the_pool_into_the_band(invariant):
    low, high, fee = 0.08, 0.30, 0.003
    dear = Pool.create(100.0, 50.0, invariant=invariant, fee=fee)  # 0.50 per kWh
    anchored, trade = arbitrage_to_band(dear, low, high)
    assert trade is not None
    assert trade.side == -1
    if invariant == "constant_sum":  # one price: the pool sells out of money instead
        assert anchored.money == pytest.approx(50.0 * 1e-9, rel=1e-3)
    else:
        # the marginal receipt is now the retail price (up to the fee left in the pool)
        assert anchored.price_per_kwh * (1 - fee) == pytest.approx(high, rel=2 * fee)
        assert anchored.price_per_kwh * (1 - fee) <= high * (1 + 1e-9)
        assert trade.money - trade.energy_kwh * high > 0  # the arbitrage paid
    cheap = Pool.create(100.0, 2.0, invariant=invariant, fee=fee)  # 0.02 per kWh
    lifted, trade = arbitrage_to_band(cheap, low, high)
    assert trade is not None
    assert trade.side == 1
    assert invariant == "constant_sum" or lifted.price_per_kwh / (1 - fee) >= low * (1 - 1e-9)
    inside = Pool.create(100.0, 20.0, invariant=invariant, fee=fee)
    same, none = arbitrage_to_band(inside, low, high)
    assert none is None
    assert same is inside
    with pytest.raises(InputError):
        arbitrage_to_band(inside, 0.3, 0.1)
