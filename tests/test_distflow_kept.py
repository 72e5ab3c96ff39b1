"""The LinDistFlow LP kept from call to call (issue 9): re-solved from the
previous basis, it must give what a fresh LP gives. Checked against an
interior-point solve (scipy's HiGHS IPM) for the kept-LP plumbing, against
the fresh LP call by call on the IEEE 33-bus feeder, and on the default
scenario interval by interval."""

from __future__ import annotations

import threading
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from transactive.errors import InputError, SolverError
from transactive.grid import distflow
from transactive.grid._lp import KeptLP
from transactive.grid.cases import load_case
from transactive.grid.distflow import Injections, solve_distflow
from transactive.markets.network import clear_network
from transactive.orders import OrderBatch
from transactive.sim import Scenario, simulate

PRICE = 50.0


@pytest.fixture
def feeder33():
    return load_case("case33bw")  # a fresh network per test: a fresh kept LP


@pytest.fixture
def kept_solves(monkeypatch):
    """Counts the solves that went through a kept LP."""
    count = [0]
    solve = KeptLP.solve

    def counted(self, *args, **kwargs):
        count[0] += 1
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(KeptLP, "solve", counted)
    return count


def _tight(net, vmin):
    bus = net.bus.copy()
    bus.loc[bus["type"] != 3, "vm_min_pu"] = vmin
    return net.replace(bus=bus)


def _same(fresh, kept):
    for name in ("p_inj_mw", "q_inj_mvar", "price_p_per_mwh", "price_q_per_mvarh", "vm_pu",
                 "p_mw", "q_mvar"):
        np.testing.assert_allclose(getattr(kept, name), getattr(fresh, name), rtol=1e-7,
                                   atol=1e-9, err_msg=name)
    for name in ("objective_per_h", "utility_cost_per_h", "rent_per_h", "grid_import_mw",
                 "grid_export_mw"):
        assert getattr(kept, name) == pytest.approx(getattr(fresh, name), rel=1e-7, abs=1e-9)
    assert kept.binding == fresh.binding


def _both(net, **kw):
    return (solve_distflow(net, reuse_model=False, **kw),
            solve_distflow(net, reuse_model=True, **kw))


# ------------------------------------------------------------ the plumbing
def test_kept_lp_follows_changes_and_growth_like_an_interior_point_solve():
    """min c x, rl <= A x <= ru, lb <= x <= ub: costs, bounds and right-hand
    sides change between solves, then columns and rows are added; every
    solve is compared with scipy's interior-point method (another algorithm,
    from a cold start)."""
    rng = np.random.default_rng(7)
    a = sp.random(6, 10, density=0.6, random_state=rng, format="csc") + sp.eye(6, 10,
                                                                                format="csc")
    lb, ub = np.zeros(10), rng.uniform(1.0, 3.0, 10)
    x0 = rng.uniform(0.2, 0.8, 10)  # strictly feasible, so every LP below is feasible
    lp = None
    for step in range(6):
        if step == 3:  # two more columns
            new = sp.random(a.shape[0], 2, density=0.7, random_state=rng, format="csc")
            assert lp is not None
            lp.add_columns(np.zeros(2), np.zeros(2), np.ones(2), new)
            a, lb, ub = sp.hstack([a, new], format="csc"), np.r_[lb, 0, 0], np.r_[ub, 1, 1]
            x0 = np.r_[x0, 0.5, 0.5]
        if step == 4:  # one more row
            row = sp.csr_matrix(rng.uniform(0, 1, (1, a.shape[1])))
            assert lp is not None
            lp.add_rows(np.array([-np.inf]), np.array([np.inf]), row)
            a = sp.vstack([a, row], format="csc")
        c = rng.normal(size=a.shape[1])
        rhs = a @ x0
        rl, ru = rhs - rng.uniform(0, 0.5, rhs.size), rhs + rng.uniform(0, 0.5, rhs.size)
        if lp is None:
            lp = KeptLP(c, lb, ub, a, rl, ru)
        sol = lp.solve(c, lb, ub, rl, ru)
        ref = linprog(c, A_ub=sp.vstack([a, -a]), b_ub=np.r_[ru, -rl],
                      bounds=list(zip(lb, ub, strict=True)), method="highs-ipm")
        assert ref.status == 0
        assert sol.objective == pytest.approx(ref.fun, rel=1e-7, abs=1e-9)
        np.testing.assert_allclose(sol.x, ref.x, atol=1e-6)
        # row duals: d objective / d row bound, whichever side binds
        n_row = a.shape[0]
        ref_dual = ref.ineqlin.marginals[:n_row] - ref.ineqlin.marginals[n_row:]
        np.testing.assert_allclose(sol.row_dual, ref_dual, atol=1e-6)
        assert lp.a.shape == a.shape
        assert abs(lp.a - a).max() < 1e-15


