"""The network market's merit-order path against its LP, interval by interval.

Where no limit binds, :func:`clear_network_merit` must give what
:func:`clear_network` gives (to solver tolerance); where a limit could bind
it must say the row is not exact. The grid screen's flows and voltages must
be LinDistFlow's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import SolverError
from transactive.grid.cases import load_case
from transactive.grid.distflow import solve_distflow
from transactive.grid.screen import screen_feeder, screenable
from transactive.markets.network import clear_network, clear_network_merit
from transactive.orders import BUY, SELL, OrderBatch

FEEDER = load_case("ieee33")


def _orders(quantity: np.ndarray, limit: np.ndarray, node: np.ndarray) -> OrderBatch:
    rows = np.flatnonzero(quantity != 0)
    return OrderBatch(id=rows, participant=rows, side=np.where(quantity[rows] > 0, BUY, SELL),
                      price=limit[rows], quantity=np.abs(quantity[rows]), node=node[rows])


@st.composite
def _day(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    seed = draw(st.integers(0, 2**32 - 1))
    n_t, n = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.05, 1.0, 20.0]))  # kWh: light, moderate, overloaded
    quantity = rng.normal(0.0, scale, (n_t, n)) * (rng.random((n_t, n)) < 0.8)
    truthful = draw(st.booleans())
    elastic = draw(st.booleans())  # bids at their limits, on a cent grid (ties happen)
    bids = np.round(rng.uniform(0.0, 0.4, (n_t, n)), 2) if elastic else 0.30
    limit = np.where(quantity > 0, bids,
                     0.0 if truthful else np.round(rng.uniform(0.0, 0.35, (n_t, n)), 2))
    node = rng.integers(1, FEEDER.n_bus, n)
    return quantity, limit, node, np.full(n_t, 0.30), np.full(n_t, 0.08), elastic


@settings(max_examples=80, deadline=None)
@given(_day())
def test_exact_rows_are_the_lp_optimum(day: tuple[np.ndarray, ...]) -> None:
    quantity, limit, node, retail, feed_in, elastic = day
    opts = {"network": FEEDER, "dt_h": 0.25, "kw_per_unit": 30.0,
            "inelastic_demand": not elastic}
    merit = clear_network_merit(quantity, limit, node, retail, feed_in, **opts)
    assert merit is not None
    for k in np.flatnonzero(merit.exact):
        orders = _orders(quantity[k], limit[k], node)
        lp = clear_network(orders, import_price=retail[k], export_price=feed_in[k],
                           reuse_model=False, **opts)
        rows = np.flatnonzero(quantity[k] != 0)
        np.testing.assert_allclose(merit.accepted[k, rows], lp.accepted, atol=1e-7)
        np.testing.assert_allclose(lp.node_price, merit.price[k], atol=1e-9)
        assert lp.info["binding"] == ()
        for name in ("grid_import_kwh", "grid_export_kwh", "utility_cost", "losses_kwh"):
            assert getattr(merit, name)[k] == pytest.approx(lp.info[name], rel=1e-7, abs=1e-9)
        np.testing.assert_allclose(merit.vm_pu[k], lp.info["vm_pu"], atol=1e-7)


def test_a_row_where_a_limit_binds_is_not_exact() -> None:
    quantity = np.array([[0.5, 0.5], [40.0, 40.0]])  # the second overloads the feeder
    merit = clear_network_merit(quantity, np.full((2, 2), 0.3), np.array([17, 32]),
                                np.full(2, 0.3), np.full(2, 0.08), network=FEEDER,
                                kw_per_unit=30.0)
    assert merit is not None
    assert merit.exact.tolist() == [True, False]


@pytest.mark.parametrize(("options", "why"), [
    ({"model": "soc"}, "another model"), ({"shed_price": 10.0}, "sheddable demand"),
    ({"background_load": True}, "background"),
])
def test_options_the_merit_order_does_not_stand_for(options: dict[str, object], why: str) -> None:
    assert clear_network_merit(np.ones((1, 1)), np.zeros((1, 1)), np.array([3]), [0.3], [0.08],
                               network=FEEDER, **options) is None, why


def test_ties_at_the_utility_prices_and_a_zero_exchange_go_to_the_lp() -> None:
    quantity = np.array([[1.0, -0.5], [1.0, -1.0], [1.0, -0.5], [1.0, -2.0]])
    # 0.12 lies between the prices: run while importing; 0.08 ties the feed-in price;
    # 1 - 1 = 0 exchanges nothing (a degenerate price); 0.29 waits while exporting
    limit = np.array([[0.3, 0.12], [0.3, 0.0], [0.3, 0.08], [0.3, 0.29]])
    merit = clear_network_merit(quantity, limit, np.array([5, 9]), [0.3] * 4, [0.08] * 4,
                                network=FEEDER)
    assert merit is not None
    assert merit.exact.tolist() == [True, False, False, False]
    assert merit.accepted[0].tolist() == [1.0, 0.5]
    assert merit.price[0] == 0.3


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 3.0))
def test_screen_flows_and_voltages_are_lindistflow(seed: int, mw: float) -> None:
    assert screenable(FEEDER)
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, mw / 10, FEEDER.n_bus)
    q = rng.normal(0.0, mw / 40, FEEDER.n_bus)
    p[0] = q[0] = 0.0
    screen = screen_feeder(FEEDER, p[None], q[None])
    try:
        lp = solve_distflow(FEEDER, model="lindistflow", import_price_per_mwh=50.0,
                            export_price_per_mwh=20.0, load_p_mw=p, load_q_mvar=q,
                            network_loads=False, reuse_model=False)
    except SolverError:  # infeasible: the screen must say so
        assert not screen.within[0]
        return
    np.testing.assert_allclose(screen.vm_pu[0], lp.vm_pu, atol=1e-10)
    assert screen.losses_mw[0] == pytest.approx(lp.losses_mw, rel=1e-9, abs=1e-12)
    if screen.within[0]:
        assert lp.binding == ()
