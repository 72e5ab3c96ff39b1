"""Radial AC dispatch: LinDistFlow and the DistFlow SOC relaxation, checked
against closed forms worked by hand, a naive recursion, and pandapower's AC
power flow on the IEEE 33-bus feeder."""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypower.ppoption import ppoption
from pypower.runpf import runpf

from transactive.errors import InputError, SolverError
from transactive.grid.cases import load_case
from transactive.grid.distflow import Injections, solve_distflow
from transactive.grid.network import Network

PRICE = 50.0


def _two_bus(r=0.05, x=0.04, p=0.4, q=0.2, **bus):
    return Network(
        bus={"bus": [1, 2], "type": [3, 1], **bus},
        branch={"from_bus": [1], "to_bus": [2], "r_pu": [r], "x_pu": [x]},
        gen={"bus": [1], "p_max_mw": [10.0]},
        load={"bus": [2], "p_mw": [p], "q_mvar": [q]},
        base_mva=1.0,
    )


def _exact_two_bus(r, x, p, q):
    """DistFlow of one line with v1 = 1 by hand: l = P^2 + Q^2 with
    P = p + r l, Q = q + x l (the smaller root of the quadratic in l)."""
    a, b, c = r * r + x * x, 2 * p * r + 2 * q * x - 1, p * p + q * q
    l_cur = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    P, Q = p + r * l_cur, q + x * l_cur
    return P, Q, l_cur, 1 - 2 * (r * P + x * Q) + a * l_cur


@pytest.fixture(scope="module")
def feeder33():
    return load_case("case33bw")


def _tight(net, vmin):
    bus = net.bus.copy()
    bus.loc[bus["type"] != 3, "vm_min_pu"] = vmin
    return net.replace(bus=bus)


# ----------------------------------------------------------- closed forms
def test_lindistflow_two_bus_by_hand():
    r, x, p, q = 0.05, 0.04, 0.4, 0.2
    res = solve_distflow(_two_bus(r, x, p, q), model="lindistflow", import_price_per_mwh=PRICE)
    assert res.vm_pu[1] ** 2 == pytest.approx(1 - 2 * (r * p + x * q), abs=1e-9)
    assert res.p_mw[0] == pytest.approx(p)
    assert res.q_mvar[0] == pytest.approx(q)
    assert res.price_p_per_mwh.tolist() == pytest.approx([PRICE, PRICE])
    assert res.price_q_per_mvarh.tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    assert res.objective_per_h == pytest.approx(PRICE * p)
    assert res.loss_mw[0] == pytest.approx(r * (p * p + q * q) / 1.0)  # the estimate


def test_soc_two_bus_by_hand_with_loss_prices():
    r, x, p, q = 0.05, 0.04, 0.4, 0.2
    res = solve_distflow(_two_bus(r, x, p, q), model="soc", import_price_per_mwh=PRICE)
    P, Q, l_cur, v2 = _exact_two_bus(r, x, p, q)
    assert res.exact
    assert res.soc_gap < 1e-6
    assert res.p_mw[0] == pytest.approx(P, rel=1e-7)
    assert res.q_mvar[0] == pytest.approx(Q, rel=1e-7)
    assert res.vm_pu[1] == pytest.approx(math.sqrt(v2), abs=1e-8)
    assert res.losses_mw == pytest.approx(r * l_cur, rel=1e-6)
    assert res.grid_import_mw == pytest.approx(P, rel=1e-7)
    # the price at the load is the import price times dP_root/d(load): marginal losses
    h = 1e-6
    dp = (_exact_two_bus(r, x, p + h, q)[0] - _exact_two_bus(r, x, p - h, q)[0]) / (2 * h)
    dq = (_exact_two_bus(r, x, p, q + h)[0] - _exact_two_bus(r, x, p, q - h)[0]) / (2 * h)
    assert res.price_p_per_mwh[1] == pytest.approx(PRICE * dp, rel=1e-5)
    assert res.price_q_per_mvarh[1] == pytest.approx(PRICE * dq, rel=1e-4)
    assert res.price_p_per_mwh[1] > PRICE


