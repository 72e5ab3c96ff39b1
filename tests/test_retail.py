"""Retail competition: logit choice with inertia, the money, retailers'
price adaptation (the logit-Bertrand markup), the comparison with the
incumbent alone and a P2P market, reproducibility and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from transactive.errors import InputError
from transactive.programs.retail import (
    DAYS_PER_MONTH,
    BestResponse,
    LogitChoice,
    MarginRule,
    Retailer,
    RetailMarket,
    logit_choice,
)
from transactive.programs.retail_compare import compare_retail, comparison_table
from transactive.programs.tariffs import Tariff, bills_under
from transactive.timeline import Timeline

WEEK = Timeline(pd.Timestamp("2026-03-02", tz="Europe/Berlin"), periods=168, step_minutes=60)
MONTH = DAYS_PER_MONTH / 7.0  # months per week of the profile: a week's figures x this
WHOLESALE = np.full(168, 0.08)


def _flat(name: str, price: float, **kw) -> Retailer:
    return Retailer(name, Tariff("flat", price, 0.05), network_charge_per_kwh=0.10, **kw)


def _profiles(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Households of different sizes, some with PV exports at midday."""
    rng = np.random.default_rng(seed)
    hour = WEEK.hour_of_day[:, None]
    imp = rng.uniform(0.2, 0.9, (168, n)) * (1 + 0.5 * ((hour >= 17) & (hour < 21)))
    exp = np.where((hour >= 10) & (hour < 15), rng.uniform(0, 1.5, n), 0.0)
    return imp, exp


class _DayAhead:
    """A wholesale price series with a daily shape and a negative midday hour."""

    def price_per_kwh(self, timeline: Timeline) -> np.ndarray:
        hour = timeline.hour_of_day
        return 0.08 + 0.05 * np.sin(2 * np.pi * (hour - 12) / 24) - 0.1 * (np.floor(hour) == 13)


def _same(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((168, n), 0.5), np.zeros((168, n))  # 365.25 kWh a month each


# ---------------------------------------------------------------- the logit by hand
def test_logit_shares_worked_by_hand():
    # bills 100 and 90, alpha 0.2, switching cost 10
    p, cs = logit_choice([[100.0, 90.0]] * 3, [0, 1, 0], LogitChoice(0.2, 10.0))
    # with the first: V = (-20, -0.2 * (90 + 10) = -20): torn
    assert p[0] == pytest.approx([0.5, 0.5])
    # with the second: V = (-0.2 * 110, -18) = (-22, -18): stays with 1 / (1 + e^-4)
    assert p[1] == pytest.approx([1 / (1 + math.e**4), 1 / (1 + math.e**-4)])
    assert cs[0] == pytest.approx((-20 + math.log(2)) / 0.2)
    assert cs[1] == pytest.approx((-18 + math.log(1 + math.e**-4)) / 0.2)
    # without inertia: 1 / (1 + e^-2) for the cheaper offer, whoever one is with
    p0, _ = logit_choice([[100.0, 90.0]] * 2, [0, 1], LogitChoice(0.2, 0.0))
    assert p0[:, 1] == pytest.approx([1 / (1 + math.e**-2)] * 2)


def test_market_bills_and_first_choice_by_hand():
    imp, exp = _same(1)
    old, new = _flat("old", 0.30, fee_per_month=5.0), _flat("new", 0.25)
    market = RetailMarket((old, new), imp, exp, WEEK, WHOLESALE, LogitChoice(0.1, 5.0))
    run = market.run(1, np.random.default_rng(0))
    # 84 kWh a week = 365.25 kWh a month
    assert run.offer_bill[0, 0] == pytest.approx([0.30 * 365.25 + 5.0, 0.25 * 365.25])
    gain = 0.30 * 365.25 + 5.0 - 0.25 * 365.25 - 5.0  # saving less the switching cost
    assert run.probability[0, 0, 1] == pytest.approx(1 / (1 + math.exp(-0.1 * gain)))
    assert market.supply_cost[0] == pytest.approx([0.18 * 365.25] * 2)


def test_supply_cost_counts_network_charges_on_imports_and_exports_at_wholesale():
    imp, exp = _profiles(4)
    w = _DayAhead().price_per_kwh(WEEK)
    assert w.min() < 0
    r = Retailer("r", Tariff("tou", 0.25, 0.06, peak_price_per_kwh=0.40), fee_per_month=9.0,
                 network_charge_per_kwh=0.11, cost_per_customer_month=2.5)
    market = RetailMarket([r, _flat("other", 0.3)], imp, exp, WEEK, _DayAhead())
    want = MONTH * ((w + 0.11) @ imp - w @ exp) + 2.5
    assert market.supply_cost[:, 0] == pytest.approx(want)
    base = bills_under({"r": r.tariff}, imp, exp, WEEK)["r"].to_numpy()
    assert market.offer_bills([0.02, 0.0])[:, 0] == pytest.approx(
        MONTH * base + 9.0 + 0.02 * MONTH * imp.sum(axis=0))
    # a shift keeps every time-of-use price at or above the feed-in price
    assert market.lowest_shift[0] == pytest.approx(-(0.25 - 0.06))


# ---------------------------------------------------------------- conservation
@pytest.fixture(scope="module")
def mixed_run():
    imp, exp = _profiles(300)
    retailers = (_flat("incumbent", 0.34, adapt=MarginRule()),
                 _flat("cheap", 0.28, fee_per_month=6.0, adapt=BestResponse()),
                 Retailer("tou", Tariff("tou", 0.24, 0.05, peak_price_per_kwh=0.45),
                          network_charge_per_kwh=0.10, cost_per_customer_month=3.0,
                          adapt=BestResponse()))
    market = RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, LogitChoice(0.2, 10.0),
                          price_cap_per_kwh=0.40)
    return market, market.run(18, np.random.default_rng(11))


