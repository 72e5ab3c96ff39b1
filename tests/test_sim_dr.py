"""Demand-response events in a run: when they are called, what they pay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.errors import InputError
from transactive.sim import Scenario, simulate
from transactive.sim.demand_response import plan_events
from transactive.sim.flex_config import DemandResponseConfig

RUN = {"time": {"start": "2026-01-05T00:00:00+01:00", "days": 9},  # Monday
       "community": {"households": 10}, "seed": 5, "tariff": {"kind": "rtp"},
       "ev": {"share": 0.5}, "heat_pump": {"share": 0.5},
       "demand_response": {"enabled": True, "events": 1, "method": "pjm_high4of5"}}


def test_events_fall_on_dear_weekdays_with_history():
    s = Scenario.from_dict(RUN).with_overrides(**{"demand_response.events": 2,
                                                  "time.days": 16})
    tl = s.time.timeline()
    retail = np.linspace(0.2, 0.3, tl.periods)  # later days dearer
    retail[9 * 96:] = 0.2  # but none after day 8
    plan = plan_events(s.demand_response, tl, retail)
    assert plan.days.tolist() == [7, 8]  # weekdays 6 and 7 (5 weekdays of history before)
    hours = np.asarray(tl.hour_of_day)[plan.mask]
    assert ((hours >= 17) & (hours < 20)).all()
    assert plan.mask.sum() == 2 * 12


def test_events_leave_days_to_test_the_baseline_on():
    """Calling every eligible day would leave the baseline's errors nothing to
    be measured on: refused before the run, naming the field."""
    s = Scenario.from_dict(RUN).with_overrides(**{"demand_response.events": 2})
    tl = s.time.timeline()
    with pytest.raises(InputError) as err:
        plan_events(s.demand_response, tl, np.full(tl.periods, 0.3))
    assert err.value.field == "demand_response.events"
    assert "fewer events" in err.value.problem


def test_a_run_too_short_for_the_baseline_is_refused_naming_the_field():
    cfg = DemandResponseConfig(enabled=True, events=1, method="caiso_10in10")
    tl = Scenario.from_dict(RUN).time.timeline()
    with pytest.raises(InputError) as err:
        plan_events(cfg, tl, np.full(tl.periods, 0.3))
    assert err.value.field == "demand_response.events"
    assert "run longer" in err.value.problem


@pytest.mark.parametrize("control", ["rules", "market"])
def test_a_run_with_events_reports_negawatts(control):
    run = simulate(Scenario.from_dict(RUN).with_overrides(**{"flexibility.control": control}))
    f = run.figures
    assert f["dr_event_days"] == 1
    for key in ("dr_reduction_kwh", "dr_payment", "dr_rebound_kwh"):
        assert f[key] >= 0
    assert f["dr_payment"] == pytest.approx(0.5 * f["dr_reduction_kwh"])
    assert np.isfinite(f["dr_baseline_bias_pct"])


def test_devices_that_bid_draw_less_during_an_event_than_without_the_program():
    market = Scenario.from_dict(RUN).with_overrides(**{"flexibility.control": "market"})
    with_dr = simulate(market)
    without = simulate(market.with_overrides(**{"demand_response.enabled": False}))
    tl = market.time.timeline()
    mask = plan_events(market.demand_response, tl,
                       np.asarray(with_dr.intervals["retail_price"])).mask
    drawn = {name: float(r.intervals.loc[mask, "grid_import_kwh"].sum())
             for name, r in (("with", with_dr), ("without", without))}
    assert drawn["with"] < drawn["without"]


def test_without_a_program_no_dr_figures():
    run = simulate(Scenario.from_dict({"time": {"days": 1}, "community": {"households": 4}}))
    assert "dr_payment" not in run.figures
    assert isinstance(run.intervals, pd.DataFrame)


def test_the_event_days_interval_by_interval_add_up_to_the_figures(tmp_path):
    """dr_events: the community's baseline and meter on each event day; the
    counted reduction (floored per household and interval) sums to what the
    program paid for, and lies only in the event hours; the report shows it."""
    from transactive.analysis.report import render_report
    from transactive.sim.recorder import read_results

    sc = Scenario.from_dict({"time": {"start": "2026-01-05T00:00:00+01:00", "days": 16},
                             "community": {"households": 10},
                             "demand_response": {"enabled": True, "events": 2,
                                                 "method": "pjm_high4of5"}})
    result = simulate(sc, run_dir=tmp_path / "run")
    ev = result.dr_events
    assert ev is not None
    assert sorted(ev["event"].unique().tolist()) == [0, 1]
    assert len(ev) == 2 * 96
    assert ev["counted_reduction_kwh"].sum() == pytest.approx(result.figures["dr_reduction_kwh"])
    assert (ev.loc[~ev["in_event"], "counted_reduction_kwh"] == 0).all()
    assert ev["in_event"].sum() == 2 * 12  # 17-20 h, 15-minute intervals
    # the community's reduction is at most the counted one (floors only add)
    inside = ev[ev["in_event"]]
    assert (inside["baseline_kwh"] - inside["metered_kwh"]).sum() <= \
        inside["counted_reduction_kwh"].sum() + 1e-9
    back = read_results(tmp_path / "run")
    assert back.dr_events is not None
    assert "<h2>Demand response</h2>" in render_report(back)



def test_negawatts_are_measured_on_the_meter_after_load_shed():
    """On rules, a feeder that cannot carry the load sheds some of it: the
    household's meter (``meter_kwh``: bought - sold + import - export) reads
    less than its net position, and the program measures the meter."""
    sc = Scenario.from_dict({**RUN, "grid": {"import_limit_kw": 400.0}})
    run = simulate(sc)
    h, hh = run.household_intervals, run.households
    assert h is not None
    assert run.dr_events is not None
    per_household = h.groupby("household")["meter_kwh"].sum().to_numpy()
    drawn = (hh["bought_kwh"] - hh["sold_kwh"] + hh["import_kwh"] - hh["export_kwh"]).to_numpy()
    np.testing.assert_allclose(per_household, drawn, atol=1e-3)
    assert hh["unserved_kwh"].sum() > 1.0
    assert (h["net_kwh"] - h["meter_kwh"]).max() > 0.1  # shed: drew less than it needed
    plan = plan_events(sc.demand_response, sc.time.timeline(),
                       np.asarray(run.intervals["retail_price"]))
    meter = h["meter_kwh"].to_numpy().reshape(-1, 10).sum(axis=1).reshape(-1, 96)
    np.testing.assert_allclose(run.dr_events["metered_kwh"], meter[plan.days].ravel(),
                               atol=1e-3)


def test_programs_run_on_the_meters_whatever_the_run_records():
    """Demand response and retail competition start from every household's
    meter, kept for them even where the results store keeps only the summary
    (a long run): the same figures and tables as a run that records every
    household-interval, without that table."""
    sc = Scenario.from_dict({**RUN, "retail": {"enabled": True, "months": 2}})
    runs = {level: simulate(sc.with_overrides(**{"output.record": level}))
            for level in ("households", "summary")}
    assert runs["households"].household_intervals is not None
    assert runs["summary"].household_intervals is None
    keys = [k for k in runs["households"].figures if k.startswith(("dr_", "retail_"))]
    assert len(keys) > 6
    for k in keys:
        assert runs["summary"].figures[k] == runs["households"].figures[k], k
    for table in ("dr_events", "retail"):
        pd.testing.assert_frame_equal(getattr(runs["summary"], table),
                                      getattr(runs["households"], table))


def test_negawatts_offered_into_the_wholesale_market_are_paid_its_price():
    """With 'wholesale' compensation the reduction is supply offered at the
    program's price: bought, at the day-ahead price, in the event intervals
    where that price reaches the offer, and nowhere else; the devices see what
    it earns (the payment per kWh) in their forecast."""
    sc = Scenario.from_dict({**RUN, "flexibility": {"control": "market"}})
    w = sc.tariff.wholesale(np.random.SeedSequence(sc.seed).spawn(5)[4])
    prices = w.price_per_kwh(sc.time.timeline())
    tl = sc.time.timeline()
    plan = plan_events(sc.demand_response, tl, prices + 0.2)
    offer = float(np.median(prices[plan.mask]))  # half the event intervals clear
    wholesale = sc.with_overrides(**{"demand_response.compensation": "wholesale",
                                     "demand_response.price_per_kwh": offer})
    run = simulate(wholesale)
    ev = run.dr_events
    in_event = ev["in_event"].to_numpy()
    bought = in_event & (prices[ev["interval"]] >= offer)
    assert 0 < bought.sum() < in_event.sum()
    np.testing.assert_allclose(ev["price_per_kwh"], np.where(bought, prices[ev["interval"]],
                                                             0.0))
    np.testing.assert_allclose(run.figures["dr_payment"],
                               float((ev["counted_reduction_kwh"] * ev["price_per_kwh"]).sum()))
    assert run.figures["dr_payment"] > 0
    # an offer above every price is never bought: the reduction is measured, not paid
    never = simulate(wholesale.with_overrides(**{"demand_response.price_per_kwh": 99.0}))
    assert never.figures["dr_payment"] == 0.0
    assert never.figures["dr_reduction_kwh"] >= 0.0
    with pytest.raises(InputError, match="compensation"):
        Scenario.from_dict({**RUN, "demand_response": {**RUN["demand_response"],
                                                       "compensation": "lmp"}})
