"""What a DC-OPF case must hold: generator costs, supply, and a bus that can
be the reference, chosen as MATPOWER's ``bustypes`` chooses it.

The priced network is the triangle of the ``dcopf`` docstring, worked by
hand: buses 1, 2, 3 joined by three equal lines, the 1-3 line limited to
50 MW; generators at bus 1 (10 per MWh) and bus 2 (20 per MWh); 120 MW of
load at bus 3. An injection at bus 1 (withdrawn at 3) sends 2/3 over 1-3, one
at bus 2 sends 1/3, so the limit gives ``2/3 p1 + 1/3 p2 = 50`` with
``p1 + p2 = 120``: ``p1 = 30``, ``p2 = 90``. The LMPs are 10 and 20 at the
generators' buses and 30 at bus 3 (one MW more at bus 3 takes 2 MW more from
bus 2 and 1 MW less from bus 1: 40 - 10). The energy part is the LMP at the
reference bus, the congestion part the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transactive.errors import InputError
from transactive.grid.dcopf import dcopf
from transactive.grid.losses import ac_power_flow
from transactive.grid.network import Network
from transactive.grid.scopf import solve_dcopf

LMP = [10.0, 20.0, 30.0]


def triangle(types: list[int], **gen: Any) -> Network:
    gens = {"bus": [1, 2], "p_max_mw": [300.0, 300.0], "cost_per_mwh": [10.0, 20.0]}
    gens.update(gen)
    return Network(
        bus={"bus": [1, 2, 3], "type": types},
        branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "x_pu": [0.1, 0.1, 0.1],
                "rate_a_mw": [200.0, 200.0, 50.0]},
        gen=gens, load={"bus": [3], "p_mw": [120.0]})


def test_the_case_reference_needs_no_note() -> None:
    res = dcopf(triangle([3, 2, 1]))
    assert res.notes == ()
    np.testing.assert_allclose(res.gen["p_mw"], [30.0, 90.0], atol=1e-6)
    np.testing.assert_allclose(res.lmp, LMP, atol=1e-6)
    np.testing.assert_allclose(res.energy, 10.0, atol=1e-6)
    np.testing.assert_allclose(res.congestion, [0.0, 10.0, 20.0], atol=1e-6)


@pytest.mark.parametrize("formulation", ["ptdf", "angle"])
def test_no_reference_bus_takes_the_first_pv_bus_with_a_generator(formulation: str) -> None:
    # bus 1 has a generator but is PQ; bus 2 is the first PV bus with one
    # (a rule "the largest generator" would pick bus 1: both are 300 MW)
    res = dcopf(triangle([1, 2, 2]), formulation=formulation)
    assert res.network.ref_bus == 2
    assert len(res.notes) == 1
    assert "no reference bus" in res.notes[0]
    assert "bus 2" in res.notes[0]
    np.testing.assert_allclose(res.lmp, LMP, atol=1e-6)
    np.testing.assert_allclose(res.energy, 20.0, atol=1e-6)
    np.testing.assert_allclose(res.congestion, [-10.0, 0.0, 10.0], atol=1e-6)
    assert res.bus["va_deg"].iat[1] == pytest.approx(0.0, abs=1e-12)


def test_a_pv_bus_whose_generator_is_out_of_service_cannot_be_the_reference() -> None:
    net = Network(
        bus={"bus": [1, 2, 3], "type": [2, 1, 2]},
        branch={"from_bus": [1, 2], "to_bus": [2, 3], "x_pu": [0.1, 0.1]},
        gen={"bus": [1, 3], "p_max_mw": [50.0, 50.0], "cost_per_mwh": [10.0, 30.0],
             "in_service": [False, True]},
        load={"bus": [2], "p_mw": [20.0]})
    res = dcopf(net)
    assert net.ref_bus == 3
    assert "bus 3" in res.notes[0]
    np.testing.assert_allclose(res.lmp, 30.0, atol=1e-6)


def test_several_reference_buses_take_the_first() -> None:
    res = dcopf(triangle([3, 2, 3]))
    assert res.network.ref_bus == 1
    assert len(res.notes) == 1
    assert "2 reference buses (type 3: 1, 3)" in res.notes[0]
    assert "bus 1" in res.notes[0]
    np.testing.assert_allclose(res.lmp, LMP, atol=1e-6)
    np.testing.assert_allclose(res.energy, 10.0, atol=1e-6)


def test_no_bus_can_be_the_reference() -> None:
    with pytest.raises(InputError, match="no reference bus") as err:
        dcopf(triangle([1, 1, 1]))
    assert err.value.field == "bus.type"


def test_no_generator_at_all() -> None:
    net = Network(bus={"bus": [1, 2], "type": [3, 1]},
                  branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]},
                  gen=None, load={"bus": [2], "p_mw": [10.0]})
    with pytest.raises(InputError, match="no generator in service") as err:
        dcopf(net)
    assert err.value.field == "gen"
    # an offer is supply: it clears, at the offer's price
    res = dcopf(net, offers={"bus": [1], "p_max_mw": [20.0], "price_per_mwh": [42.0]})
    np.testing.assert_allclose(res.lmp, 42.0, atol=1e-6)


def test_generators_without_costs_are_refused() -> None:
    with pytest.raises(InputError, match="no generator costs") as err:
        dcopf(triangle([3, 2, 1], cost_per_mwh=[0.0, 0.0]))
    assert err.value.field == "gencost"
    # one priced generator is enough; so are costs given as a piecewise curve
    dcopf(triangle([3, 2, 1], cost_per_mwh=[0.0, 20.0]))
    pwl = {"gen": [0, 0], "p_mw": [0.0, 300.0], "cost_per_h": [0.0, 3000.0]}
    res = dcopf(triangle([3, 2, 1], cost_per_mwh=[0.0, 20.0]).replace(pwl_cost=pwl))
    np.testing.assert_allclose(res.lmp, LMP, atol=1e-6)


CASE_TEXT = """function mpc = tiny
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
    1 {t1} 0 0 0 0 1 1 0 230 1 1.1 0.9;
    2 2 0 0 0 0 1 1 0 230 1 1.1 0.9;
    3 1 120 0 0 0 1 1 0 230 1 1.1 0.9;
];
mpc.gen = [
    1 0 0 100 -100 1 100 1 300 0;
    2 0 0 100 -100 1 100 1 300 0;
];
mpc.branch = [
    1 2 0 0.1 0 200 0 0 0 0 1 -360 360;
    2 3 0 0.1 0 200 0 0 0 0 1 -360 360;
    1 3 0 0.1 0 50 0 0 0 0 1 -360 360;
];
"""
GENCOST = """mpc.gencost = [
    2 0 0 2 10 0;
    2 0 0 2 20 0;
];
"""


def test_matpower_file_without_gencost_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.m"
    path.write_text(CASE_TEXT.format(t1=3))
    with pytest.raises(InputError, match="no generator costs") as err:
        solve_dcopf(path)
    assert err.value.field == "gencost"
    path.write_text(CASE_TEXT.format(t1=3) + GENCOST)
    res = solve_dcopf(path)
    np.testing.assert_allclose(res.lmp, LMP, atol=1e-6)


def test_matpower_file_without_reference_bus(tmp_path: Path) -> None:
    path = tmp_path / "tiny.m"
    path.write_text(CASE_TEXT.format(t1=1) + GENCOST)
    res = solve_dcopf(path)
    assert "bus 2" in res.notes[0]
    np.testing.assert_allclose(res.energy, 20.0, atol=1e-6)
    np.testing.assert_allclose(res.congestion, [-10.0, 0.0, 10.0], atol=1e-6)


def test_ac_power_flow_uses_the_same_reference() -> None:
    # the slack of the AC power flow is the bus the DC-OPF priced against:
    # it alone takes up the losses, and its angle is the case's (0 here)
    net = triangle([1, 2, 2], p_mw=[60.0, 60.0]).replace(
        branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "r_pu": [0.01, 0.01, 0.01],
                "x_pu": [0.1, 0.1, 0.1]})
    pf = ac_power_flow(net)
    assert pf.va_deg[1] == 0.0
    assert pf.p_inj_mw[0] == pytest.approx(60.0, abs=1e-9)
    assert pf.p_inj_mw[1] == pytest.approx(60.0 + pf.losses_mw, abs=1e-9)
