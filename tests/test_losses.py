"""AC power flow and marginal loss factors, against pandapower's runpp (and
its finite differences) and against the loss parts of the DistFlow prices."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from transactive.errors import InputError, SolverError
from transactive.grid.cases import load_case
from transactive.grid.distflow import solve_distflow
from transactive.grid.losses import ac_power_flow, loss_sensitivities, marginal_loss_factors


def _runpp(net, init="auto"):
    pp.runpp(net, numba=False, tolerance_mva=1e-11, calculate_voltage_angles=True, init=init)
    losses = net.res_line.pl_mw.sum() + (net.res_trafo.pl_mw.sum() if len(net.trafo) else 0.0)
    return net.res_bus.vm_pu.to_numpy(), net.res_bus.va_degree.to_numpy(), float(losses)


@pytest.mark.parametrize(("case", "make"), [("case33bw", pn.case33bw), ("case9", pn.case9),
                                            ("case30", pn.case30)])
def test_power_flow_matches_runpp(case, make):
    # radial, and meshed with PV buses and transformers; bus positions are the
    # pandapower bus order in these cases
    pf = ac_power_flow(load_case(case))
    vm, va, losses = _runpp(make())
    np.testing.assert_allclose(pf.vm_pu, vm, atol=1e-9)
    np.testing.assert_allclose(pf.va_deg, va, atol=1e-7)
    assert pf.losses_mw == pytest.approx(losses, rel=1e-8)
    assert np.nansum(pf.loss_mw) == pytest.approx(losses, rel=1e-8)


def test_power_flow_at_another_operating_point_matches_runpp():
    net = load_case("case33bw")
    rng = np.random.default_rng(3)
    p = -net.bus_load_mw * rng.uniform(0.2, 1.5, net.n_bus) + rng.uniform(0, 0.2, net.n_bus)
    q = rng.uniform(-0.1, 0.05, net.n_bus)
    pf = ac_power_flow(net, p, q)
    ppn = pn.case33bw()
    ppn.load.drop(ppn.load.index, inplace=True)
    for k in range(1, net.n_bus):
        pp.create_sgen(ppn, k, p_mw=p[k], q_mvar=q[k])
    vm, _, losses = _runpp(ppn)
    np.testing.assert_allclose(pf.vm_pu, vm, atol=1e-9)
    assert pf.losses_mw == pytest.approx(losses, rel=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize(("case", "make"), [("case33bw", pn.case33bw), ("case30", pn.case30)])
def test_loss_factors_match_finite_differences_of_runpp(case, make):
    net = load_case(case)
    sens = loss_sensitivities(net)
    ppn = make()
    _runpp(ppn)
    h = 1e-3  # MW (MVAr): central differences, error O(h^2)
    slack = net.ref_position
    fd_p, fd_q = np.zeros(net.n_bus), np.zeros(net.n_bus)
    for k in range(net.n_bus):
        if k == slack:
            continue
        for out, kind in ((fd_p, "p_mw"), (fd_q, "q_mvar")):
            idx = pp.create_sgen(ppn, k, p_mw=0.0, q_mvar=0.0)
            ppn.sgen.loc[idx, kind] = h
            up = _runpp(ppn, "results")[2]
            ppn.sgen.loc[idx, kind] = -h
            down = _runpp(ppn, "results")[2]
            ppn.sgen.drop(idx, inplace=True)
            out[k] = (up - down) / (2 * h)
    np.testing.assert_allclose(sens.dloss_dp, fd_p, atol=2e-6)
    pq = net.bus["type"].to_numpy() == 1  # reactive power is free only at PQ buses
    np.testing.assert_allclose(sens.dloss_dq[pq], fd_q[pq], atol=2e-6)
    assert sens.dloss_dp[slack] == 0.0


def test_loss_factors_are_the_loss_part_of_the_soc_prices():
    # with nothing binding, the DistFlow SOC price at bus k is the import price
    # times (1 - mlf_k): two independent routes (duals vs Jacobian adjoint)
    net = load_case("case33bw")
    res = solve_distflow(net, model="soc", import_price_per_mwh=50.0)
    assert res.binding == ()
    sens = loss_sensitivities(net)
    np.testing.assert_allclose(res.price_p_per_mwh, 50.0 * (1 - sens.dloss_dp), rtol=1e-5)
    np.testing.assert_allclose(res.price_q_per_mvarh, -50.0 * sens.dloss_dq, atol=1e-4)
    mlf = marginal_loss_factors(net)
    assert mlf.shape == (33,)
    assert mlf[17] < mlf[1] < 0  # injection at the far end of the main line saves the most


def test_errors():
    net = load_case("case33bw")
    with pytest.raises(InputError) as err:
        marginal_loss_factors(net, p_inj_mw=np.zeros(3))
    assert err.value.field == "p_inj_mw"
    with pytest.raises(SolverError, match="did not converge"):
        ac_power_flow(net, p_inj_mw=-net.bus_load_mw * 40)
