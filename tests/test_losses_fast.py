"""The fast path of the AC power flow and the loss factors (built once per
network, stacked operating points) against an independent reference: the
power-flow equations solved by scipy's MINPACK root finder (no Jacobian of
ours) and the loss factors by central differences of its losses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import root

from transactive.errors import InputError, SolverError
from transactive.grid.cases import load_case
from transactive.grid.losses import ac_power_flow, marginal_loss_factors
from transactive.grid.network import Network


def _reference(net: Network, p_mw: np.ndarray, q_mvar: np.ndarray) -> tuple[np.ndarray, float]:
    """|V| and total losses (MW) of a network with only a slack and PQ buses,
    from S_k = V_k conj(sum_j Y_kj V_j) solved by MINPACK's hybrid method on the
    rectangular parts of V, with a Y-bus built here from the branch table."""
    n, base = net.n_bus, net.base_mva
    y = np.zeros((n, n), dtype=complex)
    br = net.branch
    for f, t, r, x, b in zip(net.from_position, net.to_position, br["r_pu"], br["x_pu"],
                             br["b_pu"], strict=True):
        ys = 1 / complex(r, x)
        y[f, f] += ys + 0.5j * b
        y[t, t] += ys + 0.5j * b
        y[f, t] -= ys
        y[t, f] -= ys
    ref = net.ref_position
    free = np.arange(n) != ref
    spec = (p_mw + 1j * q_mvar)[free] / base

    def voltages(x: np.ndarray) -> np.ndarray:
        v = np.ones(n, dtype=complex)
        v[free] = x[: n - 1] + 1j * x[n - 1:]
        return v

    def mismatch(x: np.ndarray) -> np.ndarray:
        v = voltages(x)
        d = (v * np.conj(y @ v))[free] - spec
        return np.r_[d.real, d.imag]

    sol = root(mismatch, np.r_[np.ones(n - 1), np.zeros(n - 1)], method="hybr",
               options={"xtol": 1e-13})
    assert np.abs(sol.fun).max() < 1e-12, sol.message
    v = voltages(sol.x)
    return np.abs(v), float((v * np.conj(y @ v)).real.sum() * base)


def _radial_feeder(n_bus: int, seed: int) -> Network:
    """A random radial feeder (each bus hangs off an earlier one), big enough
    for the sparse path when ``n_bus`` is above 200."""
    rng = np.random.default_rng(seed)
    parent = np.array([rng.integers(max(0, k - 4), k) for k in range(1, n_bus)])
    return Network(bus={"bus": np.arange(1, n_bus + 1), "type": [3] + [1] * (n_bus - 1)},
                   branch={"from_bus": parent + 1, "to_bus": np.arange(2, n_bus + 1),
                           "r_pu": rng.uniform(0.001, 0.003, n_bus - 1),
                           "x_pu": rng.uniform(0.001, 0.003, n_bus - 1)},
                   gen={"bus": [1], "p_max_mw": [100.0]}, load=None, base_mva=10.0)


def _operating_points(net: Network, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random net injections, mostly loads, about 4 MW in all (MW, MVAr)."""
    rng = np.random.default_rng(seed)
    scale = 4.0 / net.n_bus / 0.05
    p = -rng.uniform(-0.02, 0.12, (count, net.n_bus)) * scale
    q = -rng.uniform(-0.01, 0.06, (count, net.n_bus)) * scale
    return p, q


@pytest.mark.parametrize(("make", "seed"), [(lambda: load_case("ieee33"), 1),
                                           (lambda: _radial_feeder(240, 2), 3)])