def _random_tree(draw_parent, loads_p, loads_q, r, x):
    n = len(loads_p) + 1
    return Network(
        bus={"bus": np.arange(1, n + 1), "type": [3] + [1] * (n - 1),
             "vm_min_pu": np.full(n, 0.5)},
        branch={"from_bus": np.asarray(draw_parent) + 1, "to_bus": np.arange(2, n + 1),
                "r_pu": r, "x_pu": x},
        gen={"bus": [1], "p_max_mw": [100.0]},
        load={"bus": np.arange(2, n + 1), "p_mw": loads_p, "q_mvar": loads_q},
        base_mva=1.0,
    )


@st.composite
def _trees(draw):
    n = draw(st.integers(2, 12))
    parent = [draw(st.integers(0, k)) for k in range(n - 1)]
    unit = st.floats(0.0, 0.05)
    loads_p = [draw(st.floats(-0.05, 0.1)) for _ in range(n - 1)]
    loads_q = [draw(st.floats(-0.03, 0.05)) for _ in range(n - 1)]
    r = [draw(unit) + 1e-3 for _ in range(n - 1)]
    x = [draw(unit) + 1e-3 for _ in range(n - 1)]
    return parent, loads_p, loads_q, r, x


@settings(max_examples=40, deadline=None)
@given(_trees())
def test_lindistflow_matches_naive_recursion_on_random_trees(tree):
    parent, loads_p, loads_q, r, x = tree
    net = _random_tree(parent, loads_p, loads_q, r, x)
    res = solve_distflow(net, model="lindistflow", import_price_per_mwh=PRICE)
    n = len(loads_p) + 1
    # naive: each branch carries the sum of the loads beyond it; walk down the tree
    below_p, below_q = np.r_[0.0, loads_p], np.r_[0.0, loads_q]
    for k in range(n - 2, -1, -1):  # children have larger numbers than parents
        below_p[parent[k]] += below_p[k + 1]
        below_q[parent[k]] += below_q[k + 1]
    v = np.ones(n)
    for k in range(n - 1):
        v[k + 1] = v[parent[k]] - 2 * (r[k] * below_p[k + 1] + x[k] * below_q[k + 1])
    np.testing.assert_allclose(res.vm_pu**2, v, atol=1e-9)
    np.testing.assert_allclose(res.p_mw[: n - 1], below_p[1:], atol=1e-9)
    # nothing binds: every bus pays the import price
    np.testing.assert_allclose(res.price_p_per_mwh, PRICE, atol=1e-7)
    assert res.binding == ()


# ------------------------------------------------ pandapower at the optimum
def _fix_in_pandapower(res, injections, extra_load_p=None):
    """pandapower's 33-bus net with the optimum's dispatch fixed as static
    generators (bus numbers are pandapower indices + 1), solved by runpp."""
    net = pn.case33bw()
    for k in range(len(injections)):
        pp.create_sgen(net, int(injections.bus[k]) - 1, p_mw=float(res.p_inj_mw[k]),
                       q_mvar=float(res.q_inj_mvar[k]))
    pp.runpp(net, tolerance_mva=1e-10, numba=False)
    return net.res_bus.vm_pu.to_numpy()


@pytest.fixture(scope="module")
def voltage_case(feeder33):
    """The feeder with a 0.93 pu floor: a dear generator far out and a smart
    inverter (reactive only) at the end of the lateral, so voltage binds."""
    net = _tight(feeder33, 0.93)
    dg = Injections(bus=[18], p_min_mw=[0.0], p_max_mw=[1.0], cost_per_mwh=[200.0])
    inv = Injections(bus=[33], p_min_mw=[0.0], p_max_mw=[0.0], cost_per_mwh=[0.0],
                     q_min_mvar=[-0.5], q_max_mvar=[0.5], s_max_mva=[0.5],
                     q_cost_per_mvarh=[1.0])
    pv = Injections(bus=[25], p_min_mw=[0.0], p_max_mw=[0.3], cost_per_mwh=[10.0],
                    q_min_mvar=[-0.1], q_max_mvar=[0.1], s_max_mva=[0.32])
    return net, dg, dg.concat(inv).concat(pv)