def test_shares_sum_to_one_for_every_household_and_month(mixed_run):
    _, run = mixed_run
    assert run.probability.shape == (18, 300, 3)
    assert np.allclose(run.probability.sum(axis=2), 1.0)
    assert (run.probability >= 0).all()
    assert np.allclose(run.share.sum(axis=1), 1.0)
    assert np.allclose(run.frame().groupby("month")["expected_share"].sum(), 1.0)


def test_bills_are_the_retailers_revenue_and_profit_is_revenue_less_cost(mixed_run):
    market, run = mixed_run
    assert run.bill.sum(axis=1) == pytest.approx(run.revenue.sum(axis=1))
    assert run.profit == pytest.approx(run.revenue - run.cost)
    picked = run.retailer
    assert run.bill == pytest.approx(np.take_along_axis(run.offer_bill, picked[..., None],
                                                        axis=2)[..., 0])
    cost = np.array([[market.supply_cost[picked[m] == j, j].sum() for j in range(3)]
                     for m in range(18)])
    assert run.cost == pytest.approx(cost)
    # every offer bill is the base bill plus that month's shift on the imports
    assert run.offer_bill[-1] == pytest.approx(market.offer_bills(run.price_shift_per_kwh[-1]))


def test_prices_stay_within_the_cap_and_above_the_feed_in(mixed_run):
    market, run = mixed_run
    assert (run.price_per_kwh <= 0.40 + 1e-12).all()
    assert (run.price_shift_per_kwh >= market.lowest_shift - 1e-12).all()
    assert run.price_per_kwh[0, :2] == pytest.approx([0.34, 0.28])  # flat: price + shift


def test_results_are_read_only(mixed_run):
    _, run = mixed_run
    with pytest.raises(ValueError, match="read-only"):
        run.bill[0, 0] = 0.0