def test_fast_path_matches_an_independent_solver(make, seed):
    # the 33-bus feeder takes the dense path, the 240-bus one the sparse path
    net = make()
    p, q = _operating_points(net, 3, seed)
    for row in range(3):
        vm_ref, losses_ref = _reference(net, p[row], q[row])
        pf = ac_power_flow(net, p[row], q[row])
        np.testing.assert_allclose(pf.vm_pu, vm_ref, atol=1e-10)
        assert pf.losses_mw == pytest.approx(losses_ref, rel=1e-8)
    # loss factors against central differences of the reference's losses
    mlf = marginal_loss_factors(net, p[0], q[0])
    h = 1e-4  # MW
    for k in (1, net.n_bus // 2, net.n_bus - 1):
        up, down = p[0].copy(), p[0].copy()
        up[k] += h
        down[k] -= h
        fd = (_reference(net, up, q[0])[1] - _reference(net, down, q[0])[1]) / (2 * h)
        assert mlf[k] == pytest.approx(fd, abs=1e-6)


@pytest.mark.parametrize("make", [lambda: load_case("ieee33"), lambda: load_case("case30"),
                                  lambda: _radial_feeder(240, 4)])
def test_stacked_operating_points_equal_one_by_one(make):
    # dense (radial; meshed with PV buses) and sparse networks
    net = make()
    p, q = _operating_points(net, 12, 5)
    if net.pv_with_generator.size:  # keep the generators' set points
        p = p * 0.2 + _default_p(net)
    stacked = marginal_loss_factors(net, p, q)
    one_by_one = np.array([marginal_loss_factors(net, p[t], q[t]) for t in range(12)])
    assert stacked.shape == (12, net.n_bus)
    np.testing.assert_allclose(stacked, one_by_one, rtol=0, atol=1e-12)
    # one row of reactive injections stands for every operating point
    np.testing.assert_allclose(marginal_loss_factors(net, p, q[0]),
                               [marginal_loss_factors(net, row, q[0]) for row in p], atol=1e-12)


def _default_p(net: Network) -> np.ndarray:
    """The network's own net injections: generator set points minus loads."""
    gen_p = np.bincount(net.gen_position, net.gen["p_mw"].to_numpy(), net.n_bus)
    return gen_p - net.bus_load_mw


def test_results_do_not_depend_on_earlier_calls():
    # everything cached per network is independent of the injections: the
    # same call gives the same bits whatever was solved before it
    p, q = _operating_points(load_case("ieee33"), 2, 6)
    first = marginal_loss_factors(load_case("ieee33"), p[0], q[0])
    net = load_case("ieee33")
    marginal_loss_factors(net, p[1], q[1])
    np.testing.assert_array_equal(marginal_loss_factors(net, p[0], q[0]), first)


def test_stacked_input_errors():
    net = load_case("ieee33")
    p, q = _operating_points(net, 4, 7)
    with pytest.raises(InputError) as err:
        marginal_loss_factors(net, p, q[:3])
    assert err.value.field == "q_inj_mvar"
    p[2, 5] = np.nan
    with pytest.raises(InputError) as err:
        marginal_loss_factors(net, p, q)
    assert (err.value.field, err.value.row) == ("p_inj_mw", 2)
    with pytest.raises(InputError) as err:  # one operating point only
        ac_power_flow(net, p[:2], q[0])
    assert err.value.field == "p_inj_mw"
    p[2, 5] = 0.0
    p[3] *= 200  # a load the feeder cannot carry
    with pytest.raises(SolverError, match="did not converge"):
        marginal_loss_factors(net, p, q)


@pytest.mark.parametrize("case", ["ieee33", "case30", "case118"])
def test_banded_adjoint_equals_a_dense_solve(case):
    # the transposed Jacobians of a stack, in band storage as one block-diagonal
    # band matrix (radial: a few buses wide; meshed, with PV buses: wider),
    # against LAPACK's dense solve of each row's transposed Jacobian
    from transactive.grid.losses import _adjoint, _jacobian, _model, _newton, _spec

    net = load_case(case)
    model = _model(net)
    assert model.band is not None
    p, q = _operating_points(net, 4, 7)
    if net.pv_with_generator.size:
        p = p * 0.2 + _default_p(net)
    v, s, _ = _newton(model, _spec(model, p, q, stack=True), 1e-9, 30)
    jac, grad = _jacobian(model, v, s)
    dense = np.linalg.solve(jac.swapaxes(-1, -2), grad[..., None])[..., 0]
    dp, dq = _adjoint(model, v, s)
    n1 = model.pvpq.size
    np.testing.assert_allclose(dp[:, model.pvpq], 1.0 + dense[:, :n1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dq[:, model.pq], dense[:, n1:], rtol=0, atol=1e-12)
