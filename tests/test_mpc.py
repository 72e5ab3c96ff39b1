"""Model-predictive control of the devices: hand-worked plans, the receding
horizon against the whole run's optimum, and refused inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from transactive.agents.devices import BatteryFleet
from transactive.agents.ev import EVFleet
from transactive.agents.heatpump import HeatPumpFleet, cop
from transactive.agents.mpc import DEVICES, MPCController, plan
from transactive.agents.weather import outdoor_temperature_c
from transactive.errors import InputError
from transactive.orders import BUY, SELL
from transactive.timeline import Timeline


def _battery(eta: float = 0.9, n: int = 1) -> BatteryFleet:
    return BatteryFleet(capacity_kwh=np.full(n, 10.0), power_kw=np.full(n, 5.0),
                        efficiency_charge=np.full(n, eta), efficiency_discharge=np.full(n, eta),
                        soc_min_frac=np.zeros(n))


def _car(plugged: list[bool], soc_kwh: float, *, efficiency: float = 0.9,
         required_kwh: float = 10.0, v2g: bool = False) -> EVFleet:
    """One car over ``len(plugged)`` 1-hour intervals; it leaves after its
    last plugged-in interval."""
    T = len(plugged)
    plug = np.array(plugged)[:, None]
    last = max(k for k, p in enumerate(plugged) if p)
    departure = np.where(np.arange(T) <= last, last + 1, T)[:, None].astype(np.int64)
    ev = EVFleet(capacity_kwh=np.array([40.0]), charger_kw=np.array([5.0]),
                 efficiency=np.array([efficiency]), required_kwh=np.array([required_kwh]),
                 v2g=np.array([v2g]), plugged=plug, departure=departure,
                 trip_kwh=np.zeros((T, 1)), dt_h=1.0)
    ev.soc_kwh = np.array([soc_kwh])
    return ev


def _house(p_max_kw: float = 3.0) -> HeatPumpFleet:
    hp = HeatPumpFleet(r_k_per_kw=np.array([5.0]), c_kwh_per_k=np.array([10.0]),
                       p_max_kw=np.array([p_max_kw]), setpoint_c=np.array([20.0]),
                       band_k=np.array([1.0]), dt_h=1.0, gains_kw=0.0)
    hp.indoor_c = np.array([19.0])
    return hp


# ---------------------------------------------------------------- by hand
def test_a_battery_charges_cheap_and_discharges_dear_when_the_spread_pays_the_losses():
    kw = {"feed_in_per_kwh": [0.05, 0.05], "base_net_kwh": [[0.0], [2.0]], "dt_h": 1.0,
          "battery": _battery(0.9), "battery_soc_kwh": [0.0]}
    p = plan(prices_per_kwh=[0.10, 0.30], **kw)
    # 2 kWh of load at 0.30 served from 2 / 0.81 kWh bought at 0.10
    assert p.battery_kwh[:, 0] == pytest.approx([2.0 / 0.81, -2.0])
    assert p.battery_soc_kwh[:, 0] == pytest.approx([2.0 / 0.9, 0.0], abs=1e-9)
    assert p.cost == pytest.approx(0.10 * 2.0 / 0.81)
    assert p.net_kwh[:, 0] == pytest.approx([2.0 / 0.81, 0.0], abs=1e-9)
    assert (p.net_kwh >= -1e-9).all()  # never charged to sell at the feed-in
    # 0.26 / 0.81 = 0.321 > 0.30: the spread does not pay the losses
    q = plan(prices_per_kwh=[0.26, 0.30], **kw)
    assert np.abs(q.battery_kwh).max() == pytest.approx(0.0, abs=1e-9)
    assert q.cost == pytest.approx(0.60)


def test_the_marginal_value_is_the_price_the_household_faces():
    p = plan(prices_per_kwh=[0.10, 0.30], feed_in_per_kwh=[0.05, 0.05],
             base_net_kwh=[[0.0], [2.0]], dt_h=1.0, battery=_battery(0.9),
             battery_soc_kwh=[0.0])
    # interval 0 imports: one more kWh costs 0.10; interval 1 is served by the
    # battery, whose kWh there costs 0.10 / 0.81
    assert p.marginal_value_per_kwh[:, 0] == pytest.approx([0.10, 0.10 / 0.81])


def test_an_ev_holds_its_energy_at_departure_charging_in_the_cheapest_plugged_hours():
    ev = _car([True, True, True, False], soc_kwh=2.0)
    prices = [0.30, 0.10, 0.20, 0.05]  # the cheapest hour comes after it leaves
    p = plan(prices_per_kwh=prices, feed_in_per_kwh=[0.0] * 4, base_net_kwh=np.zeros((4, 1)),
             dt_h=1.0, ev=ev)
    need = 8.0 / 0.9  # at the plug, to add 8 kWh at 90 %
    assert p.ev_kwh[:, 0] == pytest.approx([0.0, 5.0, need - 5.0, 0.0], abs=1e-9)
    assert p.ev_soc_kwh[2, 0] == pytest.approx(10.0)
    assert p.cost == pytest.approx(0.10 * 5.0 + 0.20 * (need - 5.0))
    assert ev.soc_kwh[0] == 2.0  # the fleet is read, not changed


def test_a_v2g_car_feeds_back_only_above_its_requirement():
    ev = _car([True, True, True, False], soc_kwh=14.0, efficiency=1.0, v2g=True)
    p = plan(prices_per_kwh=[0.40, 0.10, 0.30, 0.30], feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=[[4.0], [0.0], [0.0], [0.0]], dt_h=1.0, ev=ev)
    # covers the dear hour's load with its spare 4 kWh, nothing more
    assert p.ev_kwh[:, 0] == pytest.approx([-4.0, 0.0, 0.0, 0.0], abs=1e-9)
    assert p.ev_soc_kwh[2, 0] == pytest.approx(10.0)


def test_a_heat_pump_preheats_before_a_price_peak_within_its_band():
    hp = _house(p_max_kw=6.0)
    out = np.zeros(4)
    p = plan(prices_per_kwh=[0.10, 0.10, 1.00, 1.00], feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=np.zeros((4, 1)), dt_h=1.0, heat_pump=hp, outdoor_c=out)
    a, gain = math.exp(-1.0 / 50.0), 5.0 * float(cop(0.0))  # K per kW of electric power
    hold = 19.0 / gain                      # holds 19 degC at 0 degC outdoors
    top = 19.0 / a**2                       # coasts from here to 19 over the peak
    heat = (top - a * 19.0) / ((1 - a) * gain)
    assert p.heat_pump_kwh[:, 0] == pytest.approx([hold, heat, 0.0, 0.0], abs=1e-7)
    assert p.indoor_c[:, 0] == pytest.approx([19.0, top, a * top, 19.0], abs=1e-7)
    assert p.indoor_c.max() < 21.0
    assert p.comfort_kh.sum() == pytest.approx(0.0, abs=1e-7)
    assert p.cost == pytest.approx(0.10 * (hold + heat))
    # a narrow band cannot carry the heat over the peak: it heats there too
    narrow = _house()
    narrow.band_k[:] = 0.2
    narrow.indoor_c[:] = 19.8
    q = plan(prices_per_kwh=[0.10, 0.10, 1.00, 1.00], feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=np.zeros((4, 1)), dt_h=1.0, heat_pump=narrow, outdoor_c=out)
    assert q.heat_pump_kwh[2:, 0].sum() > 0.1
    assert q.indoor_c.max() <= 20.2 + 1e-7


def test_the_plan_steps_exactly_as_the_fleet_does():
    hp = _house()
    p = plan(prices_per_kwh=[0.10, 0.10, 1.00, 1.00], feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=np.zeros((4, 1)), dt_h=1.0, heat_pump=hp, outdoor_c=np.zeros(4))
    for k in range(4):
        hp.advance(0.0, p.heat_pump_kwh[k])
        assert hp.indoor_c[0] == pytest.approx(p.indoor_c[k, 0], abs=1e-9)


def test_a_pump_too_small_for_the_band_pays_the_comfort_penalty_instead_of_failing():
    hp = _house(p_max_kw=0.2)
    p = plan(prices_per_kwh=[0.3] * 4, feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=np.zeros((4, 1)), dt_h=1.0, heat_pump=hp, outdoor_c=np.full(4, -10.0))
    assert p.heat_pump_kwh[:, 0] == pytest.approx([0.2] * 4)  # runs flat out
    assert p.comfort_kh.sum() > 0
    assert p.objective == pytest.approx(p.cost + 100.0 * p.comfort_kh.sum())


def test_the_segments_are_the_first_interval_as_must_run():
    ev = _car([True, True, True, False], soc_kwh=2.0)
    p = plan(prices_per_kwh=[0.05, 0.30, 0.30, 0.30], feed_in_per_kwh=[0.04] * 4,
             base_net_kwh=[[0.0], [2.0], [0.0], [0.0]], dt_h=1.0, battery=_battery(0.95),
             battery_soc_kwh=[5.0], ev=ev)
    seg, owner = p.segments(price_floor=0.0, price_cap=0.30)
    assert [DEVICES[o] for o in owner] == ["battery", "ev"]
    assert seg.side.tolist() == [BUY, BUY]
    assert seg.quantity_kwh == pytest.approx([p.battery_kwh[0, 0], p.ev_kwh[0, 0]])
    assert seg.price_per_kwh.tolist() == [0.30, 0.30]
    assert seg.must_run.all()
    later = plan(prices_per_kwh=[0.30, 0.05], feed_in_per_kwh=[0.04] * 2,
                 base_net_kwh=[[2.0], [0.0]], dt_h=1.0, battery=_battery(0.95),
                 battery_soc_kwh=[5.0])
    seg, _ = later.segments(price_floor=0.01, price_cap=0.30)
    assert seg.side.tolist() == [SELL]
    assert seg.price_per_kwh.tolist() == [0.01]


# ------------------------------------------------- the receding horizon
def _community(n: int = 5, days: int = 2, seed: int = 3):
    tl = Timeline(pd.Timestamp("2026-01-12", tz="Europe/Berlin"), periods=96 * days)
    rng = np.random.default_rng(seed)
    T, hours = tl.periods, np.arange(tl.periods) * 0.25 % 24
    price = (0.28 + 0.08 * np.sin(2 * np.pi * (hours - 11) / 24)
             + 0.03 * rng.standard_normal(T)).clip(0.1)
    sun = np.clip(np.sin(np.pi * (hours - 8) / 8), 0, None)
    base = rng.uniform(0.05, 0.25, (T, n)) - sun[:, None] * rng.uniform(0.2, 0.8, n)
    has = np.ones(n, bool)
    battery = BatteryFleet.build(has, rng)
    ev = EVFleet.draw(tl, has, rng, v2g_share=0.4)
    hp = HeatPumpFleet.draw(has, rng, dt_h=tl.dt_h)
    outdoor = outdoor_temperature_c(tl, rng)
    series = {"prices_per_kwh": price, "feed_in_per_kwh": np.full(T, 0.08),
              "base_net_kwh": base, "outdoor_c": outdoor, "dt_h": tl.dt_h}
    return series, battery, ev, hp


@pytest.mark.parametrize(("warm_start", "group"), [(True, 16), (True, 2), (False, None)])
def test_with_perfect_foresight_the_receding_horizon_costs_the_whole_run_optimum(warm_start,
                                                                                group):
    series, battery, ev, hp = _community()
    soc = battery.initial_soc_kwh()
    whole = plan(**series, battery=battery, battery_soc_kwh=soc, ev=ev, heat_pump=hp,
                 households_per_lp=None)  # the one LP of the whole run, solved once
    assert whole.comfort_kh.sum() == pytest.approx(0.0, abs=1e-6)  # the band holds
    assert np.abs(whole.battery_kwh).sum() > 10  # the devices do move energy
    mpc = MPCController(**series, battery=battery, ev=ev, heat_pump=hp, warm_start=warm_start,
                        households_per_lp=group)
    done = mpc.run(soc)
    assert done.objective == pytest.approx(whole.objective, rel=1e-6)
    assert done.cost == pytest.approx(whole.cost, rel=1e-6)
    assert done.cost_per_household == pytest.approx(whole.cost_per_household, rel=1e-5,
                                                    abs=1e-6)
    # the fleets ran it: cars left with what they needed, houses kept in the band
    assert ev.shortfall_kwh.sum() == pytest.approx(0.0, abs=1e-6)
    assert hp.comfort_violation_kh.sum() == pytest.approx(0.0, abs=1e-6)
    assert done.comfort_kh.sum() == pytest.approx(0.0, abs=1e-6)


def test_a_day_ahead_is_horizon_enough_for_the_batteries_here():
    """A 24-hour horizon over two days: the batteries' cost is the whole run's
    optimum. (Its last plans, re-solved from the kept basis, once met HiGHS's
    'unknown' after a bad basis change; that block is solved again from the
    crash basis.)"""
    series, battery, _, _ = _community()
    soc = battery.initial_soc_kwh()
    whole = plan(**series, battery=battery, battery_soc_kwh=soc)
    done = MPCController(**series, horizon=96, battery=battery).run(soc)
    assert done.objective == pytest.approx(whole.objective, rel=1e-6)


def test_the_lp_solved_by_blocks_has_the_optimum_of_the_lp_solved_whole():
    series, battery, ev, hp = _community(n=7, days=1)
    kw = {**series, "battery": battery, "battery_soc_kwh": battery.initial_soc_kwh(),
          "ev": ev, "heat_pump": hp}
    whole = plan(**kw, households_per_lp=None)
    for group in (1, 3, 16):
        split = plan(**kw, households_per_lp=group)
        assert split.objective == pytest.approx(whole.objective, rel=1e-9)
        assert split.cost_per_household == pytest.approx(whole.cost_per_household, abs=1e-7)


def test_households_without_devices_just_pay_for_their_base_energy():
    base = np.array([[1.0, -1.0, 0.0], [2.0, 0.5, -0.5]])
    kw = {"prices_per_kwh": [0.3, 0.2], "feed_in_per_kwh": [0.1, 0.1], "base_net_kwh": base,
          "dt_h": 1.0}
    expected = [0.3 + 0.4, -0.1 + 0.1, -0.05]
    assert plan(**kw).cost_per_household == pytest.approx(expected)
    none = BatteryFleet(capacity_kwh=np.zeros(3), power_kw=np.zeros(3),
                        efficiency_charge=np.ones(3), efficiency_discharge=np.ones(3),
                        soc_min_frac=np.zeros(3))
    p = plan(**kw, battery=none, battery_soc_kwh=np.zeros(3))
    assert p.cost_per_household == pytest.approx(expected)
    assert p.marginal_value_per_kwh.tolist() == [[0.3, 0.1, 0.1], [0.2, 0.2, 0.1]]


def test_a_short_horizon_costs_at_least_the_optimum_and_warm_equals_cold():
    series, battery, ev, hp = _community(days=1)
    soc = battery.initial_soc_kwh()
    whole = plan(**series, battery=battery, battery_soc_kwh=soc, ev=ev, heat_pump=hp)
    runs = []
    for warm in (True, False):
        _, b, e, h = _community(days=1)
        runs.append(MPCController(**series, horizon=24, battery=b, ev=e, heat_pump=h,
                                  warm_start=warm).run(soc))
    assert runs[0].objective == pytest.approx(runs[1].objective, rel=1e-6)
    assert runs[0].objective >= whole.objective * (1 - 1e-9)


def test_a_horizon_short_of_the_departure_still_leaves_the_car_its_time():
    """Six hours ahead, a car home at 18:00 does not see its 07:30 departure;
    its floor keeps it from selling (V2G) or waiting away what it needs."""
    series, battery, ev, hp = _community(days=2)
    done = MPCController(**series, horizon=24, battery=battery, ev=ev,
                         heat_pump=hp).run(battery.initial_soc_kwh())
    assert ev.shortfall_kwh.sum() == pytest.approx(0.0, abs=1e-6)
    assert len(ev.soc_at_departure_kwh) >= 1
    assert (done.ev_kwh < 0).any()  # V2G cars still feed back what they can spare


def test_the_controller_plans_from_the_fleets_states_now():
    series, battery, ev, hp = _community(days=1)
    mpc = MPCController(**series, horizon=8, battery=battery, ev=ev, heat_pump=hp)
    soc = battery.initial_soc_kwh()
    first = mpc.plan(10, soc)
    assert first.t == 10
    assert first.battery_kwh.shape == (8, 5)
    assert mpc.plan(95, soc).battery_kwh.shape == (1, 5)  # the series ends
    hp.indoor_c = hp.indoor_c - 0.5
    assert mpc.plan(10, soc).heat_pump_kwh[0].sum() > first.heat_pump_kwh[0].sum()


# ---------------------------------------------------------------- refused
def _ok(**over):
    kw = {"prices_per_kwh": [0.10, 0.30], "feed_in_per_kwh": [0.05, 0.05],
          "base_net_kwh": [[0.0], [2.0]], "dt_h": 1.0, "battery": _battery(),
          "battery_soc_kwh": [0.0]}
    return {**kw, **over}


@pytest.mark.parametrize(("over", "field"), [
    ({"feed_in_per_kwh": [0.05, 0.35]}, "feed_in_per_kwh"),
    ({"prices_per_kwh": [0.1, np.nan]}, "prices_per_kwh"),
    ({"base_net_kwh": [[0.0, 1.0], [2.0, 1.0]]}, "battery"),
    ({"base_net_kwh": [[0.0]]}, "base_net_kwh"),
    ({"battery_soc_kwh": [11.0]}, "battery_soc_kwh"),
    ({"battery_soc_kwh": None}, "battery_soc_kwh"),
    ({"dt_h": 0.0}, "dt_h"),
    ({"heat_pump": _house()}, "outdoor_c"),
    ({"comfort_price_per_kh": -1.0}, "comfort_price_per_kh"),
    ({"households_per_lp": 0}, "households_per_lp"),
])
def test_bad_inputs_are_refused(over, field):
    with pytest.raises(InputError) as err:
        plan(**_ok(**over))
    assert err.value.field == field


def test_an_ev_that_cannot_hold_its_requirement_charges_at_full_power():
    """It cannot reach 20 kWh (2 h x 5 kW x 0.9 = 9): the plan charges flat
    out, however dear, and the car leaves short (a run reports the shortfall)."""
    ev = _car([True, True, False], soc_kwh=0.0, required_kwh=20.0)
    p = plan(prices_per_kwh=[0.9, 0.2, 0.2], feed_in_per_kwh=[0.0] * 3,
             base_net_kwh=np.zeros((3, 1)), dt_h=1.0, ev=ev)
    np.testing.assert_allclose(p.ev_kwh[:2, 0], [5.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(p.ev_soc_kwh[1, 0], 9.0, atol=1e-6)


def test_a_car_short_of_its_requirement_still_charges_no_more_than_it_needs_later():
    """Reachable but tight: at 0.9 it charges only what the floor forces."""
    ev = _car([True, True, True, False], soc_kwh=0.0, required_kwh=9.0)
    p = plan(prices_per_kwh=[0.9, 0.2, 0.2, 0.2], feed_in_per_kwh=[0.0] * 4,
             base_net_kwh=np.zeros((4, 1)), dt_h=1.0, ev=ev)
    assert p.ev_kwh[0, 0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(p.ev_soc_kwh[2, 0], 9.0, atol=1e-6)


def test_a_horizon_beyond_the_ev_timeline_and_a_wrong_dt_are_refused():
    ev = _car([True, True, False], soc_kwh=10.0)
    kw = {"prices_per_kwh": [0.2] * 3, "feed_in_per_kwh": [0.0] * 3,
          "base_net_kwh": np.zeros((3, 1)), "ev": ev}
    with pytest.raises(InputError, match="beyond the EV"):
        plan(**kw, dt_h=1.0, t=1)
    with pytest.raises(InputError, match="differs from the ev fleet"):
        plan(**kw, dt_h=0.25)
    with pytest.raises(InputError, match="horizon"):
        MPCController(**kw, dt_h=1.0, horizon=0)
