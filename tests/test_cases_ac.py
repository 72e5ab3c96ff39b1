"""Every built-in case is MATPOWER's own data, and our AC power flow of it
agrees with an independent one.

References: PYPOWER ships MATPOWER's case9, case14, case30 and case118 and its
own Newton power flow (``runpf``); the IEEE 33-bus feeder has no PYPOWER copy,
so it is held against pandapower's ``case33bw`` (MATPOWER's data, in ohm) and
pandapower's ``runpp``, and against the published total loss of Baran & Wu
(1989), 202.67 kW at nominal load.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pypower.case9 import case9  # not pypower.api: it imports modules that do not
from pypower.case14 import case14  # compile without warnings on this Python
from pypower.case30 import case30
from pypower.case118 import case118
from pypower.ppoption import ppoption
from pypower.runpf import runpf

from transactive.grid.cases import available_cases, load_case
from transactive.grid.losses import ac_power_flow

PYPOWER_CASES = {"case9": case9, "case14": case14, "case30": case30, "case118": case118}
PANDAPOWER_CASES = {"case33bw"}
PYPOWER_NO_LIMIT_MW = 9900.0  # PYPOWER's case14 and case118 write MATPOWER's 0 this way


def test_every_builtin_case_is_held_against_a_reference() -> None:
    assert set(available_cases()) == set(PYPOWER_CASES) | PANDAPOWER_CASES


def _float_case(name: str) -> dict[str, np.ndarray]:
    """PYPOWER's case as float arrays (some are int arrays, and ``runpf``
    then truncates the slack's solved output to whole MW)."""
    ppc = PYPOWER_CASES[name]()
    return {k: np.asarray(v, dtype=np.float64) for k, v in ppc.items() if k != "version"}


def _rating(col: np.ndarray) -> np.ndarray:
    return np.where((col == 0) | (col == PYPOWER_NO_LIMIT_MW), np.inf, col)


@pytest.mark.parametrize("name", sorted(PYPOWER_CASES))
def test_builtin_case_is_matpower_data_element_by_element(name: str) -> None:
    ours, ppc = load_case(name), _float_case(name)
    assert ours.base_mva == ppc["baseMVA"]
    bus, gen, br, cost = ppc["bus"], ppc["gen"], ppc["branch"], ppc["gencost"]
    b = ours.bus
    np.testing.assert_array_equal(b["bus"], bus[:, 0])
    np.testing.assert_array_equal(b["type"], bus[:, 1])
    for col, k in (("gs_mw", 4), ("bs_mvar", 5), ("area", 6), ("vm_pu", 7), ("va_deg", 8),
                   ("vn_kv", 9), ("zone", 10), ("vm_max_pu", 11), ("vm_min_pu", 12)):
        np.testing.assert_array_equal(b[col], bus[:, k], err_msg=f"bus.{col}")
    n = ours.n_bus
    np.testing.assert_array_equal(np.bincount(ours.load_position, ours.load["p_mw"], n),
                                  bus[:, 2])
    np.testing.assert_array_equal(np.bincount(ours.load_position, ours.load["q_mvar"], n),
                                  bus[:, 3])
    g = ours.gen
    for col, k in (("bus", 0), ("p_mw", 1), ("q_mvar", 2), ("q_max_mvar", 3),
                   ("q_min_mvar", 4), ("vm_pu", 5), ("p_max_mw", 8), ("p_min_mw", 9)):
        np.testing.assert_array_equal(g[col], gen[:, k], err_msg=f"gen.{col}")
    np.testing.assert_array_equal(g["in_service"], gen[:, 7] > 0)
    assert (cost[:, 0] == 2).all()
    assert (cost[:, 3] == 3).all()
    for col, k in (("cost_per_mw2h", 4), ("cost_per_mwh", 5), ("cost_per_h", 6)):
        np.testing.assert_array_equal(g[col], cost[:, k], err_msg=f"gen.{col}")
    r = ours.branch
    for col, k in (("from_bus", 0), ("to_bus", 1), ("r_pu", 2), ("x_pu", 3), ("b_pu", 4),
                   ("shift_deg", 9), ("angmin_deg", 11), ("angmax_deg", 12)):
        np.testing.assert_array_equal(r[col], br[:, k], err_msg=f"branch.{col}")
    for col, k in (("rate_a_mw", 5), ("rate_b_mw", 6), ("rate_c_mw", 7)):
        np.testing.assert_array_equal(r[col], _rating(br[:, k]), err_msg=f"branch.{col}")
    np.testing.assert_array_equal(r["tap"], np.where(br[:, 8] == 0, 1.0, br[:, 8]))
    np.testing.assert_array_equal(r["in_service"], br[:, 10] > 0)


