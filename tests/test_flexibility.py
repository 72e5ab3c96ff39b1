"""The energy manager: matching inside the home, orders, what each segment got."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.agents.flexibility import Segments, net_in_home, served
from transactive.errors import InputError
from transactive.orders import BUY, SELL


@st.composite
def _segments(draw: st.DrawFn) -> tuple[Segments, int]:
    n = draw(st.integers(1, 6))
    m = draw(st.integers(0, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    prices = np.round(rng.uniform(0.0, 0.4, m), 2)  # a cent grid: ties happen
    return Segments(household=rng.integers(0, n, m), side=rng.choice([BUY, SELL], m),
                    quantity_kwh=np.round(rng.uniform(0.0, 3.0, m), 1),
                    price_per_kwh=prices), n


def _brute_force_match(seg: Segments, n: int) -> np.ndarray:
    """Greedy matching household by household, in plain Python."""
    matched = np.zeros(len(seg))
    for h in range(n):
        rows = np.flatnonzero(seg.household == h)
        buys = sorted((r for r in rows if seg.side[r] == BUY),
                      key=lambda r: (-seg.price_per_kwh[r], r))
        sells = sorted((r for r in rows if seg.side[r] == SELL),
                       key=lambda r: (seg.price_per_kwh[r], r))
        left = {r: seg.quantity_kwh[r] for r in rows}
        i = j = 0
        while i < len(buys) and j < len(sells):
            b, s = buys[i], sells[j]
            if seg.price_per_kwh[b] < seg.price_per_kwh[s]:
                break
            take = min(left[b], left[s])
            matched[b] += take
            matched[s] += take
            left[b] -= take
            left[s] -= take
            i += left[b] <= 0
            j += left[s] <= 0
    return matched


@settings(max_examples=200, deadline=None)
@given(_segments())
def test_the_home_matches_as_a_greedy_match_would(case: tuple[Segments, int]) -> None:
    seg, n = case
    home = net_in_home(seg, n)
    np.testing.assert_allclose(home.matched_kwh, _brute_force_match(seg, n), atol=1e-12)
    np.testing.assert_allclose(home.matched_kwh + home.residual_kwh, seg.quantity_kwh)
    buy = seg.side == BUY
    for h in range(n):  # energy bought in the home = energy sold in it
        mine = seg.household == h
        assert home.matched_kwh[mine & buy].sum() == pytest.approx(
            home.matched_kwh[mine & ~buy].sum(), abs=1e-9)
        # what is left never crosses inside a household: no self-trade possible
        left_buy = mine & buy & (home.residual_kwh > 1e-12)
        left_sell = mine & ~buy & (home.residual_kwh > 1e-12)
        if left_buy.any() and left_sell.any():
            assert seg.price_per_kwh[left_buy].max() < seg.price_per_kwh[left_sell].min()


def test_a_segment_gets_home_market_and_utility_by_its_limit() -> None:
    # load 2 at the retail price, a heat pump 1 at 0.15, PV 0.5 at the feed-in price
    seg = Segments(household=[0, 0, 0], side=[BUY, BUY, SELL], quantity_kwh=[2.0, 1.0, 0.5],
                   price_per_kwh=[0.30, 0.15, 0.08])
    home = net_in_home(seg, 1)
    assert home.matched_kwh.tolist() == [0.5, 0.0, 0.5]
    total, utility = served(seg, home, [1.0, 0.25, 0.0], 0.30, 0.08)
    # the load gets its last 0.5 from the utility; the heat pump only 0.25 (market)
    assert total.tolist() == [2.0, 0.25, 0.5]
    assert utility.tolist() == [0.5, 0.0, 0.0]


@pytest.mark.parametrize(("field", "kwargs"), [
    ("side", {"side": [2]}), ("quantity_kwh", {"quantity_kwh": [-1.0]}),
    ("price_per_kwh", {"price_per_kwh": [np.nan]}), ("household", {"household": [-1]}),
])
def test_bad_segments_are_refused_with_the_field_named(field: str, kwargs: dict) -> None:
    base = {"household": [0], "side": [BUY], "quantity_kwh": [1.0], "price_per_kwh": [0.1]}
    with pytest.raises(InputError) as err:
        Segments(**{**base, **kwargs})
    assert err.value.field == field


def test_accepting_more_than_an_order_is_refused() -> None:
    seg = Segments(household=[0], side=[BUY], quantity_kwh=[1.0], price_per_kwh=[0.2])
    home = net_in_home(seg, 1)
    with pytest.raises(InputError, match="accepted_kwh"):
        served(seg, home, [1.5], 0.3, 0.08)


def test_an_indivisible_run_partly_accepted_gets_the_rest_from_the_utility():
    seg = Segments(household=[0, 1], side=[BUY, BUY], quantity_kwh=[0.5, 0.5],
                   price_per_kwh=[0.2, 0.2], indivisible=[True, True])
    home = net_in_home(seg, 2)
    total, utility = served(seg, home, [0.1, 0.0], 0.30, 0.08)
    assert total.tolist() == [0.5, 0.0]  # started whole, or not at all
    assert utility.tolist() == [0.4, 0.0]