def test_kept_lp_refuses_an_infeasible_lp_and_recovers():
    lp = KeptLP(np.array([1.0]), np.zeros(1), np.ones(1), sp.csc_matrix([[1.0]]),
                np.array([0.5]), np.array([0.5]))
    with pytest.raises(SolverError, match="infeasible"):
        lp.solve(lp.c, lp.lb, lp.ub, np.array([2.0]), np.array([2.0]))
    assert lp.solve(lp.c, lp.lb, lp.ub, np.array([0.25]), np.array([0.25])).x.tolist() == [0.25]


# ------------------------------------------------------ the feeder model
def test_slots_grow_and_idle_slots_change_nothing(feeder33, kept_solves):
    """Calls with more, fewer and no offers at a bus, under a binding voltage
    limit (a dear reserve at bus 33 keeps every call feasible): the kept LP
    gives the fresh LP's optimum every time."""
    net = _tight(feeder33, 0.93)
    rng = np.random.default_rng(3)
    shapes = [[18, 18, 18, 7], [18, 7], [], [18] * 5 + [25, 7], [7]]
    binding = 0
    for buses in shapes:
        k = len(buses)
        inj = Injections(bus=[33, *buses], p_min_mw=np.zeros(k + 1),
                         p_max_mw=np.r_[2.0, rng.uniform(0.05, 0.3, k)],
                         cost_per_mwh=np.r_[90.0, rng.uniform(5.0, 45.0, k)])
        fresh, kept = _both(net, import_price_per_mwh=PRICE, injections=inj)
        _same(fresh, kept)
        binding += any("vm_min" in name for name in kept.binding)
    assert binding >= 2
    assert kept_solves[0] == len(shapes)
    model = distflow._kept(distflow._feeder(net))
    assert int((model.slots >= 0).sum()) == 1 + 5 + 1 + 1  # at buses 33, 18, 25, 7


def test_rating_rows_added_when_they_could_bind(feeder33):
    """A 2 MVA rating on branch 6-7 that only a large export can reach: its
    polygon enters the kept LP with the first call that could reach it, binds,
    and stays slack (as in the fresh LP, which leaves it out) after."""
    br = feeder33.branch.copy()
    br.loc[5, "rate_a_mw"] = 2.0
    net = feeder33.replace(branch=br)
    model = None
    for p_max in (0.0, 3.0, 0.5, 3.0):
        seller = Injections(bus=[10], p_min_mw=[0.0], p_max_mw=[p_max], cost_per_mwh=[20.0])
        fresh, kept = _both(net, import_price_per_mwh=PRICE, export_price_per_mwh=30.0,
                            injections=seller)
        _same(fresh, kept)
        model = distflow._kept(distflow._feeder(net))
        assert model.lim.tolist() == ([] if p_max == 0.0 else [5])
        assert ("rate[branch 5 (6-7)]" in kept.binding) == (p_max == 3.0)


def test_reactive_ranges_and_limits_take_a_fresh_lp(feeder33, kept_solves):
    inv = Injections(bus=[18], p_min_mw=[0.2], p_max_mw=[0.2], cost_per_mwh=[0.0],
                     q_min_mvar=[-0.3], q_max_mvar=[0.3], s_max_mva=[0.3])
    fresh, kept = _both(_tight(feeder33, 0.92), import_price_per_mwh=PRICE, injections=inv)
    _same(fresh, kept)
    assert kept_solves[0] == 0
    pf = Injections(bus=[18, 18], p_min_mw=[-0.2, 0.0], p_max_mw=[0.0, 0.1],
                    cost_per_mwh=[70.0, 20.0], q_per_p=[0.3, 0.0])
    _same(*_both(feeder33, import_price_per_mwh=PRICE, injections=pf))
    assert kept_solves[0] == 1


def test_infeasible_call_then_feasible_ones(feeder33):
    net = _tight(feeder33, 0.95)
    with pytest.raises(SolverError, match="cannot be served"):
        solve_distflow(net, import_price_per_mwh=PRICE)
    seller = Injections(bus=[18, 33], p_min_mw=[0.0, 0.0], p_max_mw=[3.0, 3.0],
                        cost_per_mwh=[10.0, 60.0])
    _same(*_both(net, import_price_per_mwh=PRICE, injections=seller))


