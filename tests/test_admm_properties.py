"""Hypothesis properties of p2p_admm, converged or not (the final projection
makes them exact): energy bought = sold per pair and in total, nobody beyond
its quantity or its limit price, payments balanced, trades only on edges."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.decentral.p2p_admm import clear_p2p_admm
from transactive.orders import BUY, OrderBatch


@st.composite
def markets(draw: st.DrawFn) -> tuple[OrderBatch, dict[str, object]]:
    n = draw(st.integers(2, 14))
    participant = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    side = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    price = draw(st.lists(st.floats(-0.1, 0.5, allow_nan=False), min_size=n, max_size=n))
    quantity = draw(st.lists(st.floats(0.01, 10.0), min_size=n, max_size=n))
    node = draw(st.lists(st.integers(0, 4), min_size=6, max_size=6))
    orders = OrderBatch(id=np.arange(n), participant=participant, side=side, price=price,
                        quantity=quantity, node=np.asarray(node)[participant])
    options = {"neighbours": draw(st.sampled_from([None, 1, 2])),
               "distance_cost_per_kwh": draw(st.sampled_from([0.0, 0.01, 0.1])),
               "max_iter": draw(st.sampled_from([5, 50, 3000]))}
    return orders, options


@settings(max_examples=300, deadline=None)
@given(markets())
def test_trades_balance_and_respect_quantities_and_limits(
        market: tuple[OrderBatch, dict[str, object]]) -> None:
    orders, options = market
    c = clear_p2p_admm(orders, **options)  # type: ignore[arg-type]
    acc, buy = c.accepted, orders.side == BUY
    assert (acc >= 0).all()
    assert (acc <= orders.quantity).all()
    traded = acc > 0
    assert (c.price[traded & buy] <= orders.price[traded & buy]).all()
    assert (c.price[traded & ~buy] >= orders.price[traded & ~buy]).all()
    if c.info["n_edges"] == 0:
        assert c.volume == 0
        return
    trades = c.info["trades_kwh"].tocsr()
    assert (trades.data >= 0).all()
    scale = 1e-9 * max(float(orders.quantity.sum()), 1.0)
    # per agent: what its orders trade is what its edges carry
    buyers, sellers = list(c.info["buyers"]), list(c.info["sellers"])
    by_buyer = np.zeros(len(buyers))
    np.add.at(by_buyer, [buyers.index(p) for p in orders.participant[buy]], acc[buy])
    by_seller = np.zeros(len(sellers))
    np.add.at(by_seller, [sellers.index(p) for p in orders.participant[~buy]], acc[~buy])
    np.testing.assert_allclose(by_buyer, trades.sum(axis=1).A1, atol=scale)
    np.testing.assert_allclose(by_seller, trades.sum(axis=0).A1, atol=scale)
    assert abs(acc[buy].sum() - acc[~buy].sum()) <= scale
    assert abs(c.operator_surplus) <= 1e-9 * max(float(np.abs(c.payment).sum()), 1.0)
    # trade prices between the pair's marginal limits, never negative trades
    prices = c.info["trade_price"].tocsr()
    assert prices.shape == trades.shape
