"""The community islanded over a fault window: cases worked by hand, the
aggregate dispatch conserved, every battery within its limits, invariants
over random communities, bad input."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linprog

from transactive.agents.devices import BatteryFleet
from transactive.errors import InputError
from transactive.grid.island import dispatch_island
from transactive.sim.island import IslandOutcome, _water_fill, island_window

VOLL, FLEX = 10.0, 1.0
TOL = 1e-9


def _fleet(cap, power, eta=1.0, soc_min_frac=0.0, eta_d=None):
    n = len(cap)
    eta_c = np.broadcast_to(np.asarray(eta, float), (n,))
    return BatteryFleet(
        capacity_kwh=np.asarray(cap, float), power_kw=np.asarray(power, float),
        efficiency_charge=eta_c,
        efficiency_discharge=eta_c if eta_d is None else np.broadcast_to(eta_d, (n,)),
        soc_min_frac=np.broadcast_to(np.asarray(soc_min_frac, float), (n,)))


def _run(load, pv, soc, fleet, *, dt_h=1.0, share=0.5, reserve=0.2, voll=VOLL, flex=FLEX):
    return island_window(load_kw=np.asarray(load, float), pv_kw=np.asarray(pv, float),
                         soc_kwh=np.asarray(soc, float), fleet=fleet, dt_h=dt_h,
                         critical_share=share, critical_value_per_kwh=voll,
                         flexible_value_per_kwh=flex, reserve_frac=reserve)


def _floor(fleet, soc0, reserve):
    return np.minimum(soc0, np.maximum(reserve * fleet.capacity_kwh, fleet.soc_min_kwh))


def _assert_feasible(out: IslandOutcome, load, pv, soc0, fleet, dt_h, share, reserve):
    """Balance, bounds, each battery's own dynamics and the shed totals."""
    load, pv, soc0 = np.asarray(load, float), np.asarray(pv, float), np.asarray(soc0, float)
    t_n, h_n = load.shape
    for name in ("served_kw", "pv_used_kw", "charge_kw", "discharge_kw", "soc_kwh"):
        assert getattr(out, name).shape == (t_n, h_n), name
    for name in ("price_per_kwh", "shed_critical_kwh", "shed_flexible_kwh"):
        assert getattr(out, name).shape == (t_n,), name
    # the island's balance, interval by interval: no import, no export
    supply = out.pv_used_kw.sum(axis=1) + out.discharge_kw.sum(axis=1)
    use = out.served_kw.sum(axis=1) + out.charge_kw.sum(axis=1)
    np.testing.assert_allclose(use, supply, rtol=0, atol=TOL)
    assert (out.served_kw >= -TOL).all()
    assert (out.served_kw <= load + TOL).all()
    assert (out.pv_used_kw >= -TOL).all()
    assert (out.pv_used_kw <= pv + TOL).all()
    p = np.where(fleet.capacity_kwh > 0, fleet.power_kw, 0.0)
    for arr in (out.charge_kw, out.discharge_kw):
        assert (arr >= -TOL).all()
        assert (arr <= p + TOL).all()
    assert (np.minimum(out.charge_kw, out.discharge_kw) <= TOL).all()  # never both at once
    floor = _floor(fleet, soc0, reserve)
    assert (out.soc_kwh >= floor - TOL).all(), "a battery went into its black-start reserve"
    assert (out.soc_kwh <= fleet.capacity_kwh + TOL).all()
    # each battery's state follows its own charge, discharge and efficiencies
    before = np.vstack([soc0, out.soc_kwh[:-1]])
    step = (fleet.efficiency_charge * out.charge_kw
            - out.discharge_kw / fleet.efficiency_discharge) * dt_h
    np.testing.assert_allclose(out.soc_kwh, before + step, rtol=0, atol=1e-9)
    # shed totals agree with the households' served load, class by class
    crit, flex = share * load, (1 - share) * load
    shed = (load - out.served_kw).sum(axis=1) * dt_h
    np.testing.assert_allclose(out.shed_critical_kwh + out.shed_flexible_kwh, shed, atol=1e-9)
    assert (out.shed_critical_kwh >= -TOL).all()
    assert (out.shed_critical_kwh <= crit.sum(axis=1) * dt_h + TOL).all()
    assert (out.shed_flexible_kwh >= -TOL).all()
    assert (out.shed_flexible_kwh <= flex.sum(axis=1) * dt_h + TOL).all()
    # critical first: where critical load is shed, no flexible load is served
    short = out.shed_critical_kwh > 1e-7
    np.testing.assert_allclose(out.shed_flexible_kwh[short], flex.sum(axis=1)[short] * dt_h,
                               atol=1e-7)


