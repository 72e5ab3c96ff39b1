"""A virtual power plant in a run (``[vpp]``): the aggregator's commitment, its
dispatch and delivery, its money beside the bills, and its energy in the
community's balances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transactive.agents.flexibility import Segments
from transactive.errors import InputError
from transactive.orders import BUY, SELL
from transactive.sim import Scenario, simulate
from transactive.sim.books import GAIN_REASONS
from transactive.sim.flex_config import VppConfig
from transactive.sim.vpp import RunVpp

WINTER = {"time": {"start": "2026-01-12T00:00:00+01:00", "days": 3},
          "community": {"households": 16}, "seed": 3, "tariff": {"kind": "rtp"},
          "market": {"mechanism": "uniform"}, "flexibility": {"control": "market"},
          "ev": {"share": 0.5}, "heat_pump": {"share": 0.5}, "shiftable": {"share": 0.5},
          "vpp": {"enabled": True, "share": 0.8}}


def _run(**over):
    return simulate(Scenario.from_dict(WINTER).with_overrides(**over))


@pytest.fixture(scope="module")
def run():
    return _run()


def test_hand_worked_commitment_dispatch_and_money():
    """Two households, a battery-like fleet (codes 2): committed one interval
    ahead at the wholesale price, delivered as far as the fleet's segments of
    the moment clear, the shortfall learned, the money by the marginal rule."""
    cfg = VppConfig(enabled=True, margin_per_kwh=0.02, sharing="marginal",
                    network_charge_per_kwh=0.10, imbalance_price_per_kwh=0.05,
                    gate_closure_h=0.25)
    vpp = RunVpp(cfg, np.array([True, True]), np.array([0.10, 0.10, 0.30]), 96, lead=1)
    owner = np.array([2, 2, 2], np.int8)
    # interval 0: the fleet can take 2 + 1 kWh at limits 0.40 and 0.15; nothing committed yet
    seg0 = Segments(household=[0, 1, 1], side=[BUY, BUY, SELL], quantity_kwh=[2.0, 1.0, 1.5],
                    price_per_kwh=[0.40, 0.15, 0.50])
    step = vpp.step(0, seg0, owner)
    assert step.energy_kwh.tolist() == [0.0, 0.0, 0.0]
    # interval 1 (price 0.10 + 0.10 charge): interval 0's curve clears the 0.40 buy
    # (0.40 - 0.02 >= 0.20), not the 0.15 one: award 2 kWh up; the fleet now has 1.5
    seg1 = Segments(household=[0, 1], side=[BUY, SELL], quantity_kwh=[1.5, 1.5],
                    price_per_kwh=[0.40, 0.50])
    step = vpp.step(1, seg1, owner[:2])
    assert step.energy_kwh.tolist() == [1.5, 0.0]
    assert step.up_kwh.tolist() == [1.5, 0.0]
    np.testing.assert_allclose(step.payment, [1.5 * (0.20 + 0.02), 0.0])  # p + margin
    # interval 2 (price 0.30): interval 1's curve clears neither its buy (0.40 - 0.02
    # < 0.40) nor its sell (0.50 + 0.02 > 0.30): nothing committed, nothing dispatched
    vpp.step(2, Segments(household=[1], side=[SELL], quantity_kwh=[1.0],
                                price_per_kwh=[0.20]), owner[:1])
    tab = vpp.table()
    assert tab["award_up_kwh"].tolist() == [0.0, 2.0, 0.0]
    assert tab["dispatched_up_kwh"].tolist() == [0.0, 1.5, 0.0]
    np.testing.assert_allclose(tab["shortfall_kwh"], [0.0, 0.5, 0.0])
    np.testing.assert_allclose(tab["penalty"], [0.0, 0.025, 0.0])
    np.testing.assert_allclose(tab["revenue"], [0.0, -0.30, 0.0])  # 1.5 kWh at 0.20
    np.testing.assert_allclose(tab["network_charges"], [0.0, 0.15, 0.0])
    np.testing.assert_allclose(tab["margin"], [0.0, 0.03, 0.0])
    np.testing.assert_allclose(tab["households_receipt"], tab["revenue"] - tab["margin"])
    # the share delivered at that time of day is learned: 1 + 0.5 * (0.75 - 1)
    assert vpp._deliverable[1].tolist() == [0.875, 1.0]


def test_a_run_balances_and_its_money_adds_up(run):
    iv, hh, v = run.intervals, run.households, run.vpp
    need = (iv["load_kwh"] - iv["unserved_kwh"] + iv["charge_kwh"] + iv["device_kwh"]
            - iv["pv_kwh"] - iv["discharge_kwh"])
    np.testing.assert_allclose(need, iv["import_kwh"] - iv["export_kwh"]
                               + iv["counterparty_kwh"] - iv["curtailed_kwh"] + iv["vpp_kwh"],
                               atol=1e-7)
    np.testing.assert_allclose(iv["vpp_kwh"], v["dispatched_up_kwh"] - v["dispatched_down_kwh"],
                               atol=1e-9)
    np.testing.assert_allclose(hh["vpp_kwh"].sum(), iv["vpp_kwh"].sum(), atol=1e-7)
    np.testing.assert_allclose(hh["gain"], hh["bill_baseline"] - hh["bill_market"]
                               - hh["vpp_payment"], atol=1e-9)
    parts = [name for name in GAIN_REASONS if name in hh]
    assert "vpp_gain" in parts
    np.testing.assert_allclose(hh["gain"], hh[parts].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(-hh["vpp_payment"].sum(), v["households_receipt"].sum(),
                               atol=1e-9)
    np.testing.assert_allclose(v["households_receipt"], v["revenue"] - v["margin"], atol=1e-9)
    # the award is committed ahead, the dispatch never beyond it
    assert (v["dispatched_up_kwh"] <= v["award_up_kwh"] + 1e-9).all()
    assert (v["dispatched_down_kwh"] <= v["award_down_kwh"] + 1e-9).all()
    assert (v.loc[:3, ["award_up_kwh", "award_down_kwh"]] == 0).all().all()  # one hour ahead
    assert v["dispatched_up_kwh"].sum() > 1.0
    np.testing.assert_allclose(v["delivered_kwh"] + v["shortfall_kwh"],
                               (v["award_up_kwh"] - v["award_down_kwh"]).abs(), atol=1e-9)


def test_the_summary_states_it_and_savings_count_the_aggregators_money(run):
    from transactive.analysis.metrics import summary
    s = summary(run)
    assert s["vpp_households"] >= int(run.households["vpp_kwh"].ne(0).sum()) > 0
    assert 0 < s["vpp_delivered_share"] <= 1
    np.testing.assert_allclose(s["savings"], s["bills_baseline"] - s["bills_market"]
                               + s["vpp_households_receipt"], atol=1e-9)
    np.testing.assert_allclose(  # where the savings come from, exactly
        s["savings"], s["utility_revenue_baseline"] - s["utility_revenue_market"]
        - s["operator_surplus"] + s["vpp_households_receipt"], atol=1e-7)
    plain = summary(_run(**{"vpp.enabled": False, "time.days": 1}))
    assert plain["vpp_award_kwh"] is None
    assert "vpp_gain" not in plain


def test_settled_and_written_it_verifies_and_reads_back(tmp_path):
    from transactive.sim.recorder import read_results
    run = _run(**{"time.days": 2})
    folder = tmp_path / "run"
    written = simulate(run.scenario, run_dir=folder)
    assert written.settlement is not None
    assert written.settlement.reconciled
    back = read_results(folder)
    assert back.vpp is not None
    np.testing.assert_allclose(back.vpp["revenue"], written.vpp["revenue"])
    assert run.vpp.equals(written.vpp)  # the same seed, the same aggregator


def test_bad_vpp_sections_are_refused_with_the_field_named():
    with pytest.raises(InputError, match=r"vpp\.enabled.*control"):
        Scenario.from_dict({**WINTER, "flexibility": {"control": "rules"}})
    with pytest.raises(InputError, match=r"vpp\.share"):
        Scenario.from_dict({**WINTER, "vpp": {"enabled": True, "share": 1.5}})


def test_beside_the_network_market_the_feeder_carries_it_and_sheds_nothing_for_it():
    """On the feeder the market clears with the aggregator's energy as fixed
    loads; where that would shed load the market alone serves (or cannot be
    carried), the operator curtails the aggregator, never the households."""
    run = _run(**{"market.mechanism": "network", "community.households": 50, "seed": 42,
                  "time.days": 3})
    iv, v = run.intervals, run.vpp
    assert v is not None
    assert iv["unserved_kwh"].sum() < 1e-6
    np.testing.assert_allclose(iv["grid_import_kwh"] - iv["grid_export_kwh"],
                               iv["counterparty_kwh"] + iv["vpp_kwh"], atol=1e-6)
    np.testing.assert_allclose(v["households_receipt"], v["revenue"] - v["margin"], atol=1e-9)
    assert (v["curtailed_kwh"] >= 0).all()
    assert v["curtailed_kwh"].sum() > 0.1  # the night's cheap hours, all the cars at once
    assert (v["dispatched_up_kwh"] <= v["award_up_kwh"] + 1e-9).all()


def test_fixed_energy_on_the_feeder_prices_as_a_load_the_market_does_not_pay_for():
    """``fixed_kwh`` of clear_network: the feeder's prices and every order's
    dispatch as with the same energy as a buy that is always served at its
    bus, but the substation's exchange and the utility's cost are the
    market's own."""
    from transactive.markets.network import clear_network
    from transactive.orders import OrderBatch
    orders = OrderBatch(id=[0, 1, 2, 3], participant=["a", "b", "c", "e"],
                        side=[BUY, SELL, BUY, SELL], price=[0.30, 0.05, 0.20, 0.15],
                        quantity=[100.0, 80.0, 60.0, 120.0], node=[17, 5, 30, 12])
    both = OrderBatch(id=[0, 1, 2, 3, 4], participant=["a", "b", "c", "e", "d"],
                      side=[BUY, SELL, BUY, SELL, BUY], price=[0.30, 0.05, 0.20, 0.15, 10.0],
                      quantity=[100.0, 80.0, 60.0, 120.0, 150.0], node=[17, 5, 30, 12, 24])
    fixed = np.zeros(33)
    fixed[24] = 150.0
    for cap in (math.inf, 0.15):  # an envelope that binds: the bid at 0.30 is cut, sets it
        kw = {"import_price": 0.28, "export_price": 0.05, "dt_h": 0.25, "kw_per_unit": 1.0,
              "import_max_mw": cap, "inelastic_demand": False}
        outside = clear_network(orders, fixed_kwh=fixed, **kw)
        inside = clear_network(both, **kw)
        np.testing.assert_allclose(outside.node_price, inside.node_price, atol=1e-9)
        np.testing.assert_allclose(outside.accepted, inside.accepted[:4], atol=1e-6)
        own = inside.info["grid_import_kwh"] - 150.0  # the market's own exchange
        np.testing.assert_allclose(outside.info["grid_import_kwh"], max(own, 0.0), atol=1e-6)
        np.testing.assert_allclose(outside.info["utility_cost"],
                                   max(own, 0.0) * 0.28 - max(-own, 0.0) * 0.05, atol=1e-6)
    assert outside.clearing_price == pytest.approx(0.30)
    assert 0 < outside.accepted[0] < 100.0
    with pytest.raises(InputError, match="fixed_kwh"):
        clear_network(orders, fixed_kwh=np.zeros(5), **kw)


