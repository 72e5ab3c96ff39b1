"""The virtual power plant: the aggregate curve, its bid, the award split to the
devices, the money and the delivery (transactive.programs.vpp)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.agents.flexibility import Segments
from transactive.errors import InputError
from transactive.markets.uniform import clear_uniform
from transactive.orders import BUY, SELL, OrderBatch
from transactive.programs.vpp import (
    Award,
    aggregate_curve,
    awarded,
    bid,
    delivery,
    disaggregate,
    share_revenue,
)

ALL = np.array([True, True, True])


def _fleet() -> Segments:
    """Household 0 a battery, 1 an EV with V2G, 2 a heat pump (price cap 0.40)."""
    return Segments(
        household=[0, 0, 1, 1, 1, 2, 2],
        side=[BUY, SELL, BUY, BUY, SELL, BUY, BUY],
        #     charge discharge  EV need EV extra V2G  HP must  HP extra
        quantity_kwh=[2.0, 1.0, 2.0, 1.0, 1.0, 0.5, 1.0],
        price_per_kwh=[0.10, 0.25, 0.40, 0.20, 0.22, 0.40, 0.10],
        must_run=[False, False, True, False, False, True, False])


# ------------------------------------------------------------------ hand-worked
def test_the_curve_of_three_households() -> None:
    curve = aggregate_curve(_fleet(), ALL)
    assert curve.price_per_kwh.tolist() == [0.10, 0.20, 0.22, 0.25]
    assert curve.buy_kwh.tolist() == [3.0, 1.0, 0.0, 0.0]
    assert curve.sell_kwh.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert curve.up_kwh.tolist() == [4.0, 1.0, 0.0, 0.0]      # D(p): buys priced >= p
    assert curve.down_kwh.tolist() == [0.0, 0.0, 1.0, 2.0]    # S(p): sells priced <= p
    assert (curve.fixed_buy_kwh, curve.fixed_sell_kwh, curve.fixed_kwh) == (2.5, 0.0, 2.5)
    with pytest.raises(ValueError, match="read-only"):
        curve.buy_kwh[0] = 9.0


def test_a_household_not_enrolled_takes_no_part() -> None:
    curve = aggregate_curve(_fleet(), [True, False, True])  # the EV stays out
    assert curve.price_per_kwh.tolist() == [0.10, 0.25]
    assert curve.up_kwh.tolist() == [3.0, 0.0]
    assert curve.down_kwh.tolist() == [0.0, 1.0]
    assert curve.fixed_buy_kwh == 0.5
    empty = aggregate_curve(_fleet(), np.zeros(3, bool))
    assert empty.price_per_kwh.size == 0
    assert empty.award_at(0.1) == Award(0.0, 0.0)
    assert len(bid(empty)) == 0


def test_the_bid_is_one_order_per_step_with_the_margin() -> None:
    ob = bid(aggregate_curve(_fleet(), ALL), participant="north", margin_per_kwh=0.01,
             first_id=10)
    assert ob.id.tolist() == [10, 11, 12, 13]
    assert ob.participant.tolist() == ["north"] * 4
    assert ob.side.tolist() == [BUY, BUY, SELL, SELL]
    np.testing.assert_allclose(ob.price, [0.19, 0.09, 0.23, 0.26])
    assert ob.quantity.tolist() == [1.0, 3.0, 1.0, 1.0]


def _auction() -> tuple[Segments, Award, float]:
    """The fleet's bid against a PV farm offering 2.5 kWh at 0.05: the buy step at
    0.10 (3 kWh: the battery's 2, the heat pump's 1) is cut in half."""
    seg = _fleet()
    farm = OrderBatch(id=[100], participant=["pv_farm"], side=["sell"], price=[0.05],
                      quantity=[2.5])
    cleared = clear_uniform(OrderBatch.concat([bid(aggregate_curve(seg, ALL)), farm]))
    return seg, awarded(cleared, "vpp"), cleared.clearing_price


def test_an_award_that_cuts_a_step_in_half_is_split_pro_rata() -> None:
    seg, award, price = _auction()
    assert award == Award(up_kwh=2.5, down_kwh=0.0)
    assert price == pytest.approx(0.10)  # the partly filled level sets the price
    d = disaggregate(seg, ALL, award, price)
    # the EV's extra at 0.20 runs in full; at 0.10 the battery gets 1 of 2, the heat pump 0.5 of 1
    np.testing.assert_allclose(d.energy_kwh, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(d.served_kwh, [1.0, 0.0, 2.0, 1.0, 0.0, 0.5, 0.5])
    assert (d.up_kwh, d.down_kwh) == (2.5, 0.0)
    np.testing.assert_allclose(d.household_kwh(), [1.0, 1.0, 0.5])


def test_the_revenue_shares_of_the_auction() -> None:
    seg, award, price = _auction()
    d = disaggregate(seg, ALL, award, price)
    marginal = share_revenue(d, price, "marginal")
    assert marginal.revenue == pytest.approx(-0.25)
    assert marginal.margin == 0.0
    np.testing.assert_allclose(marginal.household, [-0.10, -0.10, -0.05])
    pooled = share_revenue(d, price, "pro_rata_energy")
    # at their limits: -0.10, -0.20, -0.05; the surplus 0.10 shared 1 : 1 : 0.5
    np.testing.assert_allclose(pooled.household, [-0.06, -0.16, -0.03])
    assert pooled.household.sum() == pytest.approx(-0.25)


def test_a_wholesale_price_taker_with_a_margin() -> None:
    seg = _fleet()
    curve = aggregate_curve(seg, ALL)
    assert curve.award_at(0.15) == Award(1.0, 0.0)
    assert curve.award_at(0.23) == Award(0.0, 1.0)
    assert curve.award_at(0.23, margin_per_kwh=0.02) == Award(0.0, 0.0)
    award = curve.award_at(0.30, margin_per_kwh=0.02)
    assert award == Award(0.0, 2.0)
    d = disaggregate(seg, ALL, award, 0.30, margin_per_kwh=0.02)
    np.testing.assert_allclose(d.energy_kwh, [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    marginal = share_revenue(d, 0.30, "marginal")
    assert (marginal.revenue, marginal.margin) == pytest.approx((0.60, 0.04))
    np.testing.assert_allclose(marginal.household, [0.28, 0.28, 0.0])
    pooled = share_revenue(d, 0.30)  # limits 0.25 and 0.22, then 0.09 by energy
    np.testing.assert_allclose(pooled.household, [0.295, 0.265, 0.0])


def test_delivery_against_the_award() -> None:
    d = delivery([3.0, -2.0, -2.0, 0.0], [3.0, -1.0, 0.5, -0.5], [0.1, 0.1, 0.2, 0.3])
    assert d.delivered_kwh.tolist() == [3.0, 1.0, 0.0, 0.0]
    assert d.shortfall_kwh.tolist() == [0.0, 1.0, 2.5, 0.0]  # the wrong way counts short
    assert d.over_kwh.tolist() == [0.0, 0.0, 0.0, 0.5]
    np.testing.assert_allclose(d.penalty, [0.0, 0.1, 0.5, 0.15])
    s = d.summary()
    assert s["award_kwh"] == 7.0
    assert s["delivered_kwh"] == 4.0
    assert s["delivered_share"] == pytest.approx(4 / 7)
    assert s["penalty"] == pytest.approx(0.75)
    assert np.isnan(delivery([0.0], [0.0]).delivered_share)


# ------------------------------------------------------------------ properties
@st.composite
def _market(draw: st.DrawFn) -> tuple[Segments, np.ndarray, float, float]:
    """A random fleet, an enrolment, a margin and a clearing price on its cent grid."""
    n = draw(st.integers(1, 6))
    m = draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    seg = Segments(household=rng.integers(0, n, m), side=rng.choice([BUY, SELL], m),
                   quantity_kwh=np.round(rng.uniform(0.0, 5.0, m), 2),
                   price_per_kwh=np.round(rng.uniform(-0.05, 0.40, m), 2),  # ties happen
                   must_run=rng.random(m) < 0.2)
    enrolled = rng.random(n) < 0.8
    margin = draw(st.sampled_from([0.0, 0.01]))
    price = draw(st.sampled_from([-0.05, 0.0, 0.09, 0.1, 0.15, 0.21, 0.3, 0.41]))
    return seg, enrolled, margin, price


def _check_dispatch(seg: Segments, enrolled: np.ndarray, award: Award, price: float,
                    margin: float) -> None:
    d = disaggregate(seg, enrolled, award, price, margin_per_kwh=margin)
    e, q, buy = d.energy_kwh, seg.quantity_kwh, seg.side == BUY
    assert abs(e[buy].sum() - award.up_kwh) <= 1e-9
    assert abs(e[~buy].sum() - award.down_kwh) <= 1e-9
    assert (e >= 0).all()
    assert (e <= q).all()
    bid_price = np.where(buy, seg.price_per_kwh - margin, seg.price_per_kwh + margin)
    clears = enrolled[seg.household] & ~seg.must_run & np.where(buy, bid_price >= price,
                                                                bid_price <= price)
    assert (e[~clears] == 0).all()
    for side, key in ((buy, -bid_price), (~buy, bid_price)):  # merit order, pro rata
        on = side & (e > 1e-12)
        if not on.any():
            continue
        worst = key[on].max()  # the marginal step: every better one runs in full
        better = side & clears & (key < worst)
        np.testing.assert_allclose(e[better], q[better], atol=1e-9)
        at = side & clears & (key == worst) & (q > 0)
        np.testing.assert_allclose(e[at] / q[at], (e[at] / q[at])[0], atol=1e-12)


@settings(max_examples=300, deadline=None)
@given(_market(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_dispatch_sums_to_the_award_within_every_limit(
        case: tuple[Segments, np.ndarray, float, float], up: float, down: float) -> None:
    seg, enrolled, margin, price = case
    offered = aggregate_curve(seg, enrolled).award_at(price, margin_per_kwh=margin)
    award = Award(up * offered.up_kwh, down * offered.down_kwh)
    _check_dispatch(seg, enrolled, award, price, margin)


@settings(max_examples=200, deadline=None)
@given(_market(), st.integers(0, 2**32 - 1))
def test_an_auction_award_against_other_offers_disaggregates(
        case: tuple[Segments, np.ndarray, float, float], seed: int) -> None:
    seg, enrolled, margin, _ = case
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 6))
    others = OrderBatch(id=np.arange(1000, 1000 + k), participant=[f"o{i}" for i in range(k)],
                        side=rng.choice(["buy", "sell"], k),
                        price=np.round(rng.uniform(-0.05, 0.40, k), 2),
                        quantity=np.round(rng.uniform(0.1, 8.0, k), 2))
    mine = bid(aggregate_curve(seg, enrolled), margin_per_kwh=margin)
    cleared = clear_uniform(OrderBatch.concat([mine, others]) if len(mine) else others)
    award = awarded(cleared)
    if np.isnan(cleared.clearing_price):
        assert award == Award(0.0, 0.0)
        return
    _check_dispatch(seg, enrolled, award, cleared.clearing_price, margin)


@settings(max_examples=300, deadline=None)
@given(_market(), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       st.sampled_from(["pro_rata_energy", "marginal"]))
def test_the_shares_sum_to_the_revenue_less_the_margin(
        case: tuple[Segments, np.ndarray, float, float], up: float, down: float,
        rule: str) -> None:
    seg, enrolled, margin, price = case
    offered = aggregate_curve(seg, enrolled).award_at(price, margin_per_kwh=margin)
    d = disaggregate(seg, enrolled, Award(up * offered.up_kwh, down * offered.down_kwh),
                     price, margin_per_kwh=margin)
    shares = share_revenue(d, price, rule)  # type: ignore[arg-type]
    assert shares.household.sum() == pytest.approx(shares.revenue - shares.margin, abs=1e-9)
    assert shares.revenue == pytest.approx(price * (d.down_kwh - d.up_kwh), abs=1e-12)
    assert shares.margin == pytest.approx(margin * (d.up_kwh + d.down_kwh), abs=1e-12)
    # no household worse off than at its own limits
    limits = np.where(seg.side == BUY, -seg.price_per_kwh, seg.price_per_kwh) * d.energy_kwh
    at_limits = np.bincount(seg.household, limits, enrolled.size)
    assert (shares.household >= at_limits - 1e-9).all()
    assert (shares.household[~enrolled] == 0).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=1, max_size=20),
       st.floats(0.0, 1.0))
def test_delivery_splits_the_imbalance(pairs: list[tuple[float, float]], price: float) -> None:
    award, metered = np.array(pairs).T
    d = delivery(award, metered, price)
    np.testing.assert_allclose(d.shortfall_kwh + d.over_kwh, np.abs(metered - award), atol=1e-12)
    np.testing.assert_allclose(d.delivered_kwh + np.minimum(d.shortfall_kwh, np.abs(award)),
                               np.abs(award), atol=1e-12)
    assert (d.delivered_kwh >= 0).all()
    assert (d.delivered_kwh <= np.abs(award)).all()
    np.testing.assert_allclose(d.penalty, price * np.abs(metered - award), atol=1e-12)


# ------------------------------------------------------------------ bad input
def test_a_bad_enrolment_mask_is_refused() -> None:
    seg = _fleet()
    for mask in ([True, True], np.ones((3, 1), bool), [1, 1, 1]):
        with pytest.raises(InputError) as err:
            aggregate_curve(seg, mask)
        assert err.value.field == "enrolled"
    with pytest.raises(InputError, match="enrolled"):
        disaggregate(seg, [True, True], (0.0, 0.0), 0.1)


@pytest.mark.parametrize(("award", "price", "problem"), [
    ((-1.0, 0.0), 0.10, ">= 0"), ((0.0, float("nan")), 0.10, ">= 0"),
    ((1.0,), 0.10, "two numbers"), ("much", 0.10, "two numbers"),
    ((4.5, 0.0), 0.10, "up_kwh 4.5 is beyond the curve"),     # 4 kWh of buys clear at 0.10
    ((1.5, 0.0), 0.15, "up_kwh 1.5 is beyond the curve"),     # at 0.15 only the EV's 1 kWh
    ((0.0, 1.5), 0.23, "down_kwh 1.5 is beyond the curve")])  # at 0.23 only the V2G's 1 kWh
def test_a_bad_award_is_refused(award: Any, price: float, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as err:
        disaggregate(_fleet(), ALL, award, price)
    assert err.value.field == "award_kwh"


def test_other_bad_input_is_refused() -> None:
    seg = _fleet()
    d = disaggregate(seg, ALL, (1.0, 0.0), 0.15)
    with pytest.raises(InputError, match="rule"):
        share_revenue(d, 0.15, "shapley")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="clearing_price"):
        disaggregate(seg, ALL, (1.0, 0.0), float("nan"))
    with pytest.raises(InputError, match="margin_per_kwh"):
        bid(aggregate_curve(seg, ALL), margin_per_kwh=-0.01)
    with pytest.raises(InputError, match="participant"):
        bid(aggregate_curve(seg, ALL), participant=" ")
    with pytest.raises(InputError, match="metered_kwh"):
        delivery([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="imbalance_price_per_kwh"):
        delivery([1.0], [1.0], -0.1)
    with pytest.raises(InputError, match="award_kwh"):
        delivery([[1.0]], [[1.0]])


def test_the_inputs_are_not_changed() -> None:
    seg = _fleet()
    before = {name: getattr(seg, name).copy() for name in
              ("household", "side", "quantity_kwh", "price_per_kwh", "must_run")}
    mask = ALL.copy()
    d = disaggregate(seg, mask, (2.5, 0.0), 0.10)
    share_revenue(d, 0.10)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(seg, name), value)
    np.testing.assert_array_equal(mask, ALL)
    assert not d.energy_kwh.flags.writeable
    assert not d.enrolled.flags.writeable
