"""Whole runs with flexible devices: by rules and bidding, on every kind of market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.errors import InputError
from transactive.sim import Scenario, simulate
from transactive.sim.books import GAIN_PARTS

WINTER = {"time": {"start": "2026-01-12T00:00:00+01:00", "days": 2},
          "community": {"households": 16}, "seed": 3,
          "ev": {"share": 0.5}, "heat_pump": {"share": 0.5}, "shiftable": {"share": 0.5}}


def _run(control: str, **over):
    return simulate(Scenario.from_dict(WINTER).with_overrides(
        **{"flexibility.control": control, **over}))


def _check(run) -> None:
    """Energy and money balance every interval; the gain parts add up."""
    iv = run.intervals
    need = (iv["load_kwh"] - iv["unserved_kwh"] + iv["charge_kwh"] + iv["device_kwh"]
            - iv["pv_kwh"] - iv["discharge_kwh"])
    np.testing.assert_allclose(
        need, iv["import_kwh"] - iv["export_kwh"] + iv["counterparty_kwh"] - iv["curtailed_kwh"],
        atol=1e-7)
    np.testing.assert_allclose(iv["market_cost"], iv["operator_surplus"] + iv["utility_revenue"],
                               atol=1e-7)
    hh = run.households
    np.testing.assert_allclose(hh["bill_baseline"] - hh["bill_market"],
                               hh[list(GAIN_PARTS)].sum(axis=1), atol=1e-9)


@pytest.mark.parametrize("mechanism", ["network", "uniform", "pay_as_bid", "mcafee"])
@pytest.mark.parametrize("control", ["rules", "market"])
def test_flexible_runs_balance_and_keep_their_promises(mechanism, control):
    run = _run(control, **{"market.mechanism": mechanism, "time.days": 1})
    _check(run)
    assert run.intervals["device_kwh"].sum() > 0
    assert run.figures["ev_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert run.figures["comfort_violation_kh"] >= 0
    moved = run.figures["flexible_kwh"]
    assert moved == 0.0 if control == "rules" else moved > 0
    if control == "rules":  # the baseline is the same devices: nothing but the market differs
        np.testing.assert_allclose(run.households["flexibility_gain"], 0.0, atol=1e-9)


def test_rules_without_market_devices_leave_plain_runs_alone():
    plain = Scenario.from_dict({"time": {"days": 1}, "community": {"households": 8}})
    a = simulate(plain)
    b = simulate(plain.with_overrides(**{"flexibility.horizon_h": 12.0}))  # no device: no effect
    pd.testing.assert_frame_equal(a.intervals, b.intervals)


def test_the_same_seed_gives_the_same_flexible_run():
    a, b = _run("market"), _run("market")
    pd.testing.assert_frame_equal(a.intervals, b.intervals, check_exact=True)
    pd.testing.assert_frame_equal(a.households, b.households, check_exact=True)


def test_bad_device_sections_are_refused_with_the_field_named():
    for over, field in ((("ev.departure_hour", 20.0), "ev"),
                        (("heat_pump.band_k", 0.0), "heat_pump.band_k"),
                        (("shiftable.due_hour", 9.0), "shiftable"),
                        (("flexibility.control", "maybe"), "flexibility.control")):
        with pytest.raises(InputError) as err:
            Scenario.from_dict(WINTER).with_overrides(**dict([over]))
        assert err.value.field.startswith(field)


def test_a_fault_with_flexible_devices_is_refused_before_running():
    s = Scenario.from_dict({**WINTER, "fault": {"start": "2026-01-12T10:00:00+01:00"}})
    with pytest.raises(InputError) as err:
        simulate(s)
    assert err.value.field == "fault.start"


def test_devices_trading_as_their_own_agents_trade_more_in_the_market():
    home = _run("market", **{"market.mechanism": "uniform", "time.days": 1})
    m2m = _run("market", **{"market.mechanism": "uniform", "time.days": 1,
                            "flexibility.trading": "devices"})
    _check(m2m)
    assert m2m.intervals["volume_kwh"].sum() > home.intervals["volume_kwh"].sum()


@pytest.mark.parametrize("mechanism", ["network", "uniform"])
def test_model_predictive_control_balances(mechanism):
    run = _run("mpc", **{"market.mechanism": mechanism, "time.days": 1})
    _check(run)
    assert run.intervals["device_kwh"].sum() > 0
    assert run.figures["flexible_kwh"] > 0


def test_model_predictive_control_costs_no_household_more_at_the_tariff_than_rules():
    """Each home's plan minimises its devices' cost at the tariff (perfect
    foresight of its load, PV and weather): the rules' schedule is one it
    could have chosen, so against the same devices on rules the schedule's
    part of the gain (flexibility_gain) is at least zero for every household,
    with the cars ready and the houses within their band. On a copper plate
    the market's prices then only add to it."""
    run = _run("mpc", **{"market.mechanism": "uniform", "tariff.kind": "tou",
                         "shiftable.share": 0.0})
    gain = run.households["flexibility_gain"]
    assert gain.sum() > 1.0
    assert (gain > -0.01).all()
    assert run.figures["ev_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert run.figures["comfort_violation_kh"] == pytest.approx(0.0, abs=1e-3)


def test_the_households_draw_with_and_without_the_market():
    """draw_kwh is what the households' meters read, summed (market and utility
    energy, before feeder losses); on rules on a copper plate the devices do
    what they do without the market, so the baseline's draw is the same."""
    run = _run("rules", **{"market.mechanism": "uniform", "time.days": 1})
    iv = run.intervals
    np.testing.assert_allclose(iv["draw_kwh"], iv["import_kwh"] - iv["export_kwh"]
                               + iv["bought_kwh"] - iv["sold_kwh"], atol=1e-9)
    np.testing.assert_allclose(iv["draw_kwh"], iv["baseline_draw_kwh"], atol=1e-9)
    bidding = _run("market", **{"market.mechanism": "uniform", "time.days": 1})
    assert not np.allclose(bidding.intervals["draw_kwh"], bidding.intervals["baseline_draw_kwh"])
    np.testing.assert_allclose(bidding.intervals["baseline_draw_kwh"], iv["baseline_draw_kwh"],
                               atol=1e-9)  # the same baseline: devices on rules, no market


def test_bidding_keeps_the_peak_within_an_envelope_that_rules_overload():
    """Under an import envelope the devices on plain rules ask for more than
    the feeder takes (load shed at the peak); bidding, the same devices stay
    within it. peak_demand_kw adds the shed load back to the draw."""
    from transactive.analysis.metrics import summary

    over = {"tariff.kind": "rtp", "grid.import_limit_kw": 2000.0}
    rules, bidding = (summary(_run(control, **over)) for control in ("rules", "market"))
    assert rules["unserved_kwh"] > 1.0
    assert rules["peak_demand_kw"] > rules["peak_draw_kw"] + 1.0
    assert bidding["unserved_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert bidding["peak_demand_kw"] == pytest.approx(bidding["peak_draw_kw"])
    assert bidding["peak_demand_kw"] < rules["peak_demand_kw"] - 5.0
    # the bidding run's baseline is the rules' run: the same devices, the same seed
    assert bidding["baseline_peak_demand_kw"] == pytest.approx(rules["peak_demand_kw"])


def test_every_ev_departure_is_kept_and_adds_up_to_the_figures(tmp_path):
    from transactive.analysis.report import render_report
    from transactive.sim.recorder import read_results

    run = simulate(Scenario.from_dict(WINTER).with_overrides(
        **{"flexibility.control": "market", "time.days": 2}), run_dir=tmp_path / "run")
    dep = run.ev_departures
    assert dep is not None
    assert len(dep) == run.figures["ev_departures"] > 0
    lacked = (dep["required_kwh"] - dep["soc_kwh"]).clip(lower=0).sum()
    assert lacked == pytest.approx(run.figures["ev_shortfall_kwh"], abs=1e-9)
    assert (dep["interval"] > 0).all()
    back = read_results(tmp_path / "run")
    assert back.ev_departures is not None
    assert len(back.ev_departures) == len(dep)
    assert "<h3>EVs at departure</h3>" in render_report(back)


def test_an_offer_at_the_price_cap_waits_for_the_substation():
    """On a feeder the utility sells at the retail price, which caps every
    device's limit: an offer at the cap (a battery or a car that values its
    energy at least that) is ordered just above it, so it never ties with the
    substation (whose split the LP would have to choose) and is dispatched only
    inside its home."""
    run = _run("market", **{"ev.v2g_share": 1.0})
    orders, iv = run.orders, run.intervals
    assert orders is not None
    retail = iv.set_index("interval")["retail_price"].reindex(orders["interval"]).to_numpy()
    sell = orders["side"].to_numpy() == -1
    at_cap = np.isclose(orders["limit_price"].to_numpy(), retail + 1e-6, rtol=0, atol=1e-12)
    assert (sell & at_cap).any()  # such offers exist in a winter run
    assert (orders.loc[sell & at_cap, "accepted"] == 0).all()
    assert not (sell & (orders["limit_price"].to_numpy() == retail)).any()
