"""Islanded microgrid dispatch: priorities, the black-start reserve, scarcity
prices, commitment; cases worked by hand, a greedy reference and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import InputError
from transactive.grid.island import Battery, dispatch_island

VOLL, FLEX = 10.0, 0.5


def _battery(**over):
    kw = {"energy_kwh": 100.0, "soc_kwh": 30.0, "p_charge_kw": 50.0, "p_discharge_kw": 50.0,
          "reserve_kwh": 30.0, "eta_charge": 1.0, "eta_discharge": 1.0}
    kw.update(over)
    return Battery(**kw)


def _run(demand, pv, battery, islanded, **kw):
    return dispatch_island(dt_h=1.0, demand_kw=demand, value_per_kwh=[VOLL, FLEX],
                           class_names=["critical", "flexible"], gen_max_kw=[pv],
                           gen_cost_per_kwh=[0.0], battery=battery, islanded=islanded, **kw)


def test_critical_load_is_served_first_and_the_price_rises_to_scarcity():
    # islanded throughout, battery at its reserve and unable to charge: only
    # PV, 15 then 5 kW
    res = _run([[10, 10], [20, 20]], [15, 5], _battery(p_charge_kw=0.0), [True, True])
    # 15 kW: critical in full, 5 kW of flexible; flexible sets the price
    assert res.served_kw[:, 0].tolist() == pytest.approx([10.0, 5.0])
    assert res.price_per_kwh[0] == pytest.approx(FLEX)
    # 5 kW: critical shed, flexible shed entirely first; price = VoLL
    assert res.served_kw[:, 1].tolist() == pytest.approx([5.0, 0.0])
    assert res.curtailed_kw[0, 1] == pytest.approx(5.0)
    assert res.price_per_kwh[1] == pytest.approx(VOLL)
    # the black-start reserve (30 kWh) is never touched, even to save critical load
    assert res.soc_kwh.tolist() == pytest.approx([30.0, 30.0, 30.0])
    assert res.discharge_kw.tolist() == pytest.approx([0.0, 0.0])


def test_the_battery_moves_energy_to_where_it_is_worth_most():
    # the same, but the battery may charge: 5 kW of PV at t=0 is worth more
    # saved for critical load at t=1 than spent on flexible load now
    res = _run([[10, 10], [20, 20]], [15, 5], _battery(), [True, True])
    assert res.served_kw[0].tolist() == pytest.approx([10.0, 10.0])
    assert res.served_kw[1].tolist() == pytest.approx([0.0, 0.0])
    assert res.charge_kw[0] == pytest.approx(5.0)
    assert res.soc_kwh[-1] == pytest.approx(30.0)
    assert res.price_per_kwh[0] == pytest.approx(res.price_per_kwh[1])


def test_price_falls_when_supply_is_ample():
    # no PV at t=0 (battery at its reserve: critical load is shed), PV floods the
    # island at t=1: the price falls from VoLL to the cost of PV (free)
    res = _run([[10, 10, 10], [20, 20, 20]], [0, 200, 0], _battery(), [True, True, True])
    assert res.price_per_kwh[0] == pytest.approx(VOLL)
    assert res.price_per_kwh[1] == pytest.approx(0.0)
    assert res.curtailed_kw[:, 1].sum() == pytest.approx(0.0)
    assert res.charge_kw[1] == pytest.approx(30.0)  # stores what t=2 needs
    assert res.curtailed_kw[:, 2].sum() == pytest.approx(0.0)


def test_connected_intervals_price_at_the_import_price_and_prepare_for_the_fault():
    battery = _battery(eta_charge=0.9, eta_discharge=0.9, soc_kwh=40.0)
    demand = [[10, 10, 10, 10], [40, 40, 40, 40]]
    res = _run(demand, [0, 0, 0, 0], battery, [False, False, True, True],
               import_price_per_kwh=0.2, export_price_per_kwh=0.05)
    assert res.price_per_kwh[:2].tolist() == pytest.approx([0.2, 0.2])
    assert res.served_kw[:, :2].sum() == pytest.approx(100.0)
    # before the fault the battery fills (energy in the island is worth more)
    assert res.soc_kwh[2] == pytest.approx(100.0)
    # in the island: 70 kWh above the reserve deliver 70 * 0.9 = 63 kWh: all
    # critical load (20) and 43 of flexible; flexible is marginal
    assert res.served_kw[0, 2:].sum() == pytest.approx(20.0)
    assert res.served_kw[1, 2:].sum() == pytest.approx(43.0)
    assert res.price_per_kwh[2:].tolist() == pytest.approx([FLEX, FLEX])
    assert res.soc_kwh[-1] == pytest.approx(30.0)
    assert res.import_kw[2:].tolist() == [0.0, 0.0]
    # the state of charge follows the efficiencies exactly
    steps = np.diff(res.soc_kwh)
    np.testing.assert_allclose(steps, 0.9 * res.charge_kw - res.discharge_kw / 0.9, atol=1e-9)


def test_a_diesel_with_a_minimum_output_is_committed_or_not():
    diesel = {"gen_max_kw": [[100, 100]], "gen_cost_per_kwh": [0.3], "gen_min_kw": [30.0]}
    full = _battery(soc_kwh=100.0)
    res = dispatch_island(dt_h=1.0, demand_kw=[[100, 20]], value_per_kwh=[VOLL],
                          battery=full, islanded=[True, True], **diesel)
    # 120 kWh of load, 70 in the battery (at most 50 kW): the diesel covers the
    # rest at t=0, between its limits, and sets the price in both intervals
    assert res.committed[0].tolist() == [True, False]
    assert res.gen_kw[0].tolist() == pytest.approx([50.0, 0.0])
    assert res.served_kw.sum() == pytest.approx(120.0)
    assert res.price_per_kwh.tolist() == pytest.approx([0.3, 0.3])
    # at the reserve, with 20 kW of load: the diesel must run at its 30 kW
    # minimum and the battery takes the other 10 kW
    low = _battery(soc_kwh=30.0)
    res = dispatch_island(dt_h=1.0, demand_kw=[[20]], value_per_kwh=[VOLL], battery=low,
                          islanded=[True], gen_max_kw=[[100]], gen_cost_per_kwh=[0.3],
                          gen_min_kw=[30.0])
    assert res.committed[0, 0]
    assert res.gen_kw[0, 0] == pytest.approx(30.0)
    assert res.charge_kw[0] == pytest.approx(10.0)
    assert res.served_kw[0, 0] == pytest.approx(20.0)
    # with nowhere to put the surplus the diesel cannot run: critical load is shed
    shut = dispatch_island(dt_h=1.0, demand_kw=[[20]], value_per_kwh=[VOLL],
                           battery=_battery(soc_kwh=30.0, p_charge_kw=0.0), islanded=[True],
                           gen_max_kw=[[100]], gen_cost_per_kwh=[0.3], gen_min_kw=[30.0])
    assert not shut.committed[0, 0]
    assert shut.served_kw[0, 0] == pytest.approx(0.0)
    assert shut.price_per_kwh[0] == pytest.approx(VOLL)


@st.composite
def _single_interval(draw):
    n_gen, n_cls = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    gmax = draw(st.lists(st.floats(0, 50), min_size=n_gen, max_size=n_gen))
    cost = draw(st.lists(st.floats(0, 1), min_size=n_gen, max_size=n_gen))
    dem = draw(st.lists(st.floats(0, 50), min_size=n_cls, max_size=n_cls))
    val = draw(st.lists(st.floats(0, 20), min_size=n_cls, max_size=n_cls))
    return gmax, cost, dem, val


@settings(max_examples=60, deadline=None)
@given(_single_interval())
def test_one_islanded_interval_is_the_greedy_merit_order(case):
    gmax, cost, dem, val = case
    res = dispatch_island(dt_h=1.0, demand_kw=np.array(dem)[:, None], value_per_kwh=val,
                          gen_max_kw=np.array(gmax)[:, None], gen_cost_per_kwh=cost,
                          battery=_battery(), islanded=[True])
    # greedy: match the most valuable load with the cheapest supply while value >= cost
    supply = sorted(zip(cost, gmax, strict=True))
    demand = sorted(zip(val, dem, strict=True), reverse=True)
    welfare, i, j = 0.0, 0, 0
    s_left = supply[0][1] if supply else 0.0
    d_left = demand[0][1] if demand else 0.0
    while i < len(supply) and j < len(demand) and demand[j][0] >= supply[i][0]:
        q = min(s_left, d_left)
        welfare += q * (demand[j][0] - supply[i][0])
        s_left -= q
        d_left -= q
        if s_left <= 0:
            i += 1
            s_left = supply[i][1] if i < len(supply) else 0.0
        if d_left <= 0:
            j += 1
            d_left = demand[j][1] if j < len(demand) else 0.0
    # HiGHS holds the balance to 1e-7 kW: welfare to that times the dearest value
    scale = (sum(dem) + sum(gmax)) * max([*val, *cost, 1.0])
    assert res.welfare == pytest.approx(welfare, abs=1e-6 + 1e-7 * scale)
    # the price clears the interval: loads valued above it are served in full,
    # below it not at all; supply cheaper than it runs in full
    price = res.price_per_kwh[0]
    for k in range(len(dem)):
        if val[k] > price + 1e-7:
            assert res.served_kw[k, 0] == pytest.approx(dem[k], abs=1e-7)
        if val[k] < price - 1e-7:
            assert res.served_kw[k, 0] == pytest.approx(0.0, abs=1e-7)
    for g in range(len(gmax)):
        if cost[g] < price - 1e-7:
            assert res.gen_kw[g, 0] == pytest.approx(gmax[g], abs=1e-7)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_invariants_over_a_horizon(seed):
    rng = np.random.default_rng(seed)
    t = 12
    demand = np.vstack([rng.uniform(5, 15, t), rng.uniform(0, 30, t)])
    pv = np.clip(rng.normal(15, 15, t), 0, None)
    start = int(rng.integers(0, t))
    islanded = np.zeros(t, bool)
    islanded[start:start + int(rng.integers(1, t))] = True
    battery = _battery(soc_kwh=float(rng.uniform(30, 100)), eta_charge=0.92,
                       eta_discharge=0.94)
    res = dispatch_island(dt_h=0.5, demand_kw=demand, value_per_kwh=[VOLL, FLEX],
                          gen_max_kw=[pv], gen_cost_per_kwh=[0.02], battery=battery,
                          islanded=islanded, import_price_per_kwh=0.25,
                          export_price_per_kwh=0.05, import_max_kw=40.0)
    tol = 1e-7
    assert (res.soc_kwh >= battery.reserve_kwh - tol).all()  # reserve never used
    assert (res.served_kw <= demand + tol).all()
    assert (res.import_kw[islanded] == 0).all()
    supply = res.gen_kw.sum(axis=0) + res.discharge_kw - res.charge_kw + res.import_kw \
        - res.export_kw
    np.testing.assert_allclose(supply, res.served_kw.sum(axis=0), atol=1e-6)
    shed = res.curtailed_kw[0] > 1e-6
    assert (res.served_kw[1, shed] <= 1e-6).all()  # flexible goes before critical
    np.testing.assert_allclose(res.price_per_kwh[shed], VOLL, rtol=1e-7)
    assert (res.price_per_kwh <= VOLL + tol).all()
    assert (res.price_per_kwh >= -tol).all()
    assert not ((res.charge_kw > 1e-6) & (res.discharge_kw > 1e-6)).any()


def test_bad_inputs():
    with pytest.raises(InputError) as err:
        _battery(reserve_kwh=50.0, soc_kwh=40.0)
    assert err.value.field == "battery.soc_kwh"
    with pytest.raises(InputError) as err:
        _battery(eta_charge=1.2)
    assert err.value.field == "battery.eta_charge"
    with pytest.raises(InputError) as err:
        _run([[10, 10], [20, 20]], [1, 2, 3], _battery(), [True, True])
    assert err.value.field == "gen_max_kw"
    with pytest.raises(InputError) as err:
        _run([[10, -1], [20, 20]], [1, 2], _battery(), [True, True])
    assert (err.value.field, err.value.row) == ("demand_kw", 0)
    with pytest.raises(InputError) as err:
        _run([[10, 10], [20, 20]], [1, 2], _battery(), [True])
    assert err.value.field == "islanded"
    with pytest.raises(InputError) as err:
        _run([[10, 10], [20, 20]], [1, 2], _battery(), [False, False],
             import_price_per_kwh=0.1, export_price_per_kwh=0.2)
    assert err.value.field == "export_price_per_kwh"
    with pytest.raises(InputError) as err:
        dispatch_island(dt_h=1.0, demand_kw=[[1.0]], value_per_kwh=[1.0, 2.0],
                        gen_max_kw=[[1.0]], gen_cost_per_kwh=[0.0], battery=_battery(),
                        islanded=[True])
    assert err.value.field == "value_per_kwh"
