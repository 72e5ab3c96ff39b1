"""N-1 security-constrained clearing: hand case, brute force, extensive form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from transactive.errors import InputError, SolverError
from transactive.grid import matrices
from transactive.grid.cases import load_case
from transactive.grid.matpower import read_matpower
from transactive.grid.network import Network
from transactive.grid.scopf import SCOPFResult, scopf, solve_dcopf

PGLIB = Path("/work/shared/cases/pglib_opf_case118_ieee.m")


def parallel(load_mw: float = 100.0, p_max_2: float = 200.0) -> Network:
    return Network(
        bus={"bus": [1, 2], "type": [3, 1]},
        branch={"from_bus": [1, 1], "to_bus": [2, 2], "x_pu": [0.1, 0.1],
                "rate_a_mw": [60.0, 60.0]},
        gen={"bus": [1, 2], "p_max_mw": [200.0, p_max_2], "cost_per_mwh": [10.0, 30.0]},
        load={"bus": [2], "p_mw": [load_mw]},
    )


def linear_costs(net: Network) -> Network:
    return net.replace(gen=net.gen.assign(cost_per_mw2h=0.0))


def dc_flows_without(net: Network, injection_mw: np.ndarray, out: int) -> np.ndarray:
    """Naive DC power flow with branch ``out`` switched off (dense numpy)."""
    on = net.branch["in_service"].to_numpy().copy()
    if out >= 0:
        on[out] = False
    f, t = net.from_position, net.to_position
    b = np.where(on, 1.0 / (net.branch["x_pu"].to_numpy() * net.branch["tap"].to_numpy()), 0.0)
    bus_b = np.zeros((net.n_bus, net.n_bus))
    for k in range(net.n_branch):
        bus_b[f[k], f[k]] += b[k]
        bus_b[t[k], t[k]] += b[k]
        bus_b[f[k], t[k]] -= b[k]
        bus_b[t[k], f[k]] -= b[k]
    keep = np.arange(net.n_bus) != net.ref_position
    theta = np.zeros(net.n_bus)
    theta[keep] = np.linalg.solve(bus_b[np.ix_(keep, keep)], injection_mw[keep] / net.base_mva)
    return b * (theta[f] - theta[t]) * net.base_mva


def splits(net: Network, k: int) -> bool:
    on = net.branch["in_service"].to_numpy().copy()
    on[k] = False
    g = sp.coo_matrix((np.ones(on.sum()), (net.from_position[on], net.to_position[on])),
                      shape=(net.n_bus, net.n_bus))
    return connected_components(g, directed=False)[0] > 1


# ------------------------------------------------------------------ by hand
def test_parallel_lines_by_hand() -> None:
    # Base: all 100 MW from the cheap bus-1 unit over two 60 MW lines. N-1: one
    # line must carry everything, so at most 60 MW may come from bus 1.
    base = solve_dcopf(parallel())
    sec = solve_dcopf(parallel(), security="n-1")
    assert isinstance(sec, SCOPFResult)
    np.testing.assert_allclose(base.gen["p_mw"], [100, 0], atol=1e-7)
    np.testing.assert_allclose(sec.gen["p_mw"], [60, 40], atol=1e-7)
    assert sec.objective == pytest.approx(60 * 10 + 40 * 30)
    np.testing.assert_allclose(sec.lmp, [10, 30], atol=1e-7)
    np.testing.assert_allclose(sec.congestion, [0, 20], atol=1e-7)
    assert sec.skipped.size == 0
    assert sec.outages.tolist() == [0, 1]
    # rent of the binding post-contingency limit: 20/MWh * 60 MW = 1200 = MS
    assert sec.congestion_rent == pytest.approx(1200)
    assert sec.merchandising_surplus == pytest.approx(1200)
    row = sec.contingency.iloc[0]
    assert abs(row["flow_mw"]) == pytest.approx(60)
    assert row["limit_mw"] == 60


def test_infeasible_names_the_contingencies() -> None:
    with pytest.raises(SolverError, match=r"N-1 security cannot be met.*outage of branch [01] "
                                          r"\(1-2\).*cannot be secured"):
        scopf(parallel(load_mw=100.0, p_max_2=20.0))
    # with a 100% overload allowance after an outage it can be secured
    res = scopf(parallel(load_mw=100.0, p_max_2=20.0), post_rating=2.0)
    np.testing.assert_allclose(res.gen["p_mw"], [100, 0], atol=1e-7)


def test_bad_options() -> None:
    with pytest.raises(InputError, match="security"):
        solve_dcopf("case9", security="n-2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="outages"):
        scopf(parallel(), outages=[5])
    with pytest.raises(InputError, match="rating"):
        scopf(parallel(), post_rating=-1.0)


# -------------------------------------------------------------- brute force
@pytest.fixture(scope="module")
def pg118() -> Network:
    if not PGLIB.exists():
        pytest.skip("PGLib cases not available")
    return read_matpower(PGLIB)


@pytest.mark.parametrize("case", ["pglib118", "case30", "case9"])
def test_brute_force_no_post_contingency_overload(case: str, pg118: Network) -> None:
    net = pg118 if case == "pglib118" else load_case(case)
    factor = 1.5 if case == "pglib118" else 1.0
    res = scopf(net, post_rating=factor)
    assert res.iterations <= 6  # constraint generation: a few solves, not one per outage
    post = res.post_limit_mw
    np.testing.assert_allclose(post, net.branch["rate_a_mw"].to_numpy() * factor)
    limited = np.isfinite(res.limit_mw)
    assert np.all(np.abs(res.flow_mw[limited]) <= res.limit_mw[limited] + 1e-5)
    np.testing.assert_allclose(dc_flows_without(net, res.injection_mw, -1), res.flow_mw,
                               atol=1e-6)
    for k in range(net.n_branch):
        if splits(net, k):
            assert k in res.skipped
            continue
        assert k in res.outages
        flow = dc_flows_without(net, res.injection_mw, k)
        mask = np.arange(net.n_branch) != k
        assert np.all(np.abs(flow[mask]) <= post[mask] + 1e-5), f"overload after outage {k}"
    # the base-case clearing alone is not secure here, so security cost something
    base = solve_dcopf(net)
    assert res.objective >= base.objective - 1e-6


def test_prices_decompose_and_rent_balances(pg118: Network) -> None:
    res = scopf(pg118, post_rating=1.5)
    assert len(res.contingency) > 0
    # lossless, priced against the reference bus
    assert not res.loss.any()
    np.testing.assert_allclose(res.energy, res.lmp[pg118.ref_position], atol=1e-9)
    # LMP = energy - sum over binding rows of mu * (PTDF_l + LODF_lk PTDF_k),
    # with PTDF and LODF from the matrices module
    h = matrices.ptdf(pg118)
    mu = res.shadow_price * np.sign(res.flow_mw)
    cong = -h.T @ mu
    c = res.contingency_rows
    for out, mon, lodf, _, mu_row in c:
        cong -= mu_row * (h[int(mon)] + lodf * h[int(out)])
    np.testing.assert_allclose(res.congestion, cong - cong[pg118.ref_position], atol=1e-6)
    assert res.merchandising_surplus == pytest.approx(res.congestion_rent, rel=1e-6)


# ----------------------------------------------------------- extensive form
def extensive_form_objective(net: Network, factor: float) -> float:
    """Every outage written out with its own bus angles, solved by scipy's linprog."""
    on = net.branch["in_service"].to_numpy()
    outs = [k for k in range(net.n_branch) if on[k] and not splits(net, k)]
    n, m, g = net.n_bus, net.n_branch, net.n_gen
    cases = [-1, *outs]
    n_var = g + n * len(cases)
    gen_bus = sp.coo_matrix((np.ones(g), (net.gen_position, np.arange(g))), shape=(n, g))
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    f, t = net.from_position, net.to_position
    x = net.branch["x_pu"].to_numpy() * net.branch["tap"].to_numpy()
    for c, out in enumerate(cases):
        live = on.copy()
        if out >= 0:
            live[out] = False
        b = np.where(live, net.base_mva / x, 0.0)
        inc = sp.coo_matrix((np.r_[np.ones(m), -np.ones(m)],
                             (np.r_[np.arange(m), np.arange(m)], np.r_[f, t])), shape=(m, n))
        bf = sp.diags(b) @ inc
        theta = sp.coo_matrix((np.ones(n), (np.arange(n), g + c * n + np.arange(n))),
                              shape=(n, n_var))
        ginj = sp.hstack([gen_bus, sp.coo_matrix((n, n_var - g))])
        a_eq.append(ginj - inc.T @ bf @ theta)
        b_eq.append(net.bus_load_mw)
        ref = sp.coo_matrix(([1.0], ([0], [g + c * n + net.ref_position])), shape=(1, n_var))
        a_eq.append(ref)
        b_eq.append(np.zeros(1))
        rate = net.branch["rate_a_mw"].to_numpy() * (1.0 if out < 0 else factor)
        keep = live & np.isfinite(rate)
        flows = (bf @ theta).tocsr()[keep]
        a_ub += [flows, -flows]
        b_ub += [rate[keep], rate[keep]]
    cost = np.r_[net.gen["cost_per_mwh"].to_numpy(), np.zeros(n_var - g)]
    bounds = [(lo, hi) for lo, hi in zip(net.gen["p_min_mw"], net.gen["p_max_mw"], strict=True)]
    bounds += [(None, None)] * (n_var - g)
    sol = linprog(cost, A_ub=sp.vstack(a_ub).tocsr(), b_ub=np.concatenate(b_ub),
                  A_eq=sp.vstack(a_eq).tocsr(), b_eq=np.concatenate(b_eq), bounds=bounds,
                  method="highs")
    assert sol.status == 0, sol.message
    return float(sol.fun) + float(net.gen["cost_per_h"].sum())


@pytest.mark.parametrize(("case", "factor"), [("case9", 1.0), ("case30", 1.0), ("case30", 1.2)])
def test_matches_extensive_form(case: str, factor: float) -> None:
    net = linear_costs(load_case(case))
    res = scopf(net, post_rating=factor)
    assert res.objective == pytest.approx(extensive_form_objective(net, factor), rel=1e-7)


def test_solve_dcopf_front_door(tmp_path: Path) -> None:
    from transactive.grid.matpower import write_matpower

    path = tmp_path / "nine.m"
    write_matpower(load_case("case9"), path)
    by_name, by_path = solve_dcopf("case9"), solve_dcopf(path)
    assert by_name.objective == pytest.approx(by_path.objective)
    assert solve_dcopf(str(path), formulation="angle").objective == pytest.approx(
        by_name.objective, rel=1e-7)
    sec = solve_dcopf("case9", security="n-1", post_rating=1.2)
    assert sec.skipped_branches == [(1, 4), (3, 6), (8, 2)]  # generator step-up transformers
