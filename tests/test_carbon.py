"""Carbon-aware settlement lines: a two-bus feeder worked by hand, loss factors
against finite differences of the AC losses on the IEEE 33-bus feeder, the
sign of the loss effect, the cost arithmetic, invariants and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import InputError
from transactive.grid.cases import load_case
from transactive.grid.losses import ac_power_flow
from transactive.grid.network import Network
from transactive.programs.carbon import CarbonLines, CarbonPrices, carbon_lines

R_PU, X_PU, BASE_MVA = 0.05, 0.04, 100.0
PRICES = CarbonPrices(price_per_kg=0.1, grid_kg_per_kwh=0.4, local_kg_per_kwh=0.05)


@pytest.fixture(scope="module")
def two_bus() -> Network:
    return Network(bus={"bus": [1, 2], "type": [3, 1]},
                   branch={"from_bus": [1], "to_bus": [2], "r_pu": [R_PU], "x_pu": [X_PU]},
                   gen={"bus": [1], "p_max_mw": [100.0]}, load={"bus": [], "p_mw": []},
                   base_mva=BASE_MVA)


@pytest.fixture(scope="module")
def feeder() -> Network:
    return load_case("ieee33")


def _two_bus_losses_mw(load_mw: float) -> float:
    """Losses of a line from a 1 pu slack to a load P + j0, in closed form.

    With V1 = 1, I = conj(S / V2) and V1 = V2 + Z I, u = |V2|^2 solves
    u^2 + (2 r P - 1) u + |Z|^2 P^2 = 0 (the upper root), and the losses are
    r |I|^2 = r P^2 / u (all per unit).
    """
    p = load_mw / BASE_MVA
    b = 2 * R_PU * p - 1.0
    u = (-b + math.sqrt(b * b - 4 * (R_PU**2 + X_PU**2) * p * p)) / 2
    return R_PU * p * p / u * BASE_MVA


def test_two_bus_worked_by_hand(two_bus):
    # 10 kWh net drawn at bus 2 in 15 min, one kWh standing for 1000: 40 MW.
    # u^2 - 0.96 u + 0.000656 = 0 -> u = 0.959316, |V2| = 0.979447;
    # losses = 0.05 * 0.16 / 0.959316 pu = 0.833927 MW
    assert _two_bus_losses_mw(40.0) == pytest.approx(0.833927, abs=1e-6)
    injection = np.zeros(2)
    injection[1] = -40.0
    assert ac_power_flow(two_bus, injection, np.zeros(2)).losses_mw == pytest.approx(
        _two_bus_losses_mw(40.0), rel=1e-9)
    # dLoss/dP_inj at bus 2 = -dLoss/dP_load: central differences of the closed
    # form, h = 1 kW: -0.042596 (40 MW more of load would cost 1.70 MW of losses)
    h = 1e-3
    mlf = -(_two_bus_losses_mw(40.0 + h) - _two_bus_losses_mw(40.0 - h)) / (2 * h)
    assert mlf == pytest.approx(-0.042596, abs=1e-6)

    lines = carbon_lines(two_bus, node=[1, 1, 0], injection_kwh=[-12.0, 2.0, 3.0],
                         sold_kwh=[0.0, 2.0, 3.0], imported_kwh=[7.0, 0.0, 0.0],
                         dt_h=0.25, kw_per_unit=1000.0, prices=PRICES)
    np.testing.assert_allclose(lines.loss_factor, [mlf, mlf, 0.0], atol=1e-8)
    # upstream = 0.4 kg/kWh * mlf * injection: the consumer at the far bus
    # adds losses (charged 0.2045 kg), the producer next to it relieves them
    # (credited 0.0341 kg), the producer at the substation changes nothing
    np.testing.assert_allclose(lines.upstream_kg, [0.4 * mlf * -12.0, 0.4 * mlf * 2.0, 0.0],
                               atol=1e-8)
    np.testing.assert_allclose(lines.upstream_kg, [0.204461, -0.034077, 0.0], atol=1e-6)
    np.testing.assert_allclose(lines.local_kg, [0.0, 0.1, 0.15])
    np.testing.assert_allclose(lines.import_kg, [2.8, 0.0, 0.0])
    np.testing.assert_allclose(lines.total_kg(), [3.004461, 0.065923, 0.15], atol=1e-6)
    np.testing.assert_allclose(lines.cost, 0.1 * lines.total_kg(), rtol=1e-12)


def _community(net: Network, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A seeded community: two households per bus away from the substation,
    mostly consuming (the feeder imports), a few with PV surplus."""
    rng = np.random.default_rng(seed)
    node = np.repeat(np.arange(1, net.n_bus), 2)
    injection = -rng.uniform(0.2, 1.6, node.size)
    pv = rng.random(node.size) < 0.25
    injection[pv] = rng.uniform(0.1, 0.8, pv.sum())
    return node, injection


