"""Strategic offers (bilevel MPEC as a MILP) and market-power measures: a case
derived by hand, the clearing against DC-OPF, the MILP against brute force
over a grid of the agent's offers on IEEE 9/14/30 and PGLib 118.

No published case is reproduced: the data of Ruiz & Conejo (2009)'s
illustrative example and of the examples of Gabriel et al. (2013) were not
available to us, so the reference is the hand-derived triangle below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transactive.errors import InputError
from transactive.grid.cases import load_case
from transactive.grid.dcopf import dcopf
from transactive.grid.matpower import read_matpower
from transactive.grid.network import Network
from transactive.markets.power import hhi, lerner_index, residual_supply_index
from transactive.markets.strategic import OfferMarket, brute_force, strategic_offer

PGLIB = Path("/work/shared/cases")


def triangle() -> Network:
    """Three buses, equal reactances; line 1-3 limited to 50 MW; cheap gen 0
    at bus 1 (10/MWh), gen 1 at bus 2 (20/MWh), 120 MW of load at bus 3."""
    return Network(
        bus={"bus": [1, 2, 3], "type": [3, 1, 1]},
        branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "x_pu": [0.1, 0.1, 0.1],
                "rate_a_mw": [200.0, 200.0, 50.0]},
        gen={"bus": [1, 2], "p_max_mw": [300.0, 300.0], "cost_per_mwh": [10.0, 20.0]},
        load={"bus": [3], "p_mw": [120.0]})


def test_triangle_by_hand() -> None:
    """The agent owns gen 1 (bus 2, cost 20); price cap (value of lost load)
    C = 100 at every bus, line penalty 1000.

    With equal reactances, 1 MW from bus 1 to bus 3 puts 2/3 MW on line 1-3
    and 1 MW from bus 2 puts 1/3, so with 120 MW at bus 3 gen 0 can send at
    most ``2/3 p0 + 1/3 (120 - p0) <= 50``: p0 <= 30 whatever the agent
    offers above 10, and the agent serves the other 90 MW at its own offer
    ``a``. Line 1-3 alone binds, so the prices lie on a line in its PTDF:
    ``lmp3 = 2 lmp2 - lmp1 = 2a - 10``. Once that passes C, shedding at bus 3
    is cheaper than the agent's energy: the agent keeps its 90 MW as long
    as ``a <= (C + 10) / 2 = 55``. So the optimum offers a* = 55, profit
    (55 - 20) * 90 = 3,150, prices [10, 55, 100] against the truthful [10,
    20, 30] (profit 0). The shadow price of line 1-3 is 1.5 (100 - 10) = 135,
    below the penalty, so no limit is exceeded.
    """
    out = strategic_offer(triangle(), [1], price_cap_per_mwh=100.0, penalty_per_mwh=1000.0)
    assert out.offer_per_mwh == pytest.approx([55.0], abs=1e-6)
    assert out.profit == pytest.approx(3150.0, abs=1e-5)
    assert out.gen_p_mw == pytest.approx([30.0, 90.0], abs=1e-6)
    assert out.lmp == pytest.approx([10.0, 55.0, 100.0], abs=1e-6)
    assert out.truthful_lmp == pytest.approx([10.0, 20.0, 30.0], abs=1e-6)
    assert out.truthful_profit == pytest.approx(0.0, abs=1e-6)
    assert out.shed_mw == pytest.approx(0.0, abs=1e-6)
    assert out.relaxed_mw == pytest.approx(0.0, abs=1e-6)
    # market power: the agent's Lerner index (55 - 20) / 55; HHI of 25 % / 75 %;
    # by capacity neither owner is pivotal (RSI 300 / 120), though the network
    # makes the agent pivotal at bus 3
    assert out.agent_lerner == pytest.approx(35.0 / 55.0)
    assert out.lerner[1] == pytest.approx(35.0 / 55.0)
    assert out.lerner[0] == pytest.approx(0.0, abs=1e-9)
    assert out.hhi == pytest.approx(25.0**2 + 75.0**2)
    assert out.rsi == pytest.approx([2.5, 2.5])
    # through the network, gen 0 alone delivers 75 MW (2/3 of it on line 1-3):
    # the agent is pivotal, 75 / 120; without gen 0 the agent serves all
    assert out.owners.tolist() == ["agent", "gen 0"]
    assert out.network_rsi == pytest.approx([75.0 / 120.0, 1.0])
    # brute force approaches the optimum from below; above it the agent loses its sales
    profits, best = brute_force(out.market, np.linspace(0.0, 100.0, 1001))
    assert profits.max() <= out.profit + 1e-6
    assert profits.max() == pytest.approx(3150.0, abs=1e-6)
    assert best == pytest.approx([55.0])
    assert out.market.agent_profit(out.market.clear([55.1])) == pytest.approx(0.0, abs=1e-6)
    d = out.to_dict()
    assert d["offers"][0]["markup_per_mwh"] == pytest.approx(35.0, abs=1e-6)
    assert [b["truthful_lmp"] for b in d["buses"]] == pytest.approx([10.0, 20.0, 30.0])


def test_line_penalty_caps_the_shadow_price() -> None:
    """With the default penalty (= the price cap, 100), line 1-3 is worth at
    most 100 per MW: the bus 3 price is 10 + 2/3 * 100 = 76.67 before any
    load is shed, and the agent's best offer is (10 + 76.67) / 2 = 43.33 with
    the line at its rating (a higher offer makes relaxing it cheaper)."""
    out = strategic_offer(triangle(), [1], price_cap_per_mwh=100.0)
    assert out.offer_per_mwh == pytest.approx([130.0 / 3.0], abs=1e-6)
    assert out.profit == pytest.approx((130.0 / 3.0 - 20.0) * 90.0, abs=1e-5)
    profits, _ = brute_force(out.market, np.linspace(0.0, 100.0, 301))
    assert profits.max() <= out.profit + 1e-6


def _linear(net: Network, market: OfferMarket, offer: float) -> Network:
    """The case with every generator's one block as a linear cost, the
    agent's at ``offer``: what DC-OPF clears when the offers are these."""
    b = market.blocks
    cost = net.column("gen", "cost_per_mwh").copy()
    cost[b.gen[b.gen >= 0]] = b.cost[b.gen >= 0]
    cost[market.free_gen] = offer
    gen = {name: net.column("gen", name) for name in
           ("bus", "p_max_mw", "p_min_mw", "in_service")}
    return net.replace(gen={**gen, "cost_per_mwh": cost, "cost_per_mw2h": np.zeros(net.n_gen)})