# --- worked by hand -------------------------------------------------------------------------

HAND = {
    # households A (10 kWh, 3 kW), B (5 kWh, 2 kW), C (no battery); one-way
    # efficiency 0.9; both batteries start at their 20 % reserve share
    "load": [[2.0, 2.0, 2.0], [4.0, 2.0, 6.0]],
    "pv": [[12.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
    "soc": [2.0, 1.0, 0.0],
}


def _hand():
    fleet = _fleet([10.0, 5.0, 0.0], [3.0, 2.0, 0.0], eta=0.9)
    return fleet, _run(HAND["load"], HAND["pv"], HAND["soc"], fleet)


def test_hand_worked_three_households_two_intervals():
    # Aggregate battery: 15 kWh, soc 3, reserve 2 + 1 = 3, 5 kW, eta 0.9.
    # t=0: load 6, PV 13: charge at the 5 kW limit, curtail 2; extra demand would
    #      come from curtailed PV: price 0.  Stored: 5 * 0.9 = 4.5 kWh.
    # t=1: load 12 (critical 6), no PV: the fleet delivers 4.5 * 0.9 = 4.05 kW
    #      (below its 5 kW limit): critical load shed by 1.95, all flexible
    #      shed; price = VoLL.  The charge at t=0 is unique (every kWh counts).
    fleet, out = _hand()
    np.testing.assert_allclose(out.price_per_kwh, [0.0, VOLL], atol=1e-9)
    # split of the 5 kW charge: pro rata to headroom at the terminals (8/0.9 :
    # 4/0.9) would give A 3.33 kW, above its 3 kW limit (so would pro rata to
    # capacity, 10:5); water-filling caps A at 3 and B takes 2
    np.testing.assert_allclose(out.charge_kw[0], [3.0, 2.0, 0.0], atol=1e-9)
    # A: 2 + 3 * 0.9 = 4.7; B: 1 + 2 * 0.9 = 2.8; then each delivers all it holds
    # above its floor: A (4.7 - 2) * 0.9 = 2.43, B (2.8 - 1) * 0.9 = 1.62
    np.testing.assert_allclose(out.soc_kwh, [[4.7, 2.8, 0.0], [2.0, 1.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(out.discharge_kw, [[0, 0, 0], [2.43, 1.62, 0.0]], atol=1e-9)
    np.testing.assert_allclose(out.charge_kw[1], 0.0, atol=1e-12)
    # PV used 11 of 13, pro rata: A 11 * 12/13, C 11 * 1/13
    np.testing.assert_allclose(out.pv_used_kw, [[132 / 13, 0.0, 11 / 13], [0, 0, 0]], atol=1e-9)
    # served: all at t=0; at t=1 each critical part (2, 1, 3) at 4.05 / 6 = 0.675
    np.testing.assert_allclose(out.served_kw, [[2, 2, 2], [1.35, 0.675, 2.025]], atol=1e-9)
    np.testing.assert_allclose(out.shed_critical_kwh, [0.0, 1.95], atol=1e-9)
    np.testing.assert_allclose(out.shed_flexible_kwh, [0.0, 6.0], atol=1e-9)
    _assert_feasible(out, HAND["load"], HAND["pv"], HAND["soc"], fleet, 1.0, 0.5, 0.2)


def test_hand_worked_flexible_load_sets_the_price_and_stored_pv_carries_it():
    # dt 0.5 h, one-way efficiency 0.9. A: 10 kWh, 5 kW, at its 2 kWh reserve
    # share; B: no battery.
    # t=0: load 1 + 1, PV 5: the 3 kW surplus is stored in full (no limit
    #      binds), 3 * 0.5 * 0.9 = 1.35 kWh.
    # t=1: load 2 + 2 (critical 2), no PV: A delivers 1.35 * 0.9 / 0.5 = 2.43 kW:
    #      critical in full and 0.43 of the 2 kW flexible: flexible is marginal,
    #      price 1. Stored PV is worth 0.9 * 0.9 * 1 = 0.81 at t=0 (less than
    #      serving flexible load then, so t=0 sheds nothing): the price at t=0.
    fleet = _fleet([10.0, 0.0], [5.0, 0.0], eta=0.9)
    load = [[1.0, 1.0], [2.0, 2.0]]
    pv = [[5.0, 0.0], [0.0, 0.0]]
    out = _run(load, pv, [2.0, 0.0], fleet, dt_h=0.5)
    np.testing.assert_allclose(out.price_per_kwh, [0.81, FLEX], atol=1e-9)
    np.testing.assert_allclose(out.charge_kw[:, 0], [3.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.discharge_kw[:, 0], [0.0, 2.43], atol=1e-9)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [3.35, 2.0], atol=1e-9)
    np.testing.assert_allclose(out.pv_used_kw, [[5.0, 0.0], [0.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(out.served_kw, [[1, 1], [1.215, 1.215]], atol=1e-9)
    np.testing.assert_allclose(out.shed_critical_kwh, [0, 0], atol=1e-9)
    np.testing.assert_allclose(out.shed_flexible_kwh, [0, (2 - 0.43) * 0.5], atol=1e-9)
    _assert_feasible(out, load, pv, [2.0, 0.0], fleet, 0.5, 0.5, 0.2)


def test_price_is_the_voll_when_critical_load_is_shed_and_falls_with_ample_pv():
    # both batteries (10 kWh, 2 kW) at their reserve share. t=0: no PV, critical
    # load shed: VoLL. t=1: PV floods the island beyond the 4 kW the fleet can
    # take: curtailed, price 0. t=2: no PV; the 4 kWh stored at t=1 serve the
    # 3 kW of critical load and 1 of flexible: flexible sets the price
    fleet = _fleet([10.0, 10.0], [2.0, 2.0])
    load = [[3.0, 3.0], [3.0, 3.0], [3.0, 3.0]]
    pv = [[0.0, 0.0], [20.0, 20.0], [0.0, 0.0]]
    out = _run(load, pv, [2.0, 2.0], fleet)
    np.testing.assert_allclose(out.price_per_kwh, [VOLL, 0.0, FLEX], atol=1e-9)
    np.testing.assert_allclose(out.shed_critical_kwh, [3.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.shed_flexible_kwh, [3.0, 0.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(out.discharge_kw[0], [0.0, 0.0], atol=1e-12)  # reserve kept
    np.testing.assert_allclose(out.charge_kw[1], [2.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(out.pv_used_kw[1], [5.0, 5.0], atol=1e-9)  # 6 served + 4 stored
    np.testing.assert_allclose(out.discharge_kw[2], [2.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [2.0, 4.0, 2.0], atol=1e-9)
    _assert_feasible(out, load, pv, [2.0, 2.0], fleet, 1.0, 0.5, 0.2)


def test_the_black_start_reserve_is_never_used_even_for_critical_load():
    # 10 kWh above the reserve against 40 kWh of critical load: the fleet stops
    # at 20 % of its capacity, each battery at its own share
    fleet = _fleet([20.0, 30.0], [10.0, 10.0])
    soc = [12.0, 8.0]  # shares 4 and 6
    load = [[20.0, 20.0], [20.0, 20.0]]
    out = _run(load, np.zeros((2, 2)), soc, fleet, share=1.0)
    np.testing.assert_allclose(out.soc_kwh[-1], [4.0, 6.0], atol=1e-9)
    assert out.discharge_kw.sum() == pytest.approx(10.0)
    np.testing.assert_allclose(out.shed_critical_kwh.sum(), 70.0, atol=1e-9)
    np.testing.assert_allclose(out.price_per_kwh, [VOLL, VOLL], atol=1e-9)
    _assert_feasible(out, load, np.zeros((2, 2)), soc, fleet, 1.0, 1.0, 0.2)


def test_floors_respect_the_fleet_minimum_and_a_battery_starting_below_its_share():
    # A's own minimum (30 %) is above the 20 % reserve share; B starts at 1 kWh,
    # below its 2 kWh share: its floor is where it starts, never above
    fleet = _fleet([10.0, 10.0], [5.0, 5.0], soc_min_frac=[0.3, 0.0])
    out = _run([[6.0, 6.0]], [[0.0, 0.0]], [5.0, 1.0], fleet)
    np.testing.assert_allclose(out.soc_kwh[0], [3.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(out.discharge_kw[0], [2.0, 0.0], atol=1e-9)
    _assert_feasible(out, [[6.0, 6.0]], [[0.0, 0.0]], [5.0, 1.0], fleet, 1.0, 0.5, 0.2)


def test_without_batteries_pv_serves_critical_load_first():
    fleet = _fleet([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    load = [[2.0, 4.0, 2.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
    pv = [[3.0, 0.0, 0.0], [4.5, 0.0, 0.0], [9.0, 0.0, 0.0]]
    out = _run(load, pv, [0.0, 0.0, 0.0], fleet)
    # t=0: 3 kW for critical 4: shed 1, VoLL; t=1: critical 3 + flexible 1.5,
    # flexible marginal; t=2: surplus 6 kW curtailed, price 0
    np.testing.assert_allclose(out.price_per_kwh, [VOLL, FLEX, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.served_kw[0], [0.75, 1.5, 0.75], atol=1e-9)
    np.testing.assert_allclose(out.served_kw[1], [1.5, 1.5, 1.5], atol=1e-9)
    np.testing.assert_allclose(out.pv_used_kw[:, 0], [3.0, 4.5, 3.0], atol=1e-9)
    np.testing.assert_allclose(out.shed_critical_kwh, [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.shed_flexible_kwh, [4.0, 1.5, 0.0], atol=1e-9)
    assert not out.charge_kw.any()
    assert not out.discharge_kw.any()
    assert not out.soc_kwh.any()
    _assert_feasible(out, load, pv, [0.0, 0.0, 0.0], fleet, 1.0, 0.5, 0.2)


# --- the aggregate dispatch is conserved, or repaired within every battery's limits -----------


def _exact_welfare(load, pv, soc0, fleet, dt_h, share, reserve):
    """Independent reference: the community's best welfare with every battery
    modelled (its own limits and efficiencies), one LP through scipy (HiGHS).
    Columns: served critical, served flexible, PV (T each); charge,
    discharge, state of charge (T x H each)."""
    load, pv, soc0 = np.asarray(load, float), np.asarray(pv, float), np.asarray(soc0, float)
    t_n, h_n = load.shape
    cap = fleet.capacity_kwh
    p = np.where(cap > 0, fleet.power_kw, 0.0)
    eye_t, ones_h = sp.identity(t_n), np.ones((1, h_n))
    balance = sp.hstack([-eye_t, -eye_t, eye_t, -sp.kron(eye_t, ones_h),
                         sp.kron(eye_t, ones_h), sp.csr_matrix((t_n, t_n * h_n))])
    step = sp.identity(t_n * h_n) - sp.kron(sp.eye(t_n, k=-1), sp.identity(h_n))
    soc_rows = sp.hstack([sp.csr_matrix((t_n * h_n, 3 * t_n)),
                          -sp.kron(eye_t, sp.diags(fleet.efficiency_charge * dt_h)),
                          sp.kron(eye_t, sp.diags(dt_h / fleet.efficiency_discharge)), step])
    rhs = np.r_[np.zeros(t_n), soc0, np.zeros((t_n - 1) * h_n)]
    tile = np.tile
    lower = np.r_[np.zeros(3 * t_n + 2 * t_n * h_n), tile(_floor(fleet, soc0, reserve), t_n)]
    upper = np.r_[share * load.sum(1), (1 - share) * load.sum(1), pv.sum(1),
                  tile(p, 2 * t_n), tile(cap, t_n)]
    cost = np.r_[np.full(t_n, -VOLL * dt_h), np.full(t_n, -FLEX * dt_h),
                 np.zeros(t_n + 3 * t_n * h_n)]
    res = linprog(cost, A_eq=sp.vstack([balance, soc_rows]).tocsr(), b_eq=rhs,
                  bounds=np.c_[lower, upper], method="highs")
    assert res.status == 0, res.message
    return -res.fun


def _welfare(out, load, dt_h, share):
    total = np.asarray(load, float).sum(1) * dt_h
    return float(VOLL * (share * total - out.shed_critical_kwh).sum()
                 + FLEX * ((1 - share) * total - out.shed_flexible_kwh).sum())


def test_tiny_amounts_neither_warn_nor_break_the_balance():
    # subnormal PV and power limits: no overflow in a share, balance and bounds hold
    fleet = _fleet([2.5, 0.0, 2.5, 2.5], [2.0, 1.0, 1e-300, 6e-8])
    load, pv, soc = [[1.0, 1.0, 1.0, 1.0]], [[5e-324] * 4], [1.0, 0.0, 2.5, 0.0]
    out = _run(load, pv, soc, fleet, dt_h=0.25, share=0.0, reserve=0.0)
    _assert_feasible(out, load, pv, soc, fleet, 0.25, 0.0, 0.0)


def test_hand_worked_welfare_matches_the_per_battery_reference():
    fleet, out = _hand()
    exact = _exact_welfare(HAND["load"], HAND["pv"], HAND["soc"], fleet, 1.0, 0.5, 0.2)
    # 12 kWh at t=0 (3 critical, 3 flexible) and 4.05 critical at t=1
    assert exact == pytest.approx(VOLL * 3 + FLEX * 3 + VOLL * 4.05)
    assert _welfare(out, HAND["load"], 1.0, 0.5) == pytest.approx(exact, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_fleet_of_alike_batteries_carries_the_aggregate_dispatch_exactly(data):
    # same efficiency, same state of charge, power and floor per kWh: the
    # aggregate battery is exact, the split conserves every total of the
    # dispatch, and the welfare is the best any schedule of the batteries gets
    h_n = data.draw(st.integers(1, 5))
    t_n = data.draw(st.integers(1, 5))
    load = data.draw(arrays(np.float64, (t_n, h_n), elements=st.floats(0.0, 10.0)))
    pv = data.draw(arrays(np.float64, (t_n, h_n), elements=st.floats(0.0, 15.0)))
    cap = data.draw(arrays(np.float64, (h_n,), elements=st.floats(1.0, 15.0)))
    frac = data.draw(st.floats(0.0, 1.0))
    c_rate = data.draw(st.floats(0.1, 1.0))
    eta = data.draw(st.floats(0.8, 1.0))
    reserve, share = data.draw(st.floats(0.0, 0.5)), data.draw(st.floats(0.0, 1.0))
    dt_h = data.draw(st.sampled_from([0.25, 0.5, 1.0]))
    fleet = _fleet(cap, c_rate * cap, eta=eta)
    soc = frac * cap
    plans = []

    def spy(**kw):
        plans.append(dispatch_island(**kw))
        return plans[-1]

    with mock.patch("transactive.sim.island.dispatch_island", spy):
        out = _run(load, pv, soc, fleet, dt_h=dt_h, share=share, reserve=reserve)
    _assert_feasible(out, load, pv, soc, fleet, dt_h, share, reserve)
    (plan,) = plans  # one dispatch for the whole window
    np.testing.assert_array_equal(out.price_per_kwh, plan.price_per_kwh + 0.0)
    # HiGHS holds the dispatch's rows (energy, kWh) to 1e-7, so a plan may ask a
    # battery for up to 1e-7 / dt_h kW more than it holds; the split sheds that
    kw_tol = 1.5e-7 / dt_h
    np.testing.assert_allclose(out.served_kw.sum(1), plan.served_kw.sum(0), atol=kw_tol)
    np.testing.assert_allclose(out.pv_used_kw.sum(1), plan.gen_kw[0], atol=kw_tol)
    np.testing.assert_allclose(out.charge_kw.sum(1) - out.discharge_kw.sum(1),
                               plan.charge_kw - plan.discharge_kw, atol=kw_tol)
    # the dispatch may charge and discharge at once where stored energy is worth
    # nothing (a tie); the split nets the two, so the fleet keeps at least as much
    assert (out.soc_kwh.sum(1) >= plan.soc_kwh[1:] - 1e-7).all()
    exact = _exact_welfare(load, pv, soc, fleet, dt_h, share, reserve)
    assert _welfare(out, load, dt_h, share) == pytest.approx(exact, rel=1e-7, abs=1e-7)


def test_a_full_battery_cannot_charge_so_pv_is_curtailed_instead():
    # A is full (5 kW), B empty (1 kW): the aggregate counts 6 kW of charging
    # but only B can take power. The dispatch stores 6 kW of surplus; the
    # fleet takes 1, the rest of the PV is curtailed and the interval balances
    fleet = _fleet([10.0, 10.0], [5.0, 1.0])
    load, pv, soc = [[1.0, 1.0]], [[8.0, 0.0]], [10.0, 2.0]
    out = _run(load, pv, soc, fleet)
    np.testing.assert_allclose(out.charge_kw[0], [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(out.pv_used_kw[0], [3.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.soc_kwh[0], [10.0, 3.0], atol=1e-9)
    _assert_feasible(out, load, pv, soc, fleet, 1.0, 0.5, 0.2)


def test_a_fleet_short_of_power_sheds_flexible_load_first():
    # A holds 0.5 kWh above its floor at 5 kW, B 8 kWh at 1 kW: the aggregate's
    # 6 kW cannot be delivered; the fleet gives 0.5 + 1 kW, and the 4.5 kW it
    # lacks come out of the flexible load first (3 kW), then critical (1.5)
    fleet = _fleet([10.0, 10.0], [5.0, 1.0])
    load, soc = [[3.0, 3.0]], [2.5, 10.0]
    out = _run(load, [[0.0, 0.0]], soc, fleet)
    np.testing.assert_allclose(out.discharge_kw[0], [0.5, 1.0], atol=1e-9)
    np.testing.assert_allclose(out.shed_flexible_kwh, [3.0], atol=1e-9)
    np.testing.assert_allclose(out.shed_critical_kwh, [1.5], atol=1e-9)
    np.testing.assert_allclose(out.served_kw[0], [0.75, 0.75], atol=1e-9)
    _assert_feasible(out, load, [[0.0, 0.0]], soc, fleet, 1.0, 0.5, 0.2)


def _amounts(high):
    """0, or a realistic amount (the reference LP's tolerances are absolute)."""
    return st.just(0.0) | st.floats(1e-3, high)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_communities_keep_every_household_within_its_limits(data):
    h_n = data.draw(st.integers(1, 5))
    t_n = data.draw(st.integers(1, 5))
    load = data.draw(arrays(np.float64, (t_n, h_n), elements=_amounts(10.0)))
    pv = data.draw(arrays(np.float64, (t_n, h_n), elements=_amounts(15.0)))
    has = data.draw(arrays(np.bool_, (h_n,)))
    cap = np.where(has, data.draw(arrays(np.float64, (h_n,), elements=st.floats(0.5, 15.0))), 0)
    power = data.draw(arrays(np.float64, (h_n,), elements=_amounts(8.0)))
    eff = st.floats(0.7, 1.0)
    eta_c = data.draw(arrays(np.float64, (h_n,), elements=eff))
    eta_d = data.draw(arrays(np.float64, (h_n,), elements=eff))
    soc_min = data.draw(arrays(np.float64, (h_n,), elements=st.floats(0.0, 0.5)))
    fleet = BatteryFleet(capacity_kwh=cap, power_kw=power, efficiency_charge=eta_c,
                         efficiency_discharge=eta_d, soc_min_frac=soc_min)
    soc = cap * data.draw(arrays(np.float64, (h_n,), elements=st.floats(0.0, 1.0)))
    dt_h = data.draw(st.sampled_from([0.25, 0.5, 1.0]))
    share, reserve = data.draw(st.floats(0.0, 1.0)), data.draw(st.floats(0.0, 1.0))
    args = (load.copy(), pv.copy(), soc.copy())
    out = _run(load, pv, soc, fleet, dt_h=dt_h, share=share, reserve=reserve)
    _assert_feasible(out, load, pv, soc, fleet, dt_h, share, reserve)
    # a feasible schedule of the batteries: never better than the best one
    exact = _exact_welfare(load, pv, soc, fleet, dt_h, share, reserve)
    assert _welfare(out, load, dt_h, share) <= exact + 1e-7 * max(1.0, exact)
    for before, after in zip(args, (load, pv, soc), strict=True):  # inputs untouched
        np.testing.assert_array_equal(before, after)
    assert not out.served_kw.flags.writeable


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_water_fill_levels_durations_as_a_bisection_reference_does(data):
    n = data.draw(st.integers(1, 8))
    energy = data.draw(arrays(np.float64, (n,), elements=st.sampled_from([0.0, 0.3, 2.0, 7.5])
                              | st.floats(1e-6, 10.0)))
    p = data.draw(arrays(np.float64, (n,), elements=st.sampled_from([0.0, 1.0, 3.0])
                         | st.floats(1e-6, 5.0)))
    dt_h = data.draw(st.sampled_from([0.25, 1.0]))
    limit = np.minimum(p, energy / dt_h)
    target = data.draw(st.floats(0.0, 1.2)) * limit.sum()
    got = _water_fill(target, energy, p, dt_h)
    assert (got >= 0).all()
    assert (got <= limit + 1e-12).all()  # power, and the energy of the interval
    if target >= limit.sum():
        np.testing.assert_array_equal(got, limit)
        return
    # exact up to rounding. The split sums terms e_i / dt_h and lam p_i / dt_h at
    # levels lam up to the longest duration e_i / p_i, and these cancel: a battery
    # of 1e-6 kW holding 4 kWh puts a level of 4e6 h against a 1 kW battery, so
    # rounding is a few eps of max(e_i / p_i) sum(p) / dt_h, not of the fleet's
    # power (1.1e-9 kW with 1 kW of power). A few hundred thousand random
    # fleets show at most 2.2 eps of this scale; 16 eps leaves room.
    duration_h = np.divide(energy, p, out=np.zeros(n), where=p > 0).max(initial=0.0)
    scale_kw = max(float(limit.sum()), duration_h * float(p.sum()) / dt_h)
    assert got.sum() == pytest.approx(target, abs=16 * np.finfo(np.float64).eps * scale_kw)
    # reference: the level by bisection, sum(clip((e - lam p) / dt, 0, limit)) = target
    lo, hi = -1e9, 1e9
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.clip((energy - mid * p) / dt_h, 0, limit).sum() > target \
            else (lo, mid)
    np.testing.assert_allclose(got, np.clip((energy - hi * p) / dt_h, 0, limit), atol=1e-7)
    # what is left lasts equally long in every battery the split did not cap
    left = np.divide(energy - got * dt_h, p, out=np.zeros(n), where=p > 0)
    free = (got > 1e-9) & (got < limit - 1e-9)
    if free.any():
        level = left[free][0]
        np.testing.assert_allclose(left[free], level, rtol=1e-6, atol=1e-7)
        capped = (got >= limit - 1e-9) & (got > 1e-9)  # would rather give more
        assert (left[capped] >= level * (1 - 1e-6) - 1e-7).all()
        idle = (got <= 1e-9) & (p > 0)  # already below the level
        assert (left[idle] <= level * (1 + 1e-6) + 1e-7).all()


def test_levelling_durations_keeps_the_fleet_power_up():
    # A: 4 kWh at 4 kW (1 h), B: 8 kWh at 1 kW (8 h); dt 1 h, 2 kW a step.
    # Pro rata to energy would give A 0.67 and B 1.33 > 1 kW: capped. Levelling
    # takes B's 1 kW first and 1 kW from A: left 3/4 h and 7/1 h
    np.testing.assert_allclose(_water_fill(2.0, np.array([4.0, 8.0]), np.array([4.0, 1.0]),
                                           1.0), [1.0, 1.0])
    # C (6 kWh, 3 kW) and D (2 kWh, 1 kW) last 2 h each; 3 kW between them
    # leaves both level: (6 - 3 lam) + (2 - lam) = 3, lam = 1.25 h
    np.testing.assert_allclose(_water_fill(3.0, np.array([6.0, 2.0]), np.array([3.0, 1.0]),
                                           1.0), [2.25, 0.75])


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"load_kw": np.ones((2, 3))}, "load_kw"),
    ({"load_kw": np.ones(2)}, "load_kw"),
    ({"load_kw": np.ones((0, 2))}, "load_kw"),
    ({"load_kw": [[1.0, -1.0], [1.0, 1.0]]}, "load_kw"),
    ({"load_kw": [[1.0, 1.0], [np.nan, 1.0]]}, "load_kw"),
    ({"pv_kw": np.ones((3, 2))}, "pv_kw"),
    ({"pv_kw": [[0.0, 0.0], [0.0, -2.0]]}, "pv_kw"),
    ({"soc_kwh": [1.0]}, "soc_kwh"),
    ({"soc_kwh": [-1.0, 0.0]}, "soc_kwh"),
    ({"soc_kwh": [11.0, 0.0]}, "soc_kwh"),
    ({"fleet": "batteries"}, "fleet"),
    ({"dt_h": 0.0}, "dt_h"),
    ({"dt_h": float("inf")}, "dt_h"),
    ({"critical_share": 1.5}, "critical_share"),
    ({"critical_share": -0.1}, "critical_share"),
    ({"reserve_frac": 2.0}, "reserve_frac"),
    ({"reserve_frac": -0.5}, "reserve_frac"),
    ({"critical_value_per_kwh": -1.0}, "critical_value_per_kwh"),
    ({"flexible_value_per_kwh": -1.0}, "flexible_value_per_kwh"),
    ({"critical_value_per_kwh": 0.5, "flexible_value_per_kwh": 1.0}, "critical_value_per_kwh"),
])
def test_bad_input_names_the_argument(change, field):
    kw = {"load_kw": np.ones((2, 2)), "pv_kw": np.zeros((2, 2)), "soc_kwh": [5.0, 0.0],
          "fleet": _fleet([10.0, 0.0], [3.0, 0.0]), "dt_h": 1.0, "critical_share": 0.5,
          "critical_value_per_kwh": VOLL, "flexible_value_per_kwh": FLEX, "reserve_frac": 0.2}
    kw.update(change)
    with pytest.raises(InputError) as err:
        island_window(**kw)
    assert err.value.field == field


def test_bad_input_names_the_row():
    kw = {"pv_kw": np.zeros((3, 2)), "soc_kwh": [5.0, 0.0],
          "fleet": _fleet([10.0, 0.0], [3.0, 0.0]), "dt_h": 1.0, "critical_share": 0.5,
          "critical_value_per_kwh": VOLL, "flexible_value_per_kwh": FLEX, "reserve_frac": 0.2}
    with pytest.raises(InputError) as err:
        island_window(load_kw=[[1.0, 1.0], [1.0, 1.0], [1.0, -3.0]], **kw)
    assert err.value.row == 2
    with pytest.raises(InputError) as err:
        island_window(load_kw=np.ones((3, 2)), **{**kw, "soc_kwh": [5.0, 0.5]})
    assert (err.value.field, err.value.row) == ("soc_kwh", 1)