def _losses_kwh(net: Network, node: np.ndarray, injection: np.ndarray, dt_h: float,
                kw_per_unit: float) -> float:
    """Feeder losses in the interval, in simulated kWh, from the bus injections
    summed household by household (a naive reference for the aggregation)."""
    p = np.zeros(net.n_bus)
    for k, x in zip(node.tolist(), injection.tolist(), strict=True):
        p[k] += x * kw_per_unit / dt_h / 1000.0
    return ac_power_flow(net, p, np.zeros(net.n_bus)).losses_mw * dt_h * 1000.0 / kw_per_unit


def test_loss_factors_match_finite_differences_of_ac_losses(feeder):
    dt_h, scale = 0.25, 30.0
    node, injection = _community(feeder)
    lines = carbon_lines(feeder, node, injection, np.zeros(node.size), np.zeros(node.size),
                         dt_h=dt_h, kw_per_unit=scale, prices=PRICES)
    h = 1e-3  # kWh, central differences
    for i in (0, 9, 33, 34, 63):  # buses 2, 6, 18 (twice), 33
        up, down = injection.copy(), injection.copy()
        up[i] += h
        down[i] -= h
        fd = (_losses_kwh(feeder, node, up, dt_h, scale)
              - _losses_kwh(feeder, node, down, dt_h, scale)) / (2 * h)
        assert lines.loss_factor[i] == pytest.approx(fd, abs=1e-7)
        assert lines.upstream_kg[i] == pytest.approx(0.4 * fd * injection[i], abs=1e-7)
    # the sum over participants is the first-order change of the losses along
    # the participants' injections, d/dt L(t p) at t = 1 ...
    t = 1e-4
    directional = (_losses_kwh(feeder, node, injection * (1 + t), dt_h, scale)
                   - _losses_kwh(feeder, node, injection * (1 - t), dt_h, scale)) / (2 * t)
    assert lines.upstream_kg.sum() == pytest.approx(0.4 * directional, rel=1e-6)
    # ... about twice the losses themselves, losses being about quadratic
    losses = _losses_kwh(feeder, node, injection, dt_h, scale)
    assert 1.8 < directional / losses < 2.4


def test_far_injection_is_credited_while_the_feeder_imports(feeder):
    dt_h, scale = 0.25, 30.0
    node, injection = _community(feeder)
    far = feeder.bus_position([18])[0]  # the end of the main feeder
    node = np.r_[node, far, far]
    injection = np.r_[injection, 0.5, -0.5]  # a producer and a consumer at bus 18
    zeros = np.zeros(node.size)
    lines = carbon_lines(feeder, node, injection, zeros, zeros, dt_h=dt_h, kw_per_unit=scale,
                         prices=PRICES)
    assert injection.sum() < 0  # the feeder imports
    assert lines.loss_factor[-1] < -0.05
    assert lines.upstream_kg[-2] < 0 < lines.upstream_kg[-1]  # producer credited
    assert lines.cost[-2] < 0 < lines.cost[-1]
    # the physics agrees: more injection at bus 18 lowers the AC losses
    more = injection.copy()
    more[-2] += 0.1
    assert (_losses_kwh(feeder, node, more, dt_h, scale)
            < _losses_kwh(feeder, node, injection, dt_h, scale))
    # under reverse flow (the far households export) the same producer is charged
    reverse = np.abs(injection)
    lines = carbon_lines(feeder, node, reverse, zeros, zeros, dt_h=dt_h, kw_per_unit=scale,
                         prices=PRICES)
    assert lines.loss_factor[-2] > 0
    assert lines.upstream_kg[-2] > 0