def test_soc_voltages_agree_with_runpp_at_the_optimum(voltage_case):
    net, _, inj = voltage_case
    res = solve_distflow(net, model="soc", import_price_per_mwh=PRICE, injections=inj)
    assert res.exact
    assert res.soc_gap < 1e-4
    assert any(b.startswith("vm_min") for b in res.binding)
    vm = _fix_in_pandapower(res, inj)
    err = np.abs(res.vm_pu - vm).max()
    assert err < 0.005  # the requirement
    assert err < 1e-5  # what the exact relaxation achieves
    assert vm.min() >= 0.93 - 1e-5


def test_lindistflow_voltages_near_runpp_at_its_optimum(voltage_case):
    net, _, inj = voltage_case
    res = solve_distflow(net, model="lindistflow", import_price_per_mwh=PRICE, injections=inj)
    vm = _fix_in_pandapower(res, inj)
    err = np.abs(res.vm_pu - vm).max()
    assert 1e-4 < err < 0.005  # lossless: a little optimistic, within the tolerance
    assert (res.vm_pu >= vm - 1e-9).all()  # ignoring losses over-estimates voltages


def test_base_case_loss_and_voltage_match_the_literature(feeder33):
    # Baran & Wu's base case: 202.7 kW of losses, lowest voltage 0.9131 pu at bus 18
    res = solve_distflow(feeder33, model="soc", import_price_per_mwh=PRICE)
    assert res.losses_mw == pytest.approx(0.2027, abs=5e-4)
    assert res.vm_pu.min() == pytest.approx(0.9131, abs=1e-4)
    assert int(res.bus[np.argmin(res.vm_pu)]) == 18


# ------------------------------------------------------ voltage support market
@pytest.mark.parametrize("model", ["lindistflow", "soc"])
def test_reactive_support_is_paid_and_lowers_cost(voltage_case, model):
    net, dg, inj = voltage_case
    without = solve_distflow(net, model=model, import_price_per_mwh=PRICE, injections=dg)
    with_q = solve_distflow(net, model=model, import_price_per_mwh=PRICE, injections=inj)
    assert any(b.startswith("vm_min") for b in without.binding)
    assert with_q.objective_per_h < without.objective_per_h - 10
    q_inv = with_q.q_inj_mvar[1]
    assert q_inv > 0.1  # injects reactive power to lift the voltage
    mu = with_q.price_q_per_mvarh[32]
    assert mu > 1.0  # the reactive price is positive where voltage binds
    assert with_q.payment_inj_per_h[1] == pytest.approx(mu * q_inv, rel=1e-6)
    assert with_q.payment_inj_per_h[1] > 1.0 * q_inv  # earns more than its offer price
    # the dear generator runs less, and active prices fall
    assert with_q.p_inj_mw[0] < without.p_inj_mw[0]
    assert with_q.price_p_per_mwh.max() < without.price_p_per_mwh.max()
    # apparent-power limits hold (LP: an inscribed polygon)
    s = np.hypot(with_q.p_inj_mw[1:], with_q.q_inj_mvar[1:])
    assert (s <= np.array([0.5, 0.32]) * (1 + 1e-6)).all()


@pytest.mark.parametrize("model", ["lindistflow", "soc", "dc"])
def test_payments_equal_utility_cost_plus_rent(voltage_case, model):
    net, _, inj = voltage_case
    if model == "dc":  # a binding rating instead of voltage
        br = net.branch.copy()
        br.loc[5, "rate_a_mw"] = 0.8
        net = net.replace(branch=br)
    res = solve_distflow(net, model=model, import_price_per_mwh=PRICE, injections=inj)
    loads_q = np.bincount(net.load_position, net.load["q_mvar"].to_numpy(), net.n_bus)
    paid_by_loads = res.price_p_per_mwh @ net.bus_load_mw + res.price_q_per_mvarh @ loads_q
    paid_to_injections = res.payment_inj_per_h.sum()
    assert res.rent_per_h > 1.0
    assert paid_by_loads - paid_to_injections == pytest.approx(
        res.utility_cost_per_h + res.rent_per_h, rel=1e-6)