def test_the_merit_order_with_fixed_energy_is_the_lps_optimum_where_it_says_so():
    """Where clear_network_merit calls a row exact with energy outside the
    market on the feeder, clear_network with the same ``fixed_kwh`` finds the
    same dispatch, price, exchange and utility cost."""
    from transactive.markets.network import clear_network, clear_network_merit
    from transactive.orders import OrderBatch
    rng = np.random.default_rng(7)
    exact_rows = 0
    for _ in range(30):
        n = 12
        node = rng.integers(1, 33, n)
        qty = rng.uniform(1.0, 30.0, n) * np.where(rng.random(n) < 0.5, 1.0, -1.0)
        limit = np.round(rng.uniform(0.01, 0.40, n), 3)
        fixed = np.zeros(33)
        fixed[rng.integers(1, 33, 4)] = rng.uniform(-40.0, 80.0, 4)
        kw = {"dt_h": 0.25, "kw_per_unit": 1.0, "import_max_mw": 0.6,
              "inelastic_demand": False}
        merit = clear_network_merit(qty[None], limit[None], node, [0.28], [0.05],
                                    fixed_kwh=fixed[None], **kw)
        assert merit is not None
        if not merit.exact[0]:
            continue
        exact_rows += 1
        buy = qty > 0
        orders = OrderBatch(id=np.arange(n), participant=np.arange(n),
                            side=np.where(buy, BUY, SELL), price=limit, quantity=np.abs(qty),
                            node=node)
        lp = clear_network(orders, import_price=0.28, export_price=0.05, fixed_kwh=fixed, **kw)
        np.testing.assert_allclose(merit.accepted[0], lp.accepted, atol=1e-6)
        np.testing.assert_allclose(lp.node_price, merit.price[0], atol=1e-9)
        np.testing.assert_allclose(merit.grid_import_kwh[0], lp.info["grid_import_kwh"],
                                   atol=1e-6)
        np.testing.assert_allclose(merit.utility_cost[0], lp.info["utility_cost"], atol=1e-6)
    assert exact_rows >= 10
