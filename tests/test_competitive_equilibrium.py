"""Prices of the uniform auction and MUDA's Walrasian price against a brute-force
competitive equilibrium (issue 8, item 7a).

The reference shares nothing with :mod:`transactive.markets._curves`: the efficient
volume comes from unit bids and asks sorted one by one, and the equilibrium prices
from evaluating demand and supply at every candidate price. A price ``p`` is a
competitive-equilibrium price for volume ``V`` when the buys priced above ``p``
want no more than ``V`` and the buys priced at or above it at least ``V``, and
likewise the sells priced below ``p`` and at or below it: every order strictly
in the money trades in full and only orders priced exactly at ``p`` may be partly
filled.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from transactive.markets.muda import walrasian_price
from transactive.markets.uniform import PRICE_RULES, clear_uniform
from transactive.orders import OrderBatch

F64 = npt.NDArray[np.float64]


def batch(side: list[int], price: list[float], quantity: list[float]) -> OrderBatch:
    n = len(price)
    return OrderBatch(id=np.arange(n), participant=[f"p{i}" for i in range(n)], side=side,
                      price=price, quantity=quantity)


def efficient_units(side: F64, price: F64, quantity: F64) -> int:
    """The largest ``k`` with ``b_k >= s_k`` over unit bids and asks (integer quantities)."""
    bids = sorted((p for s, p, q in zip(side, price, quantity, strict=True) if s > 0
                   for _ in range(int(q))), reverse=True)
    asks = sorted(p for s, p, q in zip(side, price, quantity, strict=True) if s < 0
                  for _ in range(int(q)))
    k = 0
    while k < min(len(bids), len(asks)) and bids[k] >= asks[k]:
        k += 1
    return k


def is_equilibrium(side: F64, price: F64, quantity: F64, p: float, volume: float) -> bool:
    buy, sell = side > 0, side < 0
    d_strict, d_weak = quantity[buy & (price > p)].sum(), quantity[buy & (price >= p)].sum()
    s_strict, s_weak = quantity[sell & (price < p)].sum(), quantity[sell & (price <= p)].sum()
    return bool(d_strict <= volume <= d_weak and s_strict <= volume <= s_weak)


def equilibrium_interval(side: F64, price: F64, quantity: F64) -> tuple[int, float, float]:
    """Efficient volume and the lowest and highest equilibrium prices, by brute force.

    The conditions only change at the orders' prices, so checking each price and
    each midpoint between neighbours (and one step beyond the extremes) covers
    every case; the set is a closed interval whose ends are order prices.
    """
    volume = efficient_units(side, price, quantity)
    levels = np.unique(price)
    candidates = np.concatenate((levels, (levels[1:] + levels[:-1]) / 2,
                                 [levels[0] - 1.0, levels[-1] + 1.0]))
    ok = [float(p) for p in candidates if is_equilibrium(side, price, quantity, p, volume)]
    assert ok, "a market of step curves always has an equilibrium price"
    return volume, min(ok), max(ok)


def random_market(rng: np.random.Generator) -> tuple[F64, F64, F64]:
    n = int(rng.integers(2, 11))
    side = rng.choice([1.0, -1.0], n)
    side[:2] = (1.0, -1.0)  # both sides present
    price = rng.integers(0, 9, n).astype(float) * 25.0  # few levels: many ties
    quantity = rng.integers(1, 6, n).astype(float)
    return side, price, quantity


def test_reference_on_issue_8_case() -> None:
    # buys 5 @ 250, 4 @ 150, 3 @ 350; sells 5 @ 200, 4 @ 100, 3 @ 300: 8 units at 200
    side = np.array([1, 1, 1, -1, -1, -1], dtype=float)
    price = np.array([250, 150, 350, 200, 100, 300], dtype=float)
    quantity = np.array([5, 4, 3, 5, 4, 3], dtype=float)
    assert equilibrium_interval(side, price, quantity) == (8, 200.0, 200.0)
    assert not is_equilibrium(side, price, quantity, 225.0, 8)  # 8 demanded, 9 offered


def test_walrasian_price_of_issue_8_case() -> None:
    ob = batch([1, 1, 1, -1, -1, -1], [250, 150, 350, 200, 100, 300], [5, 4, 3, 5, 4, 3])
    assert walrasian_price(ob) == 200.0


def test_uniform_price_lies_in_the_equilibrium_interval() -> None:
    rng = np.random.default_rng(808)
    pinned = 0
    for case in range(400):
        side, price, quantity = random_market(rng)
        volume, lo, hi = equilibrium_interval(side, price, quantity)
        ob = batch(side.astype(int).tolist(), price.tolist(), quantity.tolist())
        rule = PRICE_RULES[case % len(PRICE_RULES)]
        c = clear_uniform(ob, price_rule=rule, k=0.3)
        assert c.volume == pytest.approx(volume, rel=1e-12), case  # pro-rata shares round
        if volume == 0:
            continue
        pinned += lo == hi
        assert (c.info["p_low"], c.info["p_high"]) == (lo, hi), case
        assert lo <= c.clearing_price <= hi
        assert is_equilibrium(side, price, quantity, c.clearing_price, volume)
        # at that price, whoever is strictly in the money trades in full, whoever is
        # out of it trades nothing
        in_money = np.where(side > 0, price > c.clearing_price, price < c.clearing_price)
        out = np.where(side > 0, price < c.clearing_price, price > c.clearing_price)
        assert np.array_equal(c.accepted[in_money], quantity[in_money]), case
        assert not c.accepted[out].any(), case
    assert pinned > 50  # the partly filled case is well represented


def test_walrasian_price_is_the_middle_of_the_equilibrium_interval() -> None:
    rng = np.random.default_rng(809)
    for case in range(400):
        side, price, quantity = random_market(rng)
        volume, lo, hi = equilibrium_interval(side, price, quantity)
        ob = batch(side.astype(int).tolist(), price.tolist(), quantity.tolist())
        p = walrasian_price(ob)
        assert p == 0.5 * (lo + hi), case
        assert is_equilibrium(side, price, quantity, p, volume), case