def test_only_the_participants_set_the_operating_point(feeder):
    node, injection = _community(feeder)
    zeros = np.zeros(node.size)
    unloaded = feeder.replace(load={"bus": [], "p_mw": []})
    a = carbon_lines(feeder, node, injection, zeros, zeros, dt_h=0.25, kw_per_unit=30.0,
                     prices=PRICES)
    b = carbon_lines(unloaded, node, injection, zeros, zeros, dt_h=0.25, kw_per_unit=30.0,
                     prices=PRICES)
    np.testing.assert_array_equal(a.loss_factor, b.loss_factor)
    # the scale enters only as kW on the feeder per simulated kWh per hour
    c = carbon_lines(feeder, node, injection, zeros, zeros, dt_h=0.5, kw_per_unit=60.0,
                     prices=PRICES)
    np.testing.assert_allclose(c.loss_factor, a.loss_factor, rtol=1e-12, atol=1e-15)


def test_cost_arithmetic(feeder):
    # at the substation the loss factor is 0: only local and import emissions
    prices = CarbonPrices(price_per_kg=0.08, grid_kg_per_kwh=0.5, local_kg_per_kwh=0.04)
    slack = feeder.ref_position
    lines = carbon_lines(feeder, [slack, slack], [3.0, -2.0], [3.0, 0.0], [0.0, 2.0],
                         dt_h=1.0, kw_per_unit=1.0, prices=prices)
    np.testing.assert_array_equal(lines.upstream_kg, [0.0, 0.0])
    np.testing.assert_allclose(lines.local_kg, [0.12, 0.0])  # 0.04 * 3
    np.testing.assert_allclose(lines.import_kg, [0.0, 1.0])  # 0.5 * 2
    np.testing.assert_allclose(lines.cost, [0.0096, 0.08])  # 0.08 * kg
    # everywhere: cost = price * (local + upstream + import), linear in the price
    node, injection = _community(feeder)
    rng = np.random.default_rng(1)
    sold = np.maximum(injection, 0.0)
    imported = np.maximum(-injection, 0.0) * rng.uniform(0, 1, node.size)
    lines = carbon_lines(feeder, node, injection, sold, imported, dt_h=0.25, kw_per_unit=30.0,
                         prices=prices)
    np.testing.assert_allclose(lines.total_kg(),
                               lines.local_kg + lines.upstream_kg + lines.import_kg)
    np.testing.assert_allclose(lines.cost, 0.08 * lines.total_kg(), rtol=1e-12)
    np.testing.assert_allclose(lines.local_kg, 0.04 * sold)
    np.testing.assert_allclose(lines.upstream_kg, 0.5 * lines.loss_factor * injection)
    free = carbon_lines(feeder, node, injection, sold, imported, dt_h=0.25, kw_per_unit=30.0,
                        prices=CarbonPrices(0.0, 0.5, 0.04))
    np.testing.assert_array_equal(free.cost, np.zeros(node.size))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_lines_add_up_over_split_and_shuffled_participants(seed):
    # splitting a household into two at the same bus, and reordering, leave the
    # operating point unchanged: the lines split and permute with it
    net = load_case("ieee33")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    node = rng.integers(0, net.n_bus, n)
    injection = rng.uniform(-2.0, 1.0, n)
    sold = rng.uniform(0, 1, n)
    imported = rng.uniform(0, 2, n)
    whole = carbon_lines(net, node, injection, sold, imported, dt_h=0.25, kw_per_unit=30.0,
                         prices=PRICES)
    share = rng.uniform(0, 1, n)
    order = rng.permutation(2 * n)
    parts = [np.r_[x * share, x * (1 - share)][order] for x in (injection, sold, imported)]
    split = carbon_lines(net, np.r_[node, node][order], *parts, dt_h=0.25, kw_per_unit=30.0,
                         prices=PRICES)
    back = np.argsort(order)
    for name in ("local_kg", "upstream_kg", "import_kg", "cost"):
        both = getattr(split, name)[back]
        np.testing.assert_allclose(both[:n] + both[n:], getattr(whole, name), atol=1e-10)
    np.testing.assert_allclose(split.loss_factor[back], np.r_[whole.loss_factor,
                                                              whole.loss_factor], atol=1e-12)