@pytest.mark.parametrize("case", ["case9", "case30", "pglib118"])
def test_clearing_is_dcopf(case: str) -> None:
    """Without shedding or relaxed limits the clearing of the offers is the
    DC-OPF of the same (one-block, linear) costs: same prices, and its
    dispatch costs what DC-OPF's optimum does at those costs. (The offers
    stay below 33.6: above it case9's gen 0 reaches 250 MW, the rating of
    bus 1's only branch, and bus 1's price is then any value in [33.6, 35.3],
    a degenerate dual each solver may pick differently.)"""
    path = PGLIB / "pglib_opf_case118_ieee.m"
    if case == "pglib118" and not path.exists():
        pytest.skip("PGLib cases not available")
    net = read_matpower(path) if case == "pglib118" else load_case(case)
    market = OfferMarket(net, [1], blocks=1, price_cap_per_mwh=200.0, penalty_per_mwh=1e4)
    for offer in (0.0, 3.0, 30.0, 33.0):
        cleared = market.clear([offer])
        ref = dcopf(_linear(net, market, offer))  # no fixed costs: cost_per_h is 0
        assert cleared.relax_mw.sum() == pytest.approx(0.0, abs=1e-9)
        assert cleared.lmp == pytest.approx(ref.lmp, abs=1e-6)
        lin = _linear(net, market, offer)
        gen_mw = np.bincount(market.blocks.gen[market.blocks.gen >= 0],
                             cleared.q_mw[market.blocks.gen >= 0], net.n_gen)
        assert float(lin.column("gen", "cost_per_mwh") @ gen_mw) == pytest.approx(
            ref.objective, rel=1e-9)


def _check_against_grid(net: Network, agent: list[int], cap: float, n: int = 401) -> None:
    out = strategic_offer(net, agent, blocks=1, price_cap_per_mwh=cap)
    m = out.market
    scale = max(1.0, abs(out.profit))
    profits, _ = brute_force(m, np.linspace(m.offer_floor, cap, n))
    # no offer on the grid does better than the MILP's ...
    assert profits.max() <= out.profit + 1e-6 * scale
    # ... and the MILP's profit is what the market pays at its offer, or just below
    # it where the agent's dispatch is a tie the clearing may break either way
    near = [m.agent_profit(m.clear(np.maximum(out.offer_per_mwh - d, m.offer_floor)))
            for d in (0.0, 1e-7)]
    assert max(near) == pytest.approx(out.profit, abs=1e-4 * scale)


@pytest.mark.parametrize("case", ["case9", "case14", "case30"])
def test_milp_against_brute_force(case: str) -> None:
    net = load_case(case)
    for g in np.flatnonzero(net.column("gen", "in_service"))[:3].tolist():
        _check_against_grid(net, [g], cap=100.0)


@pytest.mark.slow
def test_milp_against_brute_force_pglib118() -> None:
    path = PGLIB / "pglib_opf_case118_ieee.m"
    if not path.exists():
        pytest.skip("PGLib cases not available")
    net = read_matpower(path)
    for g in (4, 29):  # a load pocket (offer near 651) and a congestion-priced unit
        _check_against_grid(net, [g], cap=1000.0, n=201)