def test_each_thread_keeps_its_own_model(feeder33):
    rng = np.random.default_rng(5)
    cases = [Injections(bus=rng.integers(2, 34, 6), p_min_mw=np.zeros(6),
                        p_max_mw=rng.uniform(0.1, 0.5, 6), cost_per_mwh=rng.uniform(0, 60, 6))
             for _ in range(8)]
    fresh = [solve_distflow(feeder33, import_price_per_mwh=PRICE, injections=c,
                            reuse_model=False) for c in cases]
    out: dict[int, list[distflow.DistFlowResult]] = {}

    def work(k: int) -> None:
        order = cases if k == 0 else cases[::-1]
        out[k] = [solve_distflow(feeder33, import_price_per_mwh=PRICE, injections=c)
                  for _ in range(3) for c in order]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, results in out.items():
        expected = (fresh if k == 0 else fresh[::-1]) * 3
        for f, r in zip(expected, results, strict=True):
            _same(f, r)


def test_reuse_model_must_be_a_bool(feeder33):
    with pytest.raises(InputError) as err:
        solve_distflow(feeder33, import_price_per_mwh=PRICE, reuse_model="yes")  # type: ignore[arg-type]
    assert err.value.field == "reuse_model"
    ob = OrderBatch(id=[1], participant=["a"], side=["buy"], price=[0.3], quantity=[1.0],
                    node=[5])
    with pytest.raises(InputError) as err:
        clear_network(ob, network=feeder33, import_price=0.25, export_price=0.05,
                      reuse_model=1)  # type: ignore[arg-type]
    assert err.value.field == "reuse_model"


# ------------------------------------------------------ the default run
def _numeric(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def test_default_scenario_unchanged_interval_by_interval(kept_solves):
    """Two days of the default community on the network market, with the
    kept LP and with a fresh LP every interval: accepted quantities, nodal
    prices, voltages, payments and every interval figure (the utility's cost
    among them) agree to 1e-7 relative."""
    runs = {}
    for reuse in (False, True):
        scenario = Scenario().with_overrides(
            **{"time.days": 2, "market.options": {"reuse_model": reuse}})
        before = kept_solves[0]
        # every interval through the LP (not the merit order where nothing binds)
        with mock.patch("transactive.sim.market.clear_network_merit", return_value=None):
            runs[reuse] = simulate(scenario)
        assert (kept_solves[0] > before) == reuse
    fresh, kept = runs[False], runs[True]
    assert fresh.scenario.market.mechanism == "network"
    assert kept_solves[0] >= len(kept.intervals)
    assert (fresh.orders["accepted"] > 0).sum() > 100
    for name in ("orders", "nodes", "intervals", "household_intervals"):
        a, b = getattr(fresh, name), getattr(kept, name)
        assert a.shape == b.shape
        for col in _numeric(a):
            np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float),
                                       rtol=1e-7, atol=1e-9, err_msg=f"{name}.{col}")


def test_a_warm_solve_that_ends_without_a_verdict_is_retried_cold():
    """HiGHS stopped by its iteration limit on the warm re-solve reports no
    verdict: the kept LP solves once more from scratch (limit lifted here as a
    cold restart would find it) instead of failing the run."""
    lp = KeptLP(np.array([1.0, 1.0]), np.zeros(2), np.ones(2),
                sp.csc_matrix([[1.0, 1.0], [1.0, -1.0]]), np.array([0.5, -0.5]),
                np.array([2.0, 0.5]))
    assert lp.solve(lp.c, lp.lb, lp.ub, lp.rl, lp.ru).objective == pytest.approx(0.5)
    h = lp._h
    h.setOptionValue("simplex_iteration_limit", 0)
    real_run = h.run
    calls = []

    def run():
        calls.append(h.getOptions().simplex_iteration_limit)
        status = real_run()
        h.setOptionValue("simplex_iteration_limit", 1_000_000)  # the cold retry may iterate
        return status

    lp._h = type("Spy", (), {"__getattr__": lambda self, name: getattr(h, name),
                             "run": staticmethod(run)})()
    sol = lp.solve(np.array([2.0, 1.0]), lp.lb, lp.ub, np.array([0.6, -0.5]), lp.ru)
    assert len(calls) == 2  # the warm solve stopped at its limit, the cold one finished
    # min 2 x1 + x2, x1 + x2 >= 0.6, x1 - x2 >= -0.5: the vertex (0.05, 0.55)
    np.testing.assert_allclose(sol.x, [0.05, 0.55], atol=1e-9)
    assert sol.objective == pytest.approx(0.65, abs=1e-12)