# ---------------------------------------------------------------- price adaptation
@pytest.mark.parametrize("m", [2, 3])
def test_identical_retailers_reach_the_logit_bertrand_markup(m):
    """Anderson, de Palma & Thisse (1992): for m identical firms and logit
    demand with sensitivity alpha (no outside option) the equilibrium markup
    is 1 / (alpha (1 - 1/m)) per customer."""
    alpha, fixed = 0.2, 2.0
    imp, exp = _same(40)
    retailers = [_flat(f"r{i}", 0.24 + 0.04 * i, cost_per_customer_month=fixed,
                       adapt=BestResponse(step_per_kwh=0.0002, max_change_per_kwh=0.01))
                 for i in range(m)]
    market = RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, LogitChoice(alpha, 0.0))
    run = market.run(60, np.random.default_rng(2))
    share = run.probability[-1].mean(axis=0)
    assert share == pytest.approx([1 / m] * m, abs=1e-3)
    markup = 1 / (alpha * (1 - 1 / m))  # per household and month
    price = 0.18 + (fixed + markup) / 365.25
    assert run.price_per_kwh[-1] == pytest.approx([price] * m, abs=0.0002)
    margin = run.offer_bill[-1, 0] - market.supply_cost[0]
    assert margin == pytest.approx([markup] * m, abs=0.0002 * 365.25)
    assert abs(run.price_per_kwh[0, -1] - price) > 0.05  # they started far from it


def test_with_inertia_myopic_retailers_harvest_up_to_the_cap():
    imp, exp = _same(100)
    retailers = [_flat(name, 0.30, adapt=BestResponse()) for name in ("a", "b")]
    market = RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, price_cap_per_kwh=0.45)
    run = market.run(24, np.random.default_rng(4), initial_retailer=np.arange(100) % 2)
    assert np.diff(run.price_per_kwh[:16], axis=0) == pytest.approx(0.01)  # the most a month
    assert run.price_per_kwh[-1] == pytest.approx([0.45, 0.45])
    assert run.switched.sum() < 5


def test_margin_rule_lowers_after_losing_share_and_raises_after_gaining():
    imp, exp = _same(200)
    step = 0.004
    retailers = (_flat("old", 0.34, adapt=MarginRule(step)), _flat("new", 0.26,
                                                                   adapt=MarginRule(step)))
    market = RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, LogitChoice(0.2, 5.0))
    run = market.run(2, np.random.default_rng(0))
    assert run.share[0, 1] > 0  # the entrant won households from the incumbent
    assert run.price_shift_per_kwh[1] == pytest.approx([-step, step])


def test_margin_rule_never_prices_below_break_even():
    imp, exp = _same(50)
    at_cost = _flat("at_cost", 0.18, adapt=MarginRule(0.01))  # wholesale + network charges
    market = RetailMarket((_flat("cheap", 0.15), at_cost), imp, exp, WEEK, WHOLESALE,
                          LogitChoice(0.2, 0.0))
    assert market.break_even_shift[1] == pytest.approx(0.0)
    run = market.run(6, np.random.default_rng(1), initial_retailer=np.ones(50, dtype=int))
    assert run.share[0, 1] < 1  # it lost households, but does not cut below cost
    assert run.price_shift_per_kwh[1, 1] == pytest.approx(0.0, abs=1e-12)
    assert (run.price_shift_per_kwh[:, 1] >= -1e-12).all()


def test_more_inertia_fewer_switches():
    imp, exp = _same(2000)
    retailers = (_flat("old", 0.34), _flat("new", 0.29))
    switched = [RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, LogitChoice(0.2, k))
                .run(12, np.random.default_rng(8)).switched.sum() for k in (0.0, 20.0, 45.0)]
    assert switched[0] > switched[1] > switched[2]


# ---------------------------------------------------------------- reproducibility
def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    imp, exp = _profiles(200, seed=5)
    retailers = (_flat("old", 0.34, adapt=MarginRule()), _flat("new", 0.28, adapt=MarginRule()))
    market = RetailMarket(retailers, imp, exp, WEEK, WHOLESALE, LogitChoice(0.2, 5.0))
    a, b = (market.run(12, np.random.default_rng(42)) for _ in range(2))
    c = market.run(12, np.random.default_rng(43))
    assert (a.retailer == b.retailer).all()
    assert (a.price_per_kwh == b.price_per_kwh).all()
    assert (a.profit == b.profit).all()
    assert (a.retailer != c.retailer).any()


