"""p2p_admm: the decentralised P2P market against its central LP (HiGHS), the
uniform auction's welfare without product differentiation, the registry hook,
and refusals of bad options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import transactive as te
from transactive.decentral.p2p_admm import clear_p2p_admm
from transactive.decentral.problem import build_problem, solve_central
from transactive.errors import InputError
from transactive.markets.uniform import clear_uniform
from transactive.orders import OrderBatch


def community(n_agents: int, seed: int, orders_each: int = 3) -> OrderBatch:
    """Half buyers (limits 0.10-0.40), half sellers (0.00-0.30), a few orders each."""
    rng = np.random.default_rng(seed)
    part = np.repeat(np.arange(n_agents), orders_each)
    buy = part < n_agents // 2
    price = np.where(buy, rng.uniform(0.10, 0.40, part.size), rng.uniform(0.0, 0.30, part.size))
    return OrderBatch(id=np.arange(part.size), participant=part, side=np.where(buy, 1, -1),
                      price=price, quantity=rng.uniform(0.5, 5.0, part.size))


def check_against_central(n_agents: int, neighbours: int | None, seed: int,
                          tol: float = 1e-6) -> None:
    orders = community(n_agents, seed)
    n_buyers = n_agents // 2
    cost = np.random.default_rng(seed + 1).uniform(0.0, 0.02, (n_buyers, n_agents - n_buyers))
    central = solve_central(build_problem(orders, neighbours=neighbours, pair_cost_per_kwh=cost))
    c = clear_p2p_admm(orders, neighbours=neighbours, pair_cost_per_kwh=cost, tol=tol)
    problem = build_problem(orders, neighbours=neighbours, pair_cost_per_kwh=cost)
    trades = c.info["trades_kwh"].tocsr()[problem.edge_buyer,
                                          problem.edge_seller - n_buyers].A1
    assert c.info["converged"]
    assert abs(central.welfare - c.info["net_welfare"]) <= 1e-4 * abs(central.welfare)
    # random pair costs make the optimal trades unique
    np.testing.assert_allclose(trades, central.trade_kwh, atol=1e-3)


def test_ten_agents_full_neighbourhood_match_the_central_lp() -> None:
    check_against_central(10, None, seed=0)


def test_hundred_agents_sparse_neighbourhood_match_the_central_lp() -> None:
    check_against_central(100, 6, seed=1)


@pytest.mark.slow
def test_thousand_agents_match_the_central_lp() -> None:
    check_against_central(1000, 8, seed=2, tol=1e-7)


def test_without_differentiation_it_reaches_the_uniform_auctions_welfare() -> None:
    orders = community(60, seed=3)
    uniform = clear_uniform(orders)
    c = clear_p2p_admm(orders)
    assert c.info["n_edges"] == 30 * 30
    assert abs(uniform.welfare - c.welfare) <= 1e-4 * uniform.welfare
    # every edge trades at (nearly) the one competitive price
    assert uniform.info["p_low"] - 1e-3 <= c.clearing_price <= uniform.info["p_high"] + 1e-3


def test_a_distance_cost_keeps_trades_local() -> None:
    # buyers and sellers on a line (their buses): a costly distance makes each
    # buyer take its nearest seller's energy
    orders = OrderBatch(id=[1, 2, 3, 4], participant=["b1", "b2", "s1", "s2"],
                        side=["buy", "buy", "sell", "sell"], price=[0.3, 0.3, 0.1, 0.1],
                        quantity=[1.0, 1.0, 1.0, 1.0], node=[0, 10, 0, 10])
    c = clear_p2p_admm(orders, distance_cost_per_kwh=0.01)
    np.testing.assert_allclose(c.info["trades_kwh"].toarray(), np.eye(2), atol=1e-4)
    assert c.info["preference_cost"] < 1e-4
    sparse = clear_p2p_admm(orders, neighbours=1)
    assert sparse.info["n_edges"] == 2


def test_a_sparse_cost_matrix_is_the_neighbourhood() -> None:
    orders = community(6, seed=4)
    pattern = sp.coo_matrix(([0.01, 0.0, 0.02], ([0, 1, 2], [0, 1, 2])), shape=(3, 3))
    c = clear_p2p_admm(orders, pair_cost_per_kwh=pattern)
    assert c.info["n_edges"] == 3
    assert set(zip(*c.info["trades_kwh"].nonzero(), strict=True)) <= {(0, 0), (1, 1), (2, 2)}


def test_registry_hook_imports_decentral_only_when_asked() -> None:
    code = ("import sys, transactive.markets as m; "
            "assert 'p2p_admm' in m.available(); "
            "assert 'transactive.decentral' not in sys.modules; "
            "m.get('p2p_admm'); assert 'transactive.decentral.p2p_admm' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    ob = te.OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
                       price=[0.3, 0.1], quantity=[1.0, 2.0])
    assert te.clear(ob, "p2p_admm").volume == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(InputError, match="tol"):
        te.clear(ob, "p2p_admm", tolerance=1e-3)


@pytest.mark.parametrize(("options", "field"), [
    ({"neighbours": 0}, "neighbours"),
    ({"neighbours": 1.5}, "neighbours"),
    ({"distance_cost_per_kwh": -0.1}, "distance_cost_per_kwh"),
    ({"distance_cost_per_kwh": float("nan")}, "distance_cost_per_kwh"),
    ({"pair_cost_per_kwh": np.zeros((2, 2))}, "pair_cost_per_kwh"),
    ({"pair_cost_per_kwh": -np.ones((1, 1))}, "pair_cost_per_kwh"),
    ({"tol": 0.0}, "tol"),
    ({"max_iter": 0}, "max_iter"),
    ({"rho": -1.0}, "rho"),
])
def test_bad_options_are_refused_naming_them(options: dict[str, object], field: str) -> None:
    ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"], price=[0.3, 0.1],
                    quantity=[1.0, 2.0])
    with pytest.raises(InputError) as err:
        clear_p2p_admm(ob, **options)  # type: ignore[arg-type]
    assert err.value.field == field


def test_one_side_only_or_nothing_trades() -> None:
    ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "buy"], price=[0.3, 0.1],
                    quantity=[1.0, 2.0])
    c = clear_p2p_admm(ob)
    assert c.volume == 0
    assert np.isnan(c.clearing_price)
    empty = OrderBatch(id=[], participant=[], side=[], price=[], quantity=[])
    assert clear_p2p_admm(empty).volume == 0


@pytest.mark.slow
def test_dask_workers_give_the_same_clearing() -> None:
    distributed = pytest.importorskip("distributed")
    orders = community(100, seed=5)
    alone = clear_p2p_admm(orders, neighbours=6, distance_cost_per_kwh=0.001)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        spread = clear_p2p_admm(orders, neighbours=6, distance_cost_per_kwh=0.001,
                                client=client)
    assert spread.info["iterations"] == alone.info["iterations"]
    np.testing.assert_allclose(spread.accepted, alone.accepted, atol=1e-9)
    with pytest.raises(InputError, match="client"):
        clear_p2p_admm(orders, client="tcp://127.0.0.1:8786")


def test_the_central_lp_agrees_with_an_independent_cvxpy_model() -> None:
    # the reference itself, checked: the same market written in cvxpy (fills per
    # order, trades per buyer-seller pair) and solved by Clarabel
    cp = pytest.importorskip("cvxpy")
    orders = community(10, seed=6)
    cost = np.random.default_rng(7).uniform(0.0, 0.02, (5, 5))
    central = solve_central(build_problem(orders, pair_cost_per_kwh=cost))
    buy = orders.side == 1
    fill, trade = cp.Variable(len(orders)), cp.Variable((5, 5))
    part = orders.participant
    buyer_rows = [np.flatnonzero(buy & (part == b)) for b in range(5)]
    seller_rows = [np.flatnonzero(~buy & (part == 5 + s)) for s in range(5)]
    constraints = [fill >= 0, fill <= orders.quantity, trade >= 0]
    constraints += [cp.sum(fill[r]) == cp.sum(trade[b, :]) for b, r in enumerate(buyer_rows)]
    constraints += [cp.sum(fill[r]) == cp.sum(trade[:, s]) for s, r in enumerate(seller_rows)]
    gains = orders.price * orders.side
    problem = cp.Problem(cp.Maximize(gains @ fill - cp.sum(cp.multiply(cost, trade))),
                         constraints)
    problem.solve(solver=cp.CLARABEL)
    assert central.welfare == pytest.approx(problem.value, rel=1e-7)
    np.testing.assert_allclose(central.trade_kwh, trade.value.ravel(), atol=1e-6)


def test_a_simulated_community_trades_peer_to_peer_as_in_the_uniform_auction() -> None:
    from transactive.sim import Scenario, simulate

    def run(mechanism: str) -> float:
        scenario = Scenario.from_dict({"community": {"households": 12}, "time": {"days": 1},
                                       "seed": 3, "market": {"mechanism": mechanism}})
        return float(simulate(scenario).intervals["welfare"].sum())

    p2p = run("p2p_admm")
    assert p2p > 0
    assert p2p == pytest.approx(run("uniform"), rel=1e-4)