@pytest.mark.parametrize("name", sorted(PYPOWER_CASES))
def test_ac_power_flow_matches_pypower(name: str) -> None:
    ppc = _float_case(name)
    res, ok = runpf(ppc, ppoption(VERBOSE=0, OUT_ALL=0, PF_TOL=1e-12))
    assert ok
    pf = ac_power_flow(load_case(name), tol_mva=1e-10)
    np.testing.assert_allclose(pf.vm_pu, res["bus"][:, 7], rtol=0, atol=1e-9)
    # angles as MATPOWER reports them: the reference keeps its case angle
    # (30 degrees at bus 69 of case118)
    np.testing.assert_allclose(pf.va_deg, res["bus"][:, 8], rtol=0, atol=1e-7)
    # generation minus load (branch losses and shunt consumption), and branch
    # by branch: PF + PT
    assert pf.losses_mw == pytest.approx(res["gen"][:, 1].sum() - res["bus"][:, 2].sum(),
                                         abs=1e-7)
    np.testing.assert_allclose(pf.loss_mw, res["branch"][:, 13] + res["branch"][:, 15],
                               rtol=0, atol=1e-7)


def test_case118_losses_are_matpowers() -> None:
    # the figure MATPOWER's runpf prints for case118 (the pandapower-converted
    # copy shipped before gave 133.13 MW)
    assert ac_power_flow(load_case("case118")).losses_mw == pytest.approx(132.86287, abs=1e-5)


def _pandapower_case33bw():  # type: ignore[no-untyped-def]
    pp = pytest.importorskip("pandapower")
    pn = pytest.importorskip("pandapower.networks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pn.case33bw()
    return pp, net


def test_case33bw_is_matpower_data_element_by_element() -> None:
    _, ppn = _pandapower_case33bw()
    ours = load_case("case33bw")
    z_base_ohm = 12.66**2 / 10.0
    lines = ppn.line[ppn.line.in_service]  # the five open tie switches are left out
    assert len(lines) == ours.n_branch == 32
    br = ours.branch
    np.testing.assert_array_equal(br["from_bus"], lines.from_bus.to_numpy() + 1)
    np.testing.assert_array_equal(br["to_bus"], lines.to_bus.to_numpy() + 1)
    r_ohm = (lines.r_ohm_per_km * lines.length_km / lines.parallel).to_numpy()
    x_ohm = (lines.x_ohm_per_km * lines.length_km / lines.parallel).to_numpy()
    np.testing.assert_allclose(br["r_pu"] * z_base_ohm, r_ohm, rtol=1e-12)
    np.testing.assert_allclose(br["x_pu"] * z_base_ohm, x_ohm, rtol=1e-12)
    assert (br["b_pu"] == 0).all()
    assert (br["tap"] == 1).all()
    assert (br["shift_deg"] == 0).all()
    assert np.isinf(br[["rate_a_mw", "rate_b_mw", "rate_c_mw"]].to_numpy()).all()
    n = ours.n_bus
    p = np.bincount(ppn.load.bus.to_numpy(), ppn.load.p_mw.to_numpy(), n)
    q = np.bincount(ppn.load.bus.to_numpy(), ppn.load.q_mvar.to_numpy(), n)
    np.testing.assert_allclose(np.bincount(ours.load_position, ours.load["p_mw"], n), p,
                               rtol=1e-12)
    np.testing.assert_allclose(np.bincount(ours.load_position, ours.load["q_mvar"], n), q,
                               rtol=1e-12)
    np.testing.assert_array_equal(ours.bus["vn_kv"], ppn.bus.vn_kv)
    assert ours.ref_bus == int(ppn.ext_grid.bus.iat[0]) + 1
    np.testing.assert_array_equal(ours.bus["vm_max_pu"], ppn.bus.max_vm_pu)
    np.testing.assert_array_equal(ours.bus["vm_min_pu"], ppn.bus.min_vm_pu)


def test_case33bw_power_flow_matches_runpp_and_baran_wu() -> None:
    pp, ppn = _pandapower_case33bw()
    pp.runpp(ppn, numba=False, tolerance_mva=1e-11, calculate_voltage_angles=True)
    pf = ac_power_flow(load_case("case33bw"), tol_mva=1e-11)
    np.testing.assert_allclose(pf.vm_pu, ppn.res_bus.vm_pu, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pf.va_deg, ppn.res_bus.va_degree, rtol=0, atol=1e-7)
    assert pf.losses_mw == pytest.approx(ppn.res_line.pl_mw.sum(), abs=1e-9)
    # Baran & Wu (1989): 202.67 kW of losses at nominal load; lowest voltage
    # 0.9131 pu at bus 18
    assert pf.losses_mw * 1e3 == pytest.approx(202.67, abs=0.01)
    assert int(np.argmin(pf.vm_pu)) + 1 == 18
    assert pf.vm_pu.min() == pytest.approx(0.9131, abs=5e-5)
