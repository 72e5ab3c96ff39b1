"""DC-OPF market clearing: hand-worked cases, pandapower agreement, properties."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import InputError, SolverError
from transactive.grid import matrices
from transactive.grid.cases import load_case
from transactive.grid.dcopf import dcopf
from transactive.grid.matpower import from_pandapower, read_matpower
from transactive.grid.network import Network

PGLIB = Path("/work/shared/cases")
REL = 1e-4


def triangle(limit_13: float = 50.0) -> Network:
    return Network(
        bus={"bus": [1, 2, 3], "type": [3, 1, 1]},
        branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "x_pu": [0.1, 0.1, 0.1],
                "rate_a_mw": [200.0, 200.0, limit_13]},
        gen={"bus": [1, 2], "p_max_mw": [300.0, 300.0], "cost_per_mwh": [10.0, 20.0]},
        load={"bus": [3], "p_mw": [120.0]},
    )


def pglib(name: str) -> Network:
    path = PGLIB / f"pglib_opf_{name}.m"
    if not path.exists():
        pytest.skip("PGLib cases not available")
    return read_matpower(path)


# -------------------------------------------------------------- worked by hand
@pytest.mark.parametrize("formulation", ["ptdf", "angle"])
def test_triangle_congestion_by_hand(formulation: Any) -> None:
    # Equal reactances: 1 MW from bus 1 to bus 3 puts 2/3 on 1-3; from bus 2, 1/3.
    # f13 = 2/3 p1 + 1/3 p2 <= 50 with p1 + p2 = 120  =>  p1 = 30, p2 = 90.
    # LMP3: serve 1 MW more at 3 keeping f13 fixed: d1 + d2 = 1, 2/3 d1 + 1/3 d2 = 0
    # => d1 = -1, d2 = 2: 2*20 - 10 = 30. Shadow price: mu * (2/3 - 1/3) = 20 - 10.
    res = dcopf(triangle(), formulation=formulation)
    assert res.objective == pytest.approx(30 * 10 + 90 * 20)
    np.testing.assert_allclose(res.gen["p_mw"], [30, 90], atol=1e-7)
    np.testing.assert_allclose(res.lmp, [10, 20, 30], atol=1e-7)
    np.testing.assert_allclose(res.energy, 10, atol=1e-7)
    np.testing.assert_allclose(res.congestion, [0, 10, 20], atol=1e-7)
    np.testing.assert_allclose(res.shadow_price, [0, 0, 30], atol=1e-7)
    np.testing.assert_allclose(res.flow_mw, [-20, 70, 50], atol=1e-7)
    # merchandising surplus: 120*30 - 30*10 - 90*20 = 1500 = 30 * 50 rent
    assert res.merchandising_surplus == pytest.approx(1500)
    assert res.congestion_rent == pytest.approx(1500)


def test_uncongested_single_price() -> None:
    res = dcopf(triangle(limit_13=1000.0))
    np.testing.assert_allclose(res.lmp, 10, atol=1e-7)
    assert res.congestion_rent == 0
    assert res.n_limits == 0


def test_demand_bids_clear_the_market() -> None:
    # Gen at 1 (10/MWh) feeds bus 2 over a 50 MW line; 20 MW fixed load and an
    # 80 MW bid at 40/MWh at bus 2: the bid gets 30 MW and sets the bus-2 price.
    net = Network(bus={"bus": [1, 2], "type": [3, 1]},
                  branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1], "rate_a_mw": [50.0]},
                  gen={"bus": [1], "p_max_mw": [200.0], "cost_per_mwh": [10.0]},
                  load={"bus": [2], "p_mw": [20.0]})
    bids = pd.DataFrame({"bus": [2, 2], "p_max_mw": [80.0, 10.0], "price_per_mwh": [40.0, 5.0]})
    res = dcopf(net, bids=bids)
    np.testing.assert_allclose(res.bids["p_mw"], [30.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(res.lmp, [10.0, 40.0], atol=1e-7)
    assert res.shadow_price[0] == pytest.approx(30.0)
    assert res.objective == pytest.approx(50 * 10 - 30 * 40)
    # an offer at bus 2 cheaper than the bid relieves the line
    res2 = dcopf(net, bids=bids, offers={"bus": [2], "p_max_mw": [15.0],
                                         "price_per_mwh": [25.0]})
    np.testing.assert_allclose(res2.offers["p_mw"], [15.0], atol=1e-7)
    np.testing.assert_allclose(res2.bids["p_mw"], [45.0, 0.0], atol=1e-7)
    assert bids["p_max_mw"].tolist() == [80.0, 10.0]


def test_piecewise_cost_equals_split_generator() -> None:
    base = triangle(limit_13=1000.0)
    pwl = base.replace(
        gen={"bus": [1, 2], "p_max_mw": [300.0, 300.0], "cost_per_mwh": [0.0, 20.0]},
        pwl_cost={"gen": [0, 0, 0], "p_mw": [0.0, 100.0, 300.0],
                  "cost_per_h": [0.0, 1000.0, 7000.0]})  # slopes 10 then 30
    split = base.replace(gen={"bus": [1, 1, 2], "p_max_mw": [100.0, 200.0, 300.0],
                              "cost_per_mwh": [10.0, 30.0, 20.0]})
    net_load = pwl.replace(load={"bus": [3], "p_mw": [250.0]})
    a = dcopf(net_load)
    b = dcopf(split.replace(load={"bus": [3], "p_mw": [250.0]}))
    assert a.objective == pytest.approx(b.objective)
    np.testing.assert_allclose(a.lmp, b.lmp, atol=1e-7)
    assert a.gen["p_mw"].iloc[0] == pytest.approx(100.0)


def test_loss_factor_at_a_dispatched_bus_by_hand() -> None:
    """Two buses, the reference 1 and bus 2, one line without a limit;
    generators at bus 1 (10 per MWh) and bus 2 (12 per MWh), 200 MW each;
    100 MW of load at bus 2. Marginal loss factors LF = (0, -0.25): one MW
    more injected at bus 2 saves 0.25 MW of losses. The linearised balance is
    ``sum((1 - LF) * injection) = loss_offset_mw``, here 5 MW:
    ``p1 + 1.25 (p2 - 100) = 5``, i.e. ``p1 + 1.25 p2 = 130``. One MW of
    balance costs 10 from bus 1 and 12 / 1.25 = 9.6 from bus 2, so bus 2
    serves it all: ``p2 = 104``, ``p1 = 0``, cost 1248 per hour. The system
    price is lambda = 9.6 and ``LMP_k = lambda (1 - LF_k)`` = (9.6, 12.0):
    energy 9.6 everywhere, loss part ``-lambda LF`` = (0, 2.4), no congestion.
    (With the sign of LF flipped the balance would read ``p1 + 0.75 p2 =
    80``, bus 1 would serve it at 10, and every figure would change.)"""
    net = Network(bus={"bus": [1, 2], "type": [3, 2]},
                  branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]},
                  gen={"bus": [1, 2], "p_max_mw": [200.0, 200.0],
                       "cost_per_mwh": [10.0, 12.0]},
                  load={"bus": [2], "p_mw": [100.0]})
    res = dcopf(net, loss_factors=np.array([0.0, -0.25]), loss_offset_mw=5.0)
    np.testing.assert_allclose(res.gen["p_mw"], [0.0, 104.0], atol=1e-6)
    assert res.objective == pytest.approx(1248.0)
    np.testing.assert_allclose(res.lmp, [9.6, 12.0], atol=1e-7)
    np.testing.assert_allclose(res.energy, 9.6, atol=1e-7)
    np.testing.assert_allclose(res.loss, [0.0, 2.4], atol=1e-7)
    np.testing.assert_allclose(res.congestion, 0.0, atol=1e-7)


def test_loss_factor_hook() -> None:
    net = triangle(limit_13=1000.0)
    lf = np.array([0.0, 0.02, -0.05])
    res = dcopf(net, loss_factors=lf)
    # the bus-1 unit is marginal: lambda = 10, LMP_i = 10 (1 - LF_i)
    np.testing.assert_allclose(res.lmp, 10 * (1 - lf), atol=1e-7)
    np.testing.assert_allclose(res.loss, -10 * lf, atol=1e-7)
    # no limit binds, so no congestion; the energy part is the marginal cost
    assert not res.shadow_price.any()
    np.testing.assert_allclose(res.congestion, 0.0, atol=1e-7)
    np.testing.assert_allclose(res.energy, 10.0, atol=1e-7)
    with pytest.raises(InputError, match="loss_factors"):
        dcopf(net, loss_factors=lf, formulation="angle")
    # 3 MW of losses at the operating point: the bus-1 unit covers them
    lossy = dcopf(net, loss_factors=np.zeros(3), loss_offset_mw=3.0)
    assert lossy.gen["p_mw"].sum() == pytest.approx(123.0)


# ------------------------------------------------------------------- errors
def test_load_above_capacity() -> None:
    net = triangle().replace(load={"bus": [3], "p_mw": [700.0]})
    with pytest.raises(SolverError, match=r"load 700 MW exceeds the total capacity 600 MW"):
        dcopf(net)


@pytest.mark.parametrize("formulation", ["ptdf", "angle"])
def test_line_infeasibility_names_the_branch(formulation: Any) -> None:
    net = Network(bus={"bus": [1, 2], "type": [3, 1]},
                  branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1], "rate_a_mw": [10.0]},
                  gen={"bus": [1], "p_max_mw": [200.0], "cost_per_mwh": [10.0]},
                  load={"bus": [2], "p_mw": [50.0]})
    with pytest.raises(SolverError, match=r"branch 0 \(1-2\)"):
        dcopf(net, formulation=formulation)


def test_bad_inputs() -> None:
    net = triangle()
    with pytest.raises(InputError, match=r"bids\.bus.*does not exist: 9"):
        dcopf(net, bids={"bus": [9], "p_max_mw": [1.0], "price_per_mwh": [1.0]})
    with pytest.raises(InputError, match=r"offers\.p_max_mw"):
        dcopf(net, offers={"bus": [1], "p_max_mw": [-1.0], "price_per_mwh": [1.0]})
    with pytest.raises(InputError, match="formulation"):
        dcopf(net, formulation="dense")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="rating"):
        dcopf(net, rating="d")
    split = net.replace(branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]})
    with pytest.raises(InputError, match=r"2 islands.*\[3\]"):
        dcopf(split)


def test_to_dict_schema_and_json() -> None:
    res = dcopf(load_case("case9"))
    d = res.to_dict()
    assert set(d) == {"objective", "buses", "branches", "generators"}
    assert set(d["buses"][0]) == {"bus", "lmp", "energy", "congestion", "loss"}
    assert set(d["branches"][0]) == {"from_bus", "to_bus", "flow_mw", "limit_mw", "shadow_price"}
    assert set(d["generators"][0]) == {"bus", "p_mw"}
    assert [b["bus"] for b in d["buses"]] == list(range(1, 10))
    json.dumps(d)


def test_network_not_changed() -> None:
    net = load_case("case30")
    before = {t: getattr(net, t).copy() for t in ("bus", "branch", "gen", "load")}
    dcopf(net, bids={"bus": [5], "p_max_mw": [10.0], "price_per_mwh": [50.0]})
    for t, frame in before.items():
        pd.testing.assert_frame_equal(getattr(net, t), frame)


# ------------------------------------------------------------ against pandapower
def _rundcopp(pp_net: Any) -> tuple[float, np.ndarray, np.ndarray]:
    pp = pytest.importorskip("pandapower")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(pp_net)
    # generation per bus position (pandapower's bus order is ours)
    at = np.r_[pp_net.ext_grid.bus.to_numpy(), pp_net.gen.bus.to_numpy()]
    p = np.r_[pp_net.res_ext_grid.p_mw.to_numpy(), pp_net.res_gen.p_mw.to_numpy()]
    pg = np.bincount(pp_net.bus.index.get_indexer(at), p, len(pp_net.bus))
    return float(pp_net.res_cost), pp_net.res_bus.lam_p.to_numpy(), pg


def _congest(pp_net: Any) -> None:
    """Tighten the most loaded line to 90% of its DC-OPF flow."""
    _rundcopp(pp_net)
    flows = pp_net.res_line.p_from_mw.abs()
    k = flows.idxmax()
    # pandapower's rating: max_i_ka * vn_kv * sqrt(3) * max_loading_percent / 100
    mva_per_pct = (pp_net.line.max_i_ka.at[k] * pp_net.bus.vn_kv.at[pp_net.line.from_bus.at[k]]
                   * np.sqrt(3) / 100)
    pp_net.line.loc[k, "max_loading_percent"] = 0.9 * flows.at[k] / mva_per_pct


@pytest.mark.parametrize("case", ["case9", "case30", "case118"])
@pytest.mark.parametrize("congested", [False, True])
def test_agrees_with_pandapower_rundcopp(case: str, congested: bool) -> None:
    pn = pytest.importorskip("pandapower.networks")
    pp_net = getattr(pn, case)()
    if congested:
        _congest(pp_net)
    ours_net = from_pandapower(pp_net, bus_numbers="index") if congested else load_case(case)
    cost, lam, pg = _rundcopp(pp_net)
    for formulation in ("ptdf", "angle"):
        res = dcopf(ours_net, formulation=formulation)
        assert res.objective == pytest.approx(cost, rel=REL)
        # pandapower's bus order is our bus order (index + 1 or MATPOWER name)
        scale = np.max(np.abs(lam))
        np.testing.assert_allclose(res.lmp, lam, rtol=REL, atol=REL * scale)
        # dispatch per bus (the built-in cases keep MATPOWER's generator order,
        # pandapower puts its external grid first)
        ours_pg = np.bincount(ours_net.gen_position, res.gen["p_mw"], ours_net.n_bus)
        np.testing.assert_allclose(ours_pg, pg, rtol=REL, atol=REL * np.max(pg))
        if congested:
            assert res.congestion_rent > 0
            assert np.ptp(res.lmp) > 1e-3


# ------------------------------------------------------------ structural checks
@pytest.fixture(scope="module")
def pg118() -> Network:
    return pglib("case118_ieee")


def test_formulations_agree_on_pglib(pg118: Network) -> None:
    a, b = dcopf(pg118, formulation="ptdf"), dcopf(pg118, formulation="angle")
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    np.testing.assert_allclose(a.lmp, b.lmp, atol=1e-6 * np.abs(b.lmp).max())
    np.testing.assert_allclose(a.flow_mw, b.flow_mw, atol=1e-5)
    assert a.n_limits < b.n_limits  # lazy rows: only the limits that bind


def test_congestion_is_minus_ptdf_transpose_mu(pg118: Network) -> None:
    res = dcopf(pg118, formulation="angle")
    assert res.congestion_rent > 0
    h = matrices.ptdf(pg118)  # reference-bus slack, independent of the solver
    signed_mu = res.shadow_price * np.sign(res.flow_mw)
    np.testing.assert_allclose(res.congestion, -h.T @ signed_mu, atol=1e-6)
    np.testing.assert_allclose(res.energy, res.lmp[pg118.ref_position], atol=1e-9)
    # merchandising surplus = congestion rent (no phase shifters in this case)
    assert res.merchandising_surplus == pytest.approx(res.congestion_rent, rel=1e-6)
    limited = np.isfinite(res.limit_mw)
    assert np.all(np.abs(res.flow_mw[limited]) <= res.limit_mw[limited] + 1e-6)
    binding = res.shadow_price > 1e-6
    np.testing.assert_allclose(np.abs(res.flow_mw[binding]), res.limit_mw[binding], rtol=1e-7)


def test_distributed_slack_moves_only_the_split(pg118: Network) -> None:
    ref = dcopf(pg118)
    weights = pg118.bus_load_mw.clip(min=0)
    dist = dcopf(pg118, slack=weights)
    np.testing.assert_allclose(dist.lmp, ref.lmp, atol=1e-7)
    energy = float(np.dot(weights / weights.sum(), ref.lmp))
    np.testing.assert_allclose(dist.energy, energy, atol=1e-7)
    assert abs(float(np.dot(weights, dist.congestion))) < 1e-6 * weights.sum()


@st.composite
def random_networks(draw: st.DrawFn) -> Network:
    n = draw(st.integers(3, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parent = [int(rng.integers(0, i)) for i in range(1, n)]
    extra = [tuple(rng.choice(n, 2, replace=False)) for _ in range(int(rng.integers(0, n)))]
    f = np.r_[parent, [e[0] for e in extra]].astype(int) + 1
    t = np.r_[np.arange(1, n), [e[1] for e in extra]].astype(int) + 1
    m = f.size
    n_gen = int(rng.integers(2, 5))
    return Network(
        bus={"bus": np.arange(1, n + 1), "type": [3] + [1] * (n - 1)},
        branch={"from_bus": f, "to_bus": t, "x_pu": rng.uniform(0.05, 0.3, m),
                "rate_a_mw": rng.uniform(20, 120, m)},
        gen={"bus": rng.integers(1, n + 1, n_gen), "p_max_mw": rng.uniform(50, 200, n_gen),
             "cost_per_mwh": rng.uniform(5, 50, n_gen),
             "cost_per_mw2h": rng.choice([0.0, 0.05], n_gen)},
        load={"bus": np.arange(1, n + 1), "p_mw": rng.uniform(0, 30, n)},
    )


@settings(max_examples=40, deadline=None)
@given(random_networks())
def test_property_formulations_agree_and_prices_decompose(net: Network) -> None:
    try:
        a = dcopf(net, formulation="ptdf")
    except SolverError:
        with pytest.raises(SolverError):
            dcopf(net, formulation="angle")
        return
    b = dcopf(net, formulation="angle")
    assert a.objective == pytest.approx(b.objective, rel=1e-6, abs=1e-6)
    tol = 1e-4 * max(1.0, np.abs(b.lmp).max())
    np.testing.assert_allclose(a.lmp, b.lmp, atol=tol)
    # the parts, each another way: the energy part (the dual of the PTDF
    # model's one balance row) is the angle model's LMP at the reference bus;
    # the congestion part is -PTDF^T mu over the angle model's binding limits
    # (KKT of the angle model, PTDF from the matrices module); no losses
    ref = net.ref_position
    np.testing.assert_allclose(a.energy, b.lmp[ref], atol=tol)
    h = matrices.ptdf(net)
    np.testing.assert_allclose(b.congestion, -h.T @ (b.shadow_price * np.sign(b.flow_mw)),
                               atol=tol)
    assert not a.loss.any()
    assert np.all(np.abs(a.flow_mw) <= a.limit_mw + 1e-5)
    assert a.merchandising_surplus == pytest.approx(a.congestion_rent, rel=1e-5, abs=1e-4)
    # flows balance the injections at every bus
    a_mat = matrices.incidence(net)
    np.testing.assert_allclose(a_mat.T @ a.flow_mw, a.injection_mw, atol=1e-6)
