"""Grid-aware clearing (mechanism "network"): nodal prices on a feeder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import transactive as te
from transactive.errors import InputError, SolverError
from transactive.grid.cases import load_case
from transactive.markets import available
from transactive.markets.network import clear_network
from transactive.orders import OrderBatch

IMP, EXP = 0.25, 0.05


@pytest.fixture(scope="module")
def net():
    return load_case("ieee33")


def _orders(side, price, qty, node):
    n = len(side)
    return OrderBatch(id=np.arange(n), participant=[f"p{i}" for i in range(n)], side=side,
                      price=price, quantity=qty, node=node)


def _tight(net, vmin):
    bus = net.bus.copy()
    bus.loc[bus["type"] != 3, "vm_min_pu"] = vmin
    return net.replace(bus=bus)


def test_registered_and_cleared_through_the_registry(net):
    assert "network" in available()
    ob = _orders(["buy", "sell"], [0.3, 0.1], [2.0, 1.0], [5, 9])
    c = te.clear(ob, "network", network=net, import_price=IMP, export_price=EXP)
    assert c.mechanism == "network"
    assert c.accepted.tolist() == [2.0, 1.0]
    assert c.info["grid_import_kwh"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("sells", "root_price"),
    [
        ([(0.08, 2.0)], IMP),  # short: the utility is marginal
        ([(0.08, 2.0), (0.12, 2.0)], 0.12),  # the second seller is marginal
        ([(0.02, 5.0)], EXP),  # long: export at the export price
    ],
)
def test_lossless_dc_without_limits_prices_every_bus_at_the_root_price(net, sells, root_price):
    buys = [(0.30, 1.0, 4), (0.30, 2.0, 30)]
    ob = _orders(["buy"] * 2 + ["sell"] * len(sells),
                 [b[0] for b in buys] + [s[0] for s in sells],
                 [b[1] for b in buys] + [s[1] for s in sells],
                 [b[2] for b in buys] + [17 + k for k in range(len(sells))])
    c = clear_network(ob, network=net, model="dc", import_price=IMP, export_price=EXP)
    assert c.clearing_price == pytest.approx(root_price)
    np.testing.assert_allclose(c.node_price, root_price, atol=1e-9)
    assert c.info["binding"] == ()
    assert c.info["rent"] == pytest.approx(0.0, abs=1e-9)
    # by hand: merit order against 3 kWh of inelastic demand
    if root_price == 0.12:
        assert c.accepted.tolist() == pytest.approx([1.0, 2.0, 2.0, 1.0])
    if root_price == EXP:
        assert c.info["grid_export_kwh"] == pytest.approx(2.0)


def test_voltage_limits_differentiate_prices_and_money_balances(net):
    feeder = _tight(net, 0.95)
    rng = np.random.default_rng(7)
    n = 60
    side = np.where(np.arange(n) % 3 == 0, -1, 1)
    node = rng.integers(1, 33, n)
    qty = rng.uniform(0.2, 1.0, n)
    price = np.where(side > 0, 0.30, rng.uniform(0.05, 0.4, n))
    ob = _orders(side, price, qty, node)
    c = clear_network(ob, network=feeder, import_price=IMP, export_price=EXP, kw_per_unit=24.0,
                      power_factor=0.95)
    assert any(b.startswith("vm_min") for b in c.info["binding"])
    assert c.node_price.max() > c.clearing_price + 0.01  # prices rise down the feeder
    assert c.clearing_price == pytest.approx(IMP)
    assert np.nanmin(c.info["vm_pu"]) == pytest.approx(0.95, abs=1e-6)
    buyers_at = {int(node[i]): c.price[i] for i in range(n) if side[i] > 0}
    assert len({round(p, 6) for p in buyers_at.values()}) > 3  # each pays its own bus price
    # payments = utility cost + rent (rent from the duals of the network constraints)
    assert c.info["rent"] > 0
    assert c.operator_surplus == pytest.approx(c.info["utility_cost"] + c.info["rent"],
                                               rel=1e-6)
    # sellers priced above their bus price are curtailed, those below run in full
    sells = side < 0
    local = c.node_price[node]
    assert (c.accepted[sells & (price < local - 1e-6)] == pytest.approx(
        qty[sells & (price < local - 1e-6)]))
    assert (c.accepted[sells & (price > local + 1e-6)] == 0).all()


@pytest.mark.parametrize("model", ["lindistflow", "soc"])
def test_money_balances_with_background_load(net, model):
    # the feeder's own 3.7 MW stay as non-participants' demand; a dear seller at
    # the far end of the main line (bus 18) runs only to hold the 0.92 pu floor
    ob = _orders(["buy", "buy", "sell", "sell"], [0.3, 0.3, 0.4, 0.06], [1.0, 2.0, 3.0, 2.0],
                 [3, 20, 17, 24])
    c = clear_network(ob, network=_tight(net, 0.92), model=model, import_price=IMP,
                      export_price=EXP, kw_per_unit=100.0, background_load=True)
    assert any(b.startswith("vm_min") for b in c.info["binding"])
    assert 0 < c.accepted[2] < 3.0
    assert c.price[2] == pytest.approx(0.4)  # the marginal seller sets its bus's price
    assert c.info["background_payment"] > 0
    assert c.operator_surplus + c.info["background_payment"] == pytest.approx(
        c.info["utility_cost"] + c.info["rent"], rel=1e-6)


def test_soc_prices_carry_losses(net):
    ob = _orders(["buy", "buy"], [0.3, 0.3], [1.0, 1.0], [1, 16])
    c = clear_network(ob, network=net, model="soc", import_price=IMP, export_price=EXP,
                      kw_per_unit=200.0)
    assert c.info["exact"]
    assert c.info["losses_kwh"] > 0
    assert c.info["grid_import_kwh"] == pytest.approx(2.0 + c.info["losses_kwh"], rel=1e-6)
    assert c.price[1] > c.price[0] > IMP  # farther from the substation costs more
    assert c.operator_surplus == pytest.approx(c.info["utility_cost"] + c.info["rent"],
                                               rel=1e-5)


def test_price_responsive_demand_and_shedding(net):
    ob = _orders(["buy", "buy"], [0.40, 0.10], [1.0, 1.0], [4, 9])
    c = clear_network(ob, network=net, import_price=IMP, export_price=EXP,
                      inelastic_demand=False)
    assert c.accepted.tolist() == [1.0, 0.0]  # the 0.10 bid is below the import price
    heavy = _orders(["buy"], [0.30], [1.0], [17])
    with pytest.raises(SolverError, match="cannot be served"):
        clear_network(heavy, network=net, import_price=IMP, export_price=EXP,
                      kw_per_unit=20_000.0)
    c = clear_network(heavy, network=net, import_price=IMP, export_price=EXP,
                      kw_per_unit=20_000.0, shed_price=3.0)
    assert 0 < c.accepted[0] < 1.0  # served up to the voltage limit
    assert c.price[0] == pytest.approx(3.0)  # the price rises to the value of lost load
    assert any(b.startswith("vm_min") for b in c.info["binding"])
    # price-responsive demand keeps its own limit even with a shed price
    c = clear_network(heavy, network=net, import_price=IMP, export_price=EXP,
                      kw_per_unit=20_000.0, shed_price=3.0, inelastic_demand=False)
    assert c.price[0] == pytest.approx(0.30)


def test_ties_at_one_bus_share_pro_rata(net):
    ob = _orders(["buy", "sell", "sell"], [0.3, 0.1, 0.1], [3.0, 4.0, 2.0], [5, 12, 12])
    c = clear_network(ob, network=net, import_price=IMP, export_price=EXP)
    assert c.accepted[1] / 4.0 == pytest.approx(c.accepted[2] / 2.0)
    assert c.accepted[1] + c.accepted[2] == pytest.approx(3.0)


def test_scale_leaves_unconstrained_money_unchanged(net):
    ob = _orders(["buy", "sell"], [0.3, 0.1], [2.0, 1.0], [5, 9])
    a = clear_network(ob, network=net, import_price=IMP, export_price=EXP, model="dc")
    b = clear_network(ob, network=net, import_price=IMP, export_price=EXP, model="dc",
                      kw_per_unit=50.0, dt_h=1.0)
    np.testing.assert_allclose(a.payment, b.payment)
    assert a.info["grid_import_kwh"] == pytest.approx(b.info["grid_import_kwh"])


@st.composite
def _batches(draw):
    n = draw(st.integers(1, 25))
    side = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    price = draw(st.lists(st.floats(0.0, 0.4), min_size=n, max_size=n))
    qty = draw(st.lists(st.floats(0.01, 5.0), min_size=n, max_size=n))
    node = draw(st.lists(st.integers(0, 32), min_size=n, max_size=n))
    return _orders(side, price, qty, node)


@settings(max_examples=40, deadline=None)
@given(_batches())
def test_dc_market_is_the_merit_order_against_the_utility(net, ob):
    # an offer at exactly the utility's price ties with it: any split is optimal
    assume(not np.isin(ob.price[ob.side == -1], [IMP, EXP]).any())
    c = clear_network(ob, network=net, model="dc", import_price=IMP, export_price=EXP)
    buy = ob.side == 1
    demand = ob.quantity[buy].sum()
    # naive merit order: sellers cheaper than the import price serve demand,
    # then sellers cheaper than the export price export the rest
    order = np.argsort(ob.price[~buy], kind="stable")
    p, q = ob.price[~buy][order], ob.quantity[~buy][order]
    take = np.zeros_like(q)
    left = demand
    for k in range(q.size):
        if p[k] < IMP:
            take[k] = min(q[k], left)
            left -= take[k]
        if p[k] < EXP:
            take[k] = q[k]
    sold = c.accepted[~buy]
    assert sold.sum() == pytest.approx(take.sum(), abs=1e-7)
    assert c.accepted[buy] == pytest.approx(ob.quantity[buy])
    assert (c.accepted <= ob.quantity + 1e-9).all()
    np.testing.assert_allclose(c.node_price, c.clearing_price, atol=1e-9)
    assert EXP - 1e-9 <= c.clearing_price <= IMP + 1e-9
    net_import = c.info["grid_import_kwh"] - c.info["grid_export_kwh"]
    assert net_import == pytest.approx(demand - sold.sum(), abs=1e-7)
    assert c.operator_surplus == pytest.approx(c.info["utility_cost"], abs=1e-7)


def test_bad_orders_and_options(net):
    no_node = OrderBatch(id=[1], participant=["a"], side=["buy"], price=[0.3], quantity=[1.0])
    with pytest.raises(InputError) as err:
        clear_network(no_node, network=net, import_price=IMP, export_price=EXP)
    assert err.value.field == "node"
    outside = _orders(["buy", "sell"], [0.3, 0.1], [1.0, 1.0], [3, 33])  # positions 0..32
    with pytest.raises(InputError) as err:
        clear_network(outside, network=net, import_price=IMP, export_price=EXP)
    assert (err.value.field, err.value.row) == ("node", 1)
    ok = _orders(["buy"], [0.3], [1.0], [3])
    for options, field in [
        ({"import_price": IMP, "export_price": 0.3}, "export_price"),
        ({"import_price": float("nan"), "export_price": EXP}, "import_price"),
        ({"import_price": IMP, "export_price": EXP, "dt_h": 0.0}, "dt_h"),
        ({"import_price": IMP, "export_price": EXP, "kw_per_unit": -1.0}, "kw_per_unit"),
        ({"import_price": IMP, "export_price": EXP, "model": "ac"}, "model"),
        ({"import_price": IMP, "export_price": EXP, "power_factor": 1.2}, "power_factor"),
        ({"import_price": IMP, "export_price": EXP, "network": "nowhere"}, "case"),
        ({"import_price": IMP, "export_price": EXP, "network": 3}, "network"),
    ]:
        with pytest.raises(InputError) as err:
            clear_network(ok, **{"network": net, **options})
        assert err.value.field == field
    with pytest.raises(InputError) as err:
        te.clear(ok, "network", import_price=IMP, export_price=EXP, voll=3.0)
    assert err.value.field == "voll"


def test_builtin_feeder_is_loaded_once():
    ob = _orders(["buy"], [0.3], [1.0], [3])
    a = clear_network(ob, import_price=IMP, export_price=EXP)
    b = clear_network(ob, network="IEEE33", import_price=IMP, export_price=EXP)
    assert a.node_price.shape == (33,)
    np.testing.assert_array_equal(a.node_price, b.node_price)
    from transactive.markets.network import _case

    assert _case("ieee33") is _case("ieee33")