def test_dc_rating_binds_and_splits_prices(feeder33):
    br = feeder33.branch.copy()
    br.loc[5, "rate_a_mw"] = 0.8  # branch 6-7 carries 1.075 MW unconstrained
    net = feeder33.replace(branch=br)
    seller = Injections(bus=[10], p_min_mw=[0.0], p_max_mw=[3.0], cost_per_mwh=[80.0])
    res = solve_distflow(net, model="dc", import_price_per_mwh=PRICE, injections=seller)
    assert res.binding == ("rate[branch 5 (6-7)]",)
    assert res.p_mw[5] == pytest.approx(0.8)
    assert res.p_inj_mw[0] == pytest.approx(1.075 - 0.8)
    beyond = (net.bus_numbers >= 7) & (net.bus_numbers <= 18)
    np.testing.assert_allclose(res.price_p_per_mwh[beyond], 80.0, atol=1e-7)
    np.testing.assert_allclose(res.price_p_per_mwh[~beyond], PRICE, atol=1e-7)
    assert res.rent_per_h == pytest.approx((80.0 - PRICE) * 0.8, rel=1e-9)


def test_lindistflow_rating_polygon_binds(feeder33):
    br = feeder33.branch.copy()
    br.loc[5, "rate_a_mw"] = 1.0  # carries about 1.08 MW + 0.5 MVAr unconstrained
    net = feeder33.replace(branch=br)
    seller = Injections(bus=[10], p_min_mw=[0.0], p_max_mw=[3.0], cost_per_mwh=[80.0])
    res = solve_distflow(net, model="lindistflow", import_price_per_mwh=PRICE,
                         injections=seller)
    assert "rate[branch 5 (6-7)]" in res.binding
    assert res.loading[5] <= 1.0 + 1e-9
    assert res.loading[5] >= math.cos(math.pi / 16) - 1e-9
    soc = solve_distflow(net, model="soc", import_price_per_mwh=PRICE, injections=seller)
    assert soc.loading[5] == pytest.approx(1.0, abs=1e-6)
    assert "rate[branch 5 (6-7)]" in soc.binding


def test_unbindable_ratings_change_nothing(feeder33):
    br = feeder33.branch.copy()
    br["rate_a_mw"] = 1e4  # far above anything that can flow: screened out
    res_a = solve_distflow(feeder33.replace(branch=br), import_price_per_mwh=PRICE)
    res_b = solve_distflow(feeder33, import_price_per_mwh=PRICE)
    np.testing.assert_allclose(res_a.vm_pu, res_b.vm_pu, atol=1e-12)
    assert res_a.max_loading < 1e-3
    assert math.isnan(res_b.max_loading)


# ----------------------------------------------------------- exactness
def test_soc_gap_flags_a_relaxation_that_burns_power():
    # must-run generation the grid pays to take away (negative export price):
    # the relaxation "loses" power in the line instead, which is not physical
    net = _two_bus(p=0.0, q=0.0)
    must_run = Injections(bus=[2], p_min_mw=[0.5], p_max_mw=[0.5], cost_per_mwh=[0.0])
    res = solve_distflow(net, model="soc", import_price_per_mwh=PRICE,
                         export_price_per_mwh=-100.0, injections=must_run)
    assert not res.exact
    assert res.soc_gap > 0.1
    ok = solve_distflow(net, model="soc", import_price_per_mwh=PRICE,
                        export_price_per_mwh=20.0, injections=must_run)
    assert ok.exact


# ----------------------------------------------------------------- errors
def test_meshed_and_bad_inputs_are_refused(feeder33):
    tie = {"from_bus": [18], "to_bus": [33], "r_pu": [0.3], "x_pu": [0.3]}  # closes a loop
    branch = {c: np.r_[feeder33.branch[c].to_numpy(), tie[c]] for c in tie}
    with pytest.raises(InputError, match="not radial") as err:
        solve_distflow(feeder33.replace(branch=branch), import_price_per_mwh=PRICE)
    assert err.value.field == "branch"
    with pytest.raises(InputError) as err:
        solve_distflow(feeder33, import_price_per_mwh=PRICE, export_price_per_mwh=60.0)
    assert err.value.field == "export_price_per_mwh"
    with pytest.raises(InputError) as err:
        solve_distflow(feeder33, model="ac", import_price_per_mwh=PRICE)  # type: ignore[arg-type]
    assert err.value.field == "model"
    with pytest.raises(InputError) as err:
        solve_distflow(feeder33, import_price_per_mwh=PRICE, load_p_mw=np.ones(5))
    assert err.value.field == "load_p_mw"
    bad = Injections(bus=[2, 99], p_min_mw=[0, 0], p_max_mw=[1, 1], cost_per_mwh=[1, 1])
    with pytest.raises(InputError) as err:
        solve_distflow(feeder33, import_price_per_mwh=PRICE, injections=bad)
    assert (err.value.field, err.value.row) == ("injections.bus", 1)
    with pytest.raises(InputError) as err:
        Injections(bus=[2, 3], p_min_mw=[0, 2], p_max_mw=[1, 1], cost_per_mwh=[1, 1])
    assert (err.value.field, err.value.row) == ("injections.p_min_mw", 1)
    with pytest.raises(InputError) as err:
        Injections(bus=[2], p_min_mw=[0], p_max_mw=[1], cost_per_mwh=[np.nan])
    assert err.value.field == "injections.cost_per_mwh"