def test_two_blocks_against_a_grid() -> None:
    """A quadratic cost in two blocks: the agent's two rising prices against
    every rising pair on a grid (case9, generator 1)."""
    net = load_case("case9")
    out = strategic_offer(net, [1], blocks=2, price_cap_per_mwh=60.0)
    m = out.market
    assert m.n_free == 2
    a, b = np.meshgrid(np.linspace(0.0, 60.0, 61), np.linspace(0.0, 60.0, 61))
    grid = np.column_stack([a.ravel(), b.ravel()])
    grid = grid[grid[:, 0] <= grid[:, 1]]
    profits, _ = brute_force(m, grid)
    assert profits.max() <= out.profit + 1e-6 * max(1.0, out.profit)
    assert np.all(np.diff(out.offer_per_mwh) >= -1e-9)
    near = max(m.agent_profit(m.clear(out.offer_per_mwh - d)) for d in (0.0, 1e-7))
    assert near == pytest.approx(out.profit, rel=1e-4)


def test_an_owner_of_two_generators() -> None:
    """Owning both units of the triangle, the agent is pivotal: it prices at
    the cap, where shedding at bus 3 sets in, and its profit beats either
    unit's alone."""
    net = triangle()
    both = strategic_offer(net, [0, 1], price_cap_per_mwh=100.0, penalty_per_mwh=1000.0)
    alone = strategic_offer(net, [1], price_cap_per_mwh=100.0, penalty_per_mwh=1000.0)
    assert both.profit > alone.profit
    assert both.hhi == pytest.approx(10_000.0)
    assert both.rsi == pytest.approx([0.0])
    m = both.market
    a, b = np.meshgrid(np.linspace(0.0, 100.0, 101), np.linspace(0.0, 100.0, 101))
    profits, _ = brute_force(m, np.column_stack([a.ravel(), b.ravel()]))
    assert profits.max() <= both.profit + 1e-6


def test_refusals() -> None:
    net = triangle()
    with pytest.raises(InputError, match="agent"):
        strategic_offer(net, [5])
    with pytest.raises(InputError, match="agent"):
        strategic_offer(net, [])
    with pytest.raises(InputError, match="price_cap_per_mwh"):
        strategic_offer(net, [0], price_cap_per_mwh=15.0)  # the rival offers 20
    with pytest.raises(InputError, match="blocks"):
        strategic_offer(net, [0], blocks=0)
    with pytest.raises(InputError, match="offer_floor_per_mwh"):
        strategic_offer(net, [0], price_cap_per_mwh=50.0, offer_floor_per_mwh=50.0)
    with pytest.raises(InputError, match="penalty_per_mwh"):
        strategic_offer(net, [0], penalty_per_mwh=-1.0)
    market = OfferMarket(net, [0])
    with pytest.raises(InputError, match="offers_per_mwh"):
        brute_force(market, np.zeros((3, 2)))


def test_power_measures() -> None:
    owner = np.array(["x", "y", "y", "z"])
    assert hhi(np.array([50.0, 25.0, 25.0, 0.0]), owner) == pytest.approx(5000.0)
    assert np.isnan(hhi(np.zeros(4), owner))
    rsi = residual_supply_index(np.array([100.0, 50.0, 50.0, 20.0]), owner, 150.0)
    assert rsi == pytest.approx([120.0 / 150.0, 120.0 / 150.0, 200.0 / 150.0])
    index = lerner_index(np.array([40.0, 50.0, 50.0, -5.0]), np.array([30.0, 25.0, 50.0, 0.0]),
                         np.array([10.0, 10.0, 30.0, 5.0]), owner)
    assert index[:2] == pytest.approx([0.25, (10 * 0.5 + 30 * 0.0) / 40.0])
    assert np.isnan(index[2])  # z sells only at a negative price
    with pytest.raises(InputError, match="demand"):
        residual_supply_index(np.ones(4), owner, 0.0)
    with pytest.raises(InputError, match="energy"):
        hhi(np.array([1.0, -1.0, 0.0, 0.0]), owner)
    with pytest.raises(InputError, match="owner"):
        hhi(np.ones(4), owner[:3])


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from transactive.cli import main

    assert main(["strategic", "case9", "--agent", "bus:2", "--blocks", "1", "--price-cap",
                 "100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    out = strategic_offer(load_case("case9"), [1], blocks=1, price_cap_per_mwh=100.0)
    assert d["agent"] == [1]
    assert {o["owner"] for o in d["owners"]} == {"agent", "gen 0", "gen 2"}
    assert all(o["network_rsi"] == pytest.approx(1.0) for o in d["owners"])  # none pivotal
    assert d["profit"] == pytest.approx(out.profit)
    assert [o["offer_per_mwh"] for o in d["offers"]] == pytest.approx(out.offer_per_mwh)
    assert main(["strategic", "case9", "--agent", "1"]) == 0
    assert "offer_per_mwh" in capsys.readouterr().out
    assert main(["strategic", "case9", "--agent", "x"]) == 2
    assert "option '--agent'" in capsys.readouterr().err
    assert main(["strategic", "case9", "--agent", "1", "--price-cap", "10"]) == 2
    assert "option '--price-cap'" in capsys.readouterr().err
