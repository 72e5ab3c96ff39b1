"""VCG through a transmission network's DC-OPF: payments by brute force."""

from __future__ import annotations

import numpy as np
import pytest

import transactive as te
from transactive.grid import dcopf, load_case
from transactive.markets.network import dcopf_welfare


def _welfare(net, orders):
    buy = orders.side == te.BUY
    table = {"bus": net.bus_numbers[orders.node], "p_max_mw": orders.quantity,
             "price_per_mwh": orders.price}
    return -dcopf(net, bids={k: v[buy] for k, v in table.items()},
                  offers={k: v[~buy] for k, v in table.items()}).objective


@pytest.fixture(scope="module")
def congested():
    """case9 with the line 4-5 tight, so where a trader sits matters."""
    net = load_case("case9")
    branch = net.branch.copy()
    branch.loc[(branch.from_bus == 4) & (branch.to_bus == 5), "rate_a_mw"] = 40.0
    return net.replace(branch=branch)


def test_network_vcg_payments_are_the_externalities(congested):
    orders = te.OrderBatch(id=[1, 2, 3, 4], participant=["b5", "b9", "s5", "s7"],
                           side=["buy", "buy", "sell", "sell"], price=[90.0, 80.0, 5.0, 10.0],
                           quantity=[40.0, 30.0, 25.0, 35.0], node=[4, 8, 4, 6])
    c = te.clear(orders, "vcg", welfare_solver=dcopf_welfare(congested))
    w_all = _welfare(congested, orders)
    for p in np.unique(orders.participant):
        mine = orders.participant == p
        others = orders.take(~mine)
        value = float(np.dot(c.accepted[mine] * orders.side[mine], orders.price[mine]))
        expected = _welfare(congested, others) - (w_all - value)
        assert c.payment[mine].sum() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    # individually rational at the reported values
    assert (c.surplus >= -1e-6).all()


def test_network_vcg_needs_nodes():
    orders = te.OrderBatch(id=[1, 2], participant=["b", "s"], side=["buy", "sell"],
                           price=[90.0, 5.0], quantity=[10.0, 10.0])
    with pytest.raises(te.InputError, match="node"):
        te.clear(orders, "vcg", welfare_solver=dcopf_welfare("case9"))