def test_infeasible_demand_is_a_solver_error(feeder33):
    with pytest.raises(SolverError, match="cannot be served"):
        solve_distflow(_tight(feeder33, 0.97), import_price_per_mwh=PRICE)


# ------------------------------------------------------------ off-nominal taps
def _tapped_feeder() -> Network:
    """A 3-bus feeder behind a transformer: branch 1-2 has tap 1.05 at bus 1
    (MATPOWER's model: the series impedance sees ``V1 / 1.05``), then a line
    2-3; loads 20 + j5 MW at bus 2 and 30 + j10 at bus 3, base 100 MVA."""
    return Network(
        bus={"bus": [1, 2, 3], "type": [3, 1, 1], "vm_min_pu": [1.0, 0.85, 0.85]},
        branch={"from_bus": [1, 2], "to_bus": [2, 3], "r_pu": [0.01, 0.02],
                "x_pu": [0.05, 0.02], "tap": [1.05, 1.0]},
        gen={"bus": [1], "p_max_mw": [100.0]},
        load={"bus": [2, 3], "p_mw": [20.0, 30.0], "q_mvar": [5.0, 10.0]})


def test_lindistflow_voltage_drop_with_an_off_nominal_tap_by_hand() -> None:
    # LinDistFlow, worked by hand in pu: P12 = 0.5, Q12 = 0.15, P23 = 0.3,
    # Q23 = 0.1; v2 = 1 / 1.05**2 - 2 (0.01 * 0.5 + 0.05 * 0.15)
    # = 0.9070295 - 0.025 = 0.8820295; v3 = v2 - 2 (0.02 * 0.3 + 0.02 * 0.1)
    # = 0.8660295 (a model that ignores the tap gets v2 = 0.975)
    res = solve_distflow(_tapped_feeder(), model="lindistflow", import_price_per_mwh=50.0)
    v2 = 1 / 1.05**2 - 0.025
    np.testing.assert_allclose(res.vm_pu**2, [1.0, v2, v2 - 0.016], atol=1e-9)


def test_soc_distflow_with_an_off_nominal_tap_matches_pypower() -> None:
    net = _tapped_feeder()
    res = solve_distflow(net, model="soc", import_price_per_mwh=50.0)
    assert res.exact
    ppc = {
        "version": "2", "baseMVA": 100.0,
        "bus": np.array([[1, 3, 0, 0, 0, 0, 1, 1, 0, 20, 1, 1.1, 0.9],
                         [2, 1, 20, 5, 0, 0, 1, 1, 0, 20, 1, 1.1, 0.9],
                         [3, 1, 30, 10, 0, 0, 1, 1, 0, 20, 1, 1.1, 0.9]], dtype=float),
        "gen": np.array([[1, 0, 0, 100, -100, 1, 100, 1, 100, 0]], dtype=float),
        "branch": np.array([[1, 2, 0.01, 0.05, 0, 0, 0, 0, 1.05, 0, 1, -360, 360],
                            [2, 3, 0.02, 0.02, 0, 0, 0, 0, 0, 0, 1, -360, 360]],
                           dtype=float),
    }
    ac, ok = runpf(ppc, ppoption(VERBOSE=0, OUT_ALL=0, PF_TOL=1e-12))
    assert ok
    np.testing.assert_allclose(res.vm_pu, ac["bus"][:, 7], atol=1e-6)
    assert res.losses_mw == pytest.approx(ac["gen"][0, 1] - 50.0, abs=1e-5)
