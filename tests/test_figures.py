"""The key figures mean their labels: checked against independent reckonings,
hand-worked cases and odd communities."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactive.analysis.metrics import CENT, gini, lorenz_curve, summary
from transactive.errors import InputError
from transactive.sim import Scenario, read_results, simulate
from transactive.sim.market import feeder_scale
from transactive.sim.rundir import prepare_run_dir, run_folder_name
from transactive.sim.scenario import load_scenario


def _gini_pairs(values):
    """The definition, pair by pair: sum |y_i - y_j| / (2 n sum |y|)."""
    v = list(values)
    scale = sum(abs(x) for x in v)
    if not v or scale == 0:
        return 0.0
    pairs = sum(abs(a - b) for a, b in itertools.product(v, v))
    return pairs / (2 * len(v) * scale)


def test_gini_hand_worked_cases():
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 0]) == 0.0
    # one of four holds all: (1/(2*4*4)) * 2 * 3 * 4 = 0.75, in any order
    assert gini([0, 4, 0, 0]) == pytest.approx(0.75)
    # one loses what another gains: ordered pairs sum to 24, over 2 * 4 * (2 + 2) = 32
    assert gini([0, 2, 0, -2]) == pytest.approx(0.75)
    # ordered pairs of 1, 2, 3 differ by 8 in all, over 2 * 3 * 6; unsorted input too
    assert gini([3, 1, 2]) == pytest.approx(8 / 36)


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=30))
def test_gini_is_the_pairwise_definition_and_stays_in_the_unit_interval(values):
    g = gini(values)
    assert g == pytest.approx(_gini_pairs(values), rel=1e-9, abs=1e-12)
    assert -1e-12 <= g <= 1 + 1e-12


def test_lorenz_curve_of_signed_values_dips_then_reaches_one():
    x, y = lorenz_curve([3, -1, 0])
    assert x.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert y.tolist() == pytest.approx([0, -0.5, -0.5, 1.0])


def _scenario(**sections):
    base = {"community": {"households": 12}, "time": {"days": 1}, "seed": 3}
    return Scenario.from_dict(base).with_overrides(**sections)


@pytest.fixture(scope="module")
def uniform_run():
    return simulate(_scenario(**{"market.mechanism": "uniform"}))


def test_baseline_bill_is_imports_at_retail_less_exports_at_feed_in(uniform_run):
    r = uniform_run
    hi = r.household_intervals.merge(r.intervals[["interval", "retail_price", "feed_in_price"]])
    net = hi["net_kwh"].astype(np.float64)
    own = (np.maximum(net, 0) * hi["retail_price"] - np.maximum(-net, 0) * hi["feed_in_price"])
    by_household = own.groupby(hi["household"]).sum().to_numpy()
    # the per-interval store keeps float32 energy: a cent is far above its noise
    np.testing.assert_allclose(r.households["bill_baseline"], by_household, atol=1e-4)


def test_savings_are_baseline_less_market_and_where_the_money_goes(uniform_run):
    s = summary(uniform_run)
    hh = uniform_run.households
    assert s["savings"] > 0  # truthful bidding in a double auction: nobody loses, some gain
    assert s["savings"] == pytest.approx((hh["bill_baseline"] - hh["bill_market"]).sum())
    assert s["savings"] == pytest.approx(hh["gain"].sum())
    assert s["households_worse_off"] == 0
    assert s["savings"] == pytest.approx(
        s["utility_revenue_baseline"] - s["utility_revenue_market"] - s["operator_surplus"])
    assert 0 < s["savings_share"] <= 1
    assert s["savings_share"] == pytest.approx(s["savings"] / s["baseline_spending"])
    assert s["bills_baseline"] == pytest.approx(s["baseline_spending"] - s["baseline_earnings"])
    # a double auction's buyers and sellers meet: all market energy is peer-to-peer
    assert s["p2p_kwh"] == pytest.approx(s["market_bought_kwh"])
    assert s["p2p_kwh"] == pytest.approx(s["market_sold_kwh"])
    orders = uniform_run.orders
    buys = orders[orders["side"] == 1]
    assert s["buyer_price_per_kwh"] == pytest.approx(buys["payment"].sum() / buys["accepted"].sum())
    iv = uniform_run.intervals
    assert (iv["feed_in_price"].min() <= s["seller_price_per_kwh"] <= s["buyer_price_per_kwh"]
            <= iv["retail_price"].max())


def test_a_community_without_pv_trades_nothing_peer_to_peer():
    for mechanism in ("network", "amm", "uniform"):
        r = simulate(_scenario(**{"community.pv_share": 0.0, "community.battery_share": 0.0,
                                  "market.mechanism": mechanism}))
        s = summary(r)
        assert s["p2p_kwh"] == 0.0, mechanism
        assert s["p2p_share_of_load"] == 0.0
        assert s["utility_import_kwh"] == pytest.approx(s["load_kwh"], rel=1e-9)
        assert s["seller_price_per_kwh"] is None
        json.dumps(s, allow_nan=False)


@pytest.mark.parametrize("mechanism", ["network", "uniform", "pay_as_bid", "book", "mcafee",
                                       "vcg", "amm", "muda"])
def test_every_design_gives_strict_json_and_shares_that_are_shares(mechanism):
    r = simulate(_scenario(**{"market.mechanism": mechanism, "community.pv_share": 1.0}))
    s = summary(r)
    json.dumps(s, allow_nan=False)
    assert 0 <= s["p2p_kwh"] <= min(s["market_bought_kwh"], s["market_sold_kwh"]) + 1e-9
    assert s["p2p_share_of_load"] <= 1
    if s["pool_lp_pnl"] is None:  # no money created: households cannot save more than spent
        assert s["savings_share"] <= 1
    money = (s["utility_revenue_baseline"] - s["utility_revenue_market"] - s["operator_surplus"]
             - (s["pool_lp_pnl"] or 0.0))
    assert s["savings"] == pytest.approx(money, abs=1e-9)
    gains = r.households["gain"].to_numpy()
    counted = np.where(np.abs(gains) >= CENT, gains, 0.0)
    assert s["households_better_off"] == int((counted > 0).sum())
    if not counted.any():
        assert s["gini_gains"] is None  # "no gains", never a Gini of rounding noise


def test_worse_off_households_are_named_with_why():
    r = simulate(_scenario(**{"community.households": 30}))  # the network design
    hh = r.households
    worse = hh["gain"] <= -CENT
    assert (hh.loc[worse, "worse_off_reason"] != "").all()
    assert (hh.loc[~worse, "worse_off_reason"] == "").all()
    s = summary(r)
    assert s["households_worse_off"] == int(worse.sum())
    if s["households_worse_off"]:
        assert any("worse off" in w for w in s["warnings"])


def test_an_amm_shows_what_its_liquidity_providers_lose():
    s = summary(simulate(_scenario(**{"market.mechanism": "amm"})))
    assert s["pool_lp_pnl"] is not None
    assert s["operator_surplus"] == 0.0
    assert s["pool_opening_value"] == pytest.approx(2 * 12 * 5.0 * 0.18)


def test_the_feeder_stands_for_the_community_whatever_its_size():
    from transactive.grid.cases import load_case

    feeder = load_case("ieee33")
    design_kw = float(feeder.bus_load_mw.sum()) * 1000
    assert design_kw == pytest.approx(3715.0)
    assert feeder_scale(None, feeder, 50 * 3500.0) == pytest.approx(3715 * 1500 / 175_000)
    assert feeder_scale(None, feeder, 1000 * 3500.0) == pytest.approx(1.592, abs=1e-3)
    assert feeder_scale(None, None, 1.0) is None
    big = simulate(Scenario.from_dict({"community": {"households": 400}, "time": {"days": 1},
                                       "output": {"record": "summary"}}))
    s = summary(big)
    assert s["unserved_kwh"] == 0.0
    assert s["kw_per_unit"] == pytest.approx(design_kw * 1500 / big.households["annual_kwh"].sum())


def test_a_shedding_feeder_says_so():
    s = summary(simulate(_scenario(**{"grid.kw_per_unit": 400.0})))
    assert s["unserved_kwh"] > 0
    assert any(w.startswith("load shed") for w in s["warnings"])
    assert any("value of lost load" in w for w in s["warnings"])


@pytest.mark.parametrize(("field", "value"), [
    ("community.annual_kwh_mean", 1e12), ("community.pv_kw_max", 1e9),
    ("tariff.energy_price_per_kwh", 1e6), ("grid.kw_per_unit", 0.0),
    ("tariff.currency", "euro"), ("name", "x" * 500),
])
def test_absurd_inputs_are_refused_with_the_field(field, value):
    with pytest.raises(InputError) as err:
        _scenario(**{field: value})
    assert err.value.field == field


def test_a_run_folder_holds_one_run(tmp_path):
    folder = tmp_path / "run"
    r = simulate(_scenario(**{"market.mechanism": "uniform"}), run_dir=folder)
    back = read_results(folder)
    assert back.settlement is not None
    assert back.settlement.reconciled == r.settlement.reconciled
    assert back.figures == dict(r.figures)
    with pytest.raises(InputError, match="not empty"):
        simulate(_scenario(), run_dir=folder)
    # overwrite replaces the whole run: no ledger of the old run stays beside the new
    unsettled = _scenario(**{"settlement.mode": "off"})
    simulate(unsettled, run_dir=folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["results.sqlite"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="does not write"):
        prepare_run_dir(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        prepare_run_dir(tmp_path / "file")


def test_names_never_escape_their_folder():
    assert run_folder_name("../../x") == "x"
    assert "/" not in run_folder_name("a/b\\c")
    assert run_folder_name("...") == "run"


def test_a_case_file_resolves_relative_to_the_scenario_file(tmp_path, monkeypatch):
    from transactive.grid.cases import _data

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "feeder.m").write_text(
        _data().joinpath("case33bw.m").read_text(encoding="utf-8"))
    (tmp_path / "s.toml").write_text('[grid]\ncase = "cases/feeder.m"\n')
    monkeypatch.chdir("/")
    sc = load_scenario(tmp_path / "s.toml")
    assert sc.grid.case == str(tmp_path / "cases" / "feeder.m")


def test_the_utility_supplies_nothing_while_islanded():
    fault = {"fault.start": "2026-06-01T18:00:00+02:00", "fault.hours": 6.0}
    s = summary(simulate(_scenario(**fault)))  # network: the substation is the counterparty
    assert s["intervals_islanded"] == 24
    # LinDistFlow is lossless: what came through the substation is what the utility sold
    assert s["utility_import_kwh"] == pytest.approx(s["grid_import_kwh"], rel=1e-9)
    auction = summary(simulate(_scenario(**fault, **{"market.mechanism": "uniform"})))
    assert auction["counterparty_kwh_in"] == 0.0  # a double auction has no counterparty
    assert auction["counterparty_kwh_out"] == 0.0


def test_a_failed_run_leaves_nothing_behind(tmp_path):
    # vickrey sells one lot of whole units: a community's kWh are refused at once
    bad = _scenario(**{"market.mechanism": "vickrey"})
    with pytest.raises(InputError, match="whole units"):
        simulate(bad, run_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError):
        simulate(bad, run_dir=tmp_path / "mine")
    assert list((tmp_path / "mine").iterdir()) == []  # the user's empty folder stays