# ---------------------------------------------------------------- the comparison
def test_comparison_with_the_incumbent_alone_and_a_p2p_market():
    imp, exp = _profiles(120, seed=9)
    incumbent = _flat("incumbent", 0.34, fee_per_month=8.0, cost_per_customer_month=3.0)
    entrants = [_flat("entrant", 0.30, fee_per_month=8.0, cost_per_customer_month=3.0,
                      adapt=BestResponse())]
    cmp = compare_retail(imp, exp, WEEK, WHOLESALE, incumbent, entrants, months=12,
                         rng=np.random.default_rng(3), price_cap_per_kwh=0.34)
    base = MONTH * bills_under({"i": incumbent.tariff}, imp, exp, WEEK)["i"].to_numpy() + 8.0
    assert cmp.incumbent_bill == pytest.approx(base)
    cost = MONTH * (0.18 * imp.sum(axis=0) - 0.08 * exp.sum(axis=0)) + 3.0
    assert cmp.incumbent_profit == pytest.approx((base - cost).sum())
    run = cmp.competition
    assert run.names == ("incumbent", "entrant")
    assert (run.initial == 0).all()

    p2p_week = base / MONTH - 1.0  # one less per household and week
    table = comparison_table(cmp, p2p_bills=p2p_week, p2p_supplier_profit=100.0)
    assert table.index.tolist() == ["incumbent", "retail competition", "p2p market"]
    inc, comp, p2p = (table.loc[c] for c in table.index)
    assert inc["bills_per_month"] == pytest.approx(base.sum())
    assert inc[["bill_saving_per_month", "consumer_surplus_change_per_month",
                "welfare_change_per_month"]].tolist() == [0.0, 0.0, 0.0]
    assert comp["bills_per_month"] == pytest.approx(run.bill[-1].sum())
    assert comp["supplier_profit_per_month"] == pytest.approx(run.profit[-1].sum())
    assert comp["incumbent_share"] == pytest.approx(run.share[-1, 0])
    assert comp["consumer_surplus_change_per_month"] == pytest.approx(
        (run.consumer_surplus[-1] + base).sum())
    assert p2p["bill_saving_per_month"] == pytest.approx(120 * MONTH)
    assert p2p["consumer_surplus_change_per_month"] == pytest.approx(120 * MONTH)
    assert p2p["supplier_profit_per_month"] == pytest.approx(100.0 * MONTH)
    for row in (comp, p2p):
        assert row["welfare_change_per_month"] == pytest.approx(
            row["consumer_surplus_change_per_month"] + row["supplier_profit_per_month"]
            - inc["supplier_profit_per_month"])
    assert p2p["households_paying_more"] == 0
    # capped at its own price, competition leaves nobody paying more
    assert comp["households_paying_more"] == 0
    assert comp["bill_saving_per_month"] >= -1e-9
    # without the P2P side, two rows; an unknown P2P profit is NaN
    assert len(comparison_table(cmp)) == 2
    assert np.isnan(comparison_table(cmp, p2p_week).loc["p2p market", "welfare_change_per_month"])


# ---------------------------------------------------------------- bad input
def _market(**kw):
    imp, exp = _same(3)
    args = {"retailers": (_flat("a", 0.3), _flat("b", 0.3)), "import_kwh": imp,
            "export_kwh": exp, "timeline": WEEK, "wholesale": WHOLESALE} | kw
    return RetailMarket(**args)