def test_result_is_read_only_and_inputs_untouched(two_bus):
    injection = np.array([-4.0, 1.0])
    lines = carbon_lines(two_bus, np.array([1, 1]), injection, [0.0, 1.0], [3.0, 0.0],
                         dt_h=0.25, kw_per_unit=1000.0, prices=PRICES)
    assert isinstance(lines, CarbonLines)
    np.testing.assert_array_equal(injection, [-4.0, 1.0])
    with pytest.raises(ValueError, match="read-only"):
        lines.cost[0] = 0.0
    empty = carbon_lines(two_bus, [], [], [], [], dt_h=0.25, kw_per_unit=1.0, prices=PRICES)
    assert empty.cost.shape == (0,)
    assert empty.total_kg().shape == (0,)


@pytest.mark.parametrize(("field", "kwargs"), [
    ("price_per_kg", {"price_per_kg": -0.1}),
    ("price_per_kg", {"price_per_kg": float("nan")}),
    ("grid_kg_per_kwh", {"grid_kg_per_kwh": float("inf")}),
    ("grid_kg_per_kwh", {"grid_kg_per_kwh": True}),
    ("local_kg_per_kwh", {"local_kg_per_kwh": -1e-9}),
    ("local_kg_per_kwh", {"local_kg_per_kwh": "0.1"}),
])
def test_prices_refuse_bad_values(field, kwargs):
    values = {"price_per_kg": 0.1, "grid_kg_per_kwh": 0.4} | kwargs
    with pytest.raises(InputError) as err:
        CarbonPrices(**values)
    assert err.value.field == field


def test_prices_are_floats():
    prices = CarbonPrices(np.float32(0.5), 1)
    assert type(prices.price_per_kg) is float
    assert prices.grid_kg_per_kwh == 1.0


_GOOD = {"node": [1, 1], "injection_kwh": [-1.0, 1.0], "sold_kwh": [0.0, 1.0],
         "imported_kwh": [1.0, 0.0], "dt_h": 0.25, "kw_per_unit": 1000.0, "prices": PRICES}


@pytest.mark.parametrize(("field", "row", "change"), [
    ("injection_kwh", None, {"node": [1, 1, 1]}),  # node sets the number of participants
    ("node", None, {"node": [[1, 1]]}),
    ("node", 1, {"node": [1, 2]}),
    ("node", 0, {"node": [-1, 1]}),
    ("node", 1, {"node": [1, 1.5]}),
    ("node", None, {"node": ["a", "b"]}),
    ("injection_kwh", None, {"injection_kwh": [-1.0]}),
    ("injection_kwh", 1, {"injection_kwh": [-1.0, float("nan")]}),
    ("injection_kwh", None, {"injection_kwh": ["x", "y"]}),
    ("sold_kwh", 0, {"sold_kwh": [float("inf"), 1.0]}),
    ("sold_kwh", 0, {"sold_kwh": [-0.5, 1.0]}),
    ("imported_kwh", None, {"imported_kwh": [1.0, 0.0, 0.0]}),
    ("imported_kwh", 0, {"imported_kwh": [-1.0, 0.0]}),
    ("dt_h", None, {"dt_h": 0.0}),
    ("dt_h", None, {"dt_h": -0.25}),
    ("dt_h", None, {"dt_h": float("nan")}),
    ("kw_per_unit", None, {"kw_per_unit": 0}),
    ("kw_per_unit", None, {"kw_per_unit": None}),
    ("prices", None, {"prices": 0.1}),
    ("network", None, {"network": "ieee33"}),
])
def test_carbon_lines_refuses_bad_input(two_bus, field, row, change):
    args = {"network": two_bus} | _GOOD | change
    with pytest.raises(InputError) as err:
        carbon_lines(**args)
    assert err.value.field == field
    assert err.value.row == row