@pytest.mark.parametrize(("make", "field"), [
    (lambda: LogitChoice(0.0, 10.0), "sensitivity_per_currency"),
    (lambda: LogitChoice(0.2, -1.0), "switching_cost"),
    (lambda: LogitChoice(float("nan"), 1.0), "sensitivity_per_currency"),
    (lambda: BestResponse(step_per_kwh=0.0), "step_per_kwh"),
    (lambda: BestResponse(step_per_kwh=0.01, max_change_per_kwh=0.001), "max_change_per_kwh"),
    (lambda: MarginRule(-0.01), "step_per_kwh"),
    (lambda: Retailer("", Tariff("flat", 0.3, 0.05)), "retailer.name"),
    (lambda: Retailer("x", "flat"), "retailer.tariff"),  # type: ignore[arg-type]
    (lambda: _flat("x", 0.3, fee_per_month=float("inf")), "retailer.fee_per_month"),
    (lambda: Retailer("x", Tariff("flat", 0.3, 0.05), network_charge_per_kwh=-0.1),
     "retailer.network_charge_per_kwh"),
    (lambda: _flat("x", 0.3, cost_per_customer_month=-1.0), "retailer.cost_per_customer_month"),
    (lambda: _flat("x", 0.3, adapt="best"), "retailer.adapt"),
    (lambda: _market(retailers=()), "retailers"),
    (lambda: _market(retailers=(_flat("a", 0.3), _flat("a", 0.2))), "retailers"),
    (lambda: _market(retailers=(_flat("a", 0.3, adapt=MarginRule()),)), "retailers"),
    (lambda: _market(choice=0.2), "choice"),
    (lambda: _market(wholesale=np.ones(24)), "wholesale"),
    (lambda: _market(wholesale=np.full(168, np.nan)), "wholesale"),
    (lambda: _market(import_kwh=-np.ones((168, 3))), "import_kwh"),
    (lambda: _market(import_kwh=np.zeros((168, 3))), "import_kwh"),
    (lambda: _market(export_kwh=np.zeros((168, 2))), "export_kwh"),
    (lambda: _market(timeline="2026-03-02"), "timeline"),
    (lambda: _market(price_cap_per_kwh=0.25), "price_cap_per_kwh"),
    (lambda: _market(price_cap_per_kwh=0.0), "price_cap_per_kwh"),
    (lambda: _market().run(0, np.random.default_rng(0)), "months"),
    (lambda: _market().run(True, np.random.default_rng(0)), "months"),
    (lambda: _market().run(3, 42), "rng"),
    (lambda: _market().run(3, np.random.default_rng(0), initial_retailer=[0, 1, 2]),
     "initial_retailer"),
    (lambda: _market().run(3, np.random.default_rng(0), initial_retailer=[0, 1]),
     "initial_retailer"),
    (lambda: logit_choice([[1.0, 2.0]], [2], LogitChoice()), "current"),
    (lambda: logit_choice([1.0, 2.0], [0], LogitChoice()), "bills"),
    (lambda: logit_choice([[1.0, np.nan]], [0], LogitChoice()), "bills"),
    (lambda: compare_retail(*_same(3), WEEK, WHOLESALE, _flat("a", 0.3), [], 3,
                            np.random.default_rng(0)), "entrants"),
    (lambda: compare_retail(*_same(3), WEEK, WHOLESALE, "a", [_flat("b", 0.3)], 3,
                            np.random.default_rng(0)), "incumbent"),
    (lambda: comparison_table("table"), "comparison"),
])
def test_bad_input_is_refused_with_the_field_named(make, field):
    with pytest.raises(InputError) as info:
        make()
    assert info.value.field == field


def test_bad_p2p_figures_are_refused():
    cmp = compare_retail(*_same(3), WEEK, WHOLESALE, _flat("a", 0.3), [_flat("b", 0.3)], 2,
                         np.random.default_rng(0))
    with pytest.raises(InputError) as info:
        comparison_table(cmp, p2p_bills=[1.0, 2.0])
    assert info.value.field == "p2p_bills"
    with pytest.raises(InputError) as info:
        comparison_table(cmp, p2p_bills=[1.0, 2.0, 3.0], p2p_supplier_profit=float("nan"))
    assert info.value.field == "p2p_supplier_profit"


def test_a_retailers_error_names_the_retailer():
    with pytest.raises(InputError, match="retailer 'x'"):
        _flat("x", 0.3, fee_per_month=float("nan"))
