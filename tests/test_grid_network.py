"""Network model, case readers, built-in cases and network matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import InputError
from transactive.grid import matrices
from transactive.grid.cases import available_cases, load_case
from transactive.grid.matpower import (
    from_pandapower,
    parse_matpower,
    read_matpower,
    write_matpower,
    write_matpower_text,
)
from transactive.grid.network import Network

PGLIB = Path("/work/shared/cases")


def small() -> Network:
    return Network(
        bus={"bus": [10, 20, 30], "type": [3, 1, 1]},
        branch={"from_bus": [10, 20, 10], "to_bus": [20, 30, 30], "x_pu": [0.1, 0.1, 0.2],
                "rate_a_mw": [100.0, 100.0, 100.0]},
        gen={"bus": [10, 20], "p_max_mw": [200.0, 100.0], "cost_per_mwh": [10.0, 30.0]},
        load={"bus": [30], "p_mw": [150.0]},
    )


# ------------------------------------------------------------------- network
def test_network_tables_are_typed_and_defaulted() -> None:
    net = small()
    assert list(net.bus.columns)[:3] == ["bus", "type", "vn_kv"]
    assert net.branch["rate_c_mw"].tolist() == [np.inf] * 3
    assert net.branch["in_service"].dtype == bool
    assert net.gen["p_min_mw"].tolist() == [0.0, 0.0]
    assert net.ref_bus == 10
    assert net.bus_load_mw.tolist() == [0.0, 0.0, 150.0]
    assert net.bus_position([30, 10]).tolist() == [2, 0]


def test_network_copies_inputs_and_replace_validates() -> None:
    load = pd.DataFrame({"bus": [30], "p_mw": [150.0]})
    net = Network(bus=small().bus, branch=small().branch, gen=small().gen, load=load)
    load.loc[0, "p_mw"] = 1.0
    assert net.load.loc[0, "p_mw"] == 150.0
    with pytest.raises(InputError, match=r"load\.bus"):
        net.replace(load={"bus": [99], "p_mw": [1.0]})
    with pytest.raises(InputError, match="not a field"):
        net.replace(lines=None)


@pytest.mark.parametrize(
    ("table", "change", "match"),
    [
        ("branch", {"to_bus": [20, 99, 30]}, r"row 1: field 'branch\.to_bus'.*does not exist: 99"),
        ("branch", {"rate_a_mw": [100.0, -5.0, 100.0]}, r"row 1: field 'branch\.rate_a_mw'.*> 0"),
        ("branch", {"x_pu": [0.1, 0.0, 0.2]}, r"row 1: field 'branch\.x_pu'.*zero"),
        ("branch", {"to_bus": [20, 20, 30], "from_bus": [10, 20, 10]}, "different buses"),
        ("branch", {"x_pu": [0.1, np.nan, 0.2]}, r"branch\.x_pu.*finite"),
        ("branch", {"rate": [1.0, 1.0, 1.0]}, r"branch\.rate'.*unknown column"),
        ("gen", {"p_min_mw": [300.0, 0.0]}, r"row 0: field 'gen\.p_min_mw'.*above p_max_mw"),
        ("gen", {"cost_per_mw2h": [0.0, -1.0]}, r"gen\.cost_per_mw2h.*convex"),
        ("gen", {"bus": [10, 5]}, r"row 1: field 'gen\.bus'.*does not exist: 5"),
        ("bus", {"bus": [10, 20, 20]}, "duplicate bus number 20"),
        ("bus", {"type": [3, 1, 7]}, r"bus\.type"),
    ],
)
def test_bad_networks_name_the_element(table: str, change: dict, match: str) -> None:
    base = small()
    frame = getattr(base, table).copy()
    frame = frame.drop(columns=[c for c in change if c not in frame.columns], errors="ignore")
    data = {**{c: frame[c].to_numpy() for c in frame.columns}, **change}
    with pytest.raises(InputError, match=match):
        base.replace(**{table: data})


def test_islands_are_reported_by_bus_number() -> None:
    net = small().replace(branch={"from_bus": [10], "to_bus": [20], "x_pu": [0.1]})
    assert [i.tolist() for i in net.islands()] == [[10, 20], [30]]
    with pytest.raises(InputError, match=r"2 islands.*reference bus 10: \[30\]"):
        net.check_connected()
    small().check_connected()


def test_piecewise_costs_validated() -> None:
    net = small()
    gen = net.gen.assign(cost_per_mwh=[0.0, 30.0])
    ok = net.replace(gen=gen, pwl_cost={"gen": [0, 0, 0], "p_mw": [0.0, 100.0, 200.0],
                                        "cost_per_h": [0.0, 1000.0, 3000.0]})
    assert len(ok.pwl_cost) == 3
    with pytest.raises(InputError, match="not convex"):
        net.replace(gen=gen, pwl_cost={"gen": [0, 0, 0], "p_mw": [0.0, 100.0, 200.0],
                                       "cost_per_h": [0.0, 2000.0, 3000.0]})
    with pytest.raises(InputError, match="zero polynomial"):
        net.replace(pwl_cost={"gen": [0, 0], "p_mw": [0.0, 1.0], "cost_per_h": [0.0, 1.0]})


# ------------------------------------------------------------------- readers
@pytest.mark.parametrize("case", ["118_ieee", "300_ieee", "1354_pegase", "2869_pegase"])
def test_pglib_files_load(case: str) -> None:
    path = PGLIB / f"pglib_opf_case{case}.m"
    if not path.exists():
        pytest.skip("PGLib cases not available")
    net = read_matpower(path)
    sizes = {"118_ieee": (118, 186, 54), "300_ieee": (300, 411, 69),
             "1354_pegase": (1354, 1991, 260), "2869_pegase": (2869, 4582, 510)}
    assert (net.n_bus, net.n_branch, net.n_gen) == sizes[case]
    assert len(net.islands()) == 1
    assert np.isfinite(net.branch["rate_a_mw"]).all()
    assert (net.gen["cost_per_mwh"] != 0).any()


def test_matpower_round_trip(tmp_path: Path) -> None:
    net = load_case("case30")
    path = tmp_path / "c30.m"
    write_matpower(net, path)
    again = read_matpower(path)
    for t in ("bus", "branch", "gen", "load"):
        pd.testing.assert_frame_equal(getattr(again, t), getattr(net, t))


def test_matpower_gencost_models() -> None:
    text = write_matpower_text(small()).replace(
        "mpc.gencost = [", "mpc.gencost = [\n\t1\t0\t0\t3\t0\t0\t100\t1000\t200\t3000;\n"
        "\t2\t0\t0\t2\t30\t5\t0\t0\t0\t0;\n];\nmpc.unused = [")
    net = parse_matpower(text)
    assert net.gen["cost_per_mwh"].tolist() == [0.0, 30.0]
    assert net.gen["cost_per_h"].tolist() == [0.0, 5.0]
    assert net.pwl_cost["p_mw"].tolist() == [0.0, 100.0, 200.0]
    with pytest.raises(InputError, match="above quadratic"):
        parse_matpower(text.replace("2\t30\t5\t0\t0\t0\t0;", "4\t1\t1\t30\t5\t0\t0;"))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("mpc.version = '2'", "mpc.version = '1'"), "version 2"),
        (("mpc.gen = [", "mpc.gen = [\n1 2 x;"), r"mpc\.gen.*numeric"),
        (("mpc.branch = [", "mpc.branch_x = ["), r"mpc\.branch'.*missing"),
    ],
)
def test_bad_matpower_text(edit: tuple[str, str], match: str) -> None:
    text = write_matpower_text(small()).replace(*edit)
    with pytest.raises(InputError, match=match):
        parse_matpower(text)


def test_missing_file_and_unknown_case() -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_case("/nonexistent/case.m")
    with pytest.raises(InputError, match=r"unknown case 'case7'.*case9"):
        load_case("case7")


# ----------------------------------------------------------------- built-ins
def test_builtin_cases() -> None:
    assert available_cases() == ["case118", "case14", "case30", "case33bw", "case9"]
    sizes = {"case9": (9, 9, 3), "case14": (14, 20, 5), "case30": (30, 41, 6),
             "case118": (118, 186, 54), "case33bw": (33, 32, 1)}
    for name, size in sizes.items():
        net = load_case(name)
        assert (net.n_bus, net.n_branch, net.n_gen) == size
        assert net.bus_numbers.tolist() == list(range(1, size[0] + 1))
    assert load_case("IEEE33").name == "case33bw"


def test_feeder_is_baran_wu() -> None:
    net = load_case("case33bw")
    assert net.base_mva == 10.0
    assert set(net.bus["vn_kv"]) == {12.66}
    # Baran & Wu totals: 3715 kW, 2300 kvar; branch 1-2 is 0.0922 + j0.0470 ohm
    assert net.load["p_mw"].sum() == pytest.approx(3.715)
    assert net.load["q_mvar"].sum() == pytest.approx(2.3)
    z_base = 12.66**2 / 10.0
    first = net.branch.iloc[0]
    assert (first["from_bus"], first["to_bus"]) == (1, 2)
    assert first["r_pu"] * z_base == pytest.approx(0.0922, rel=1e-4)
    assert first["x_pu"] * z_base == pytest.approx(0.0470, rel=1e-4)
    assert len(matrices.radial_branches(net)) == 32


def test_from_pandapower_leaves_net_unchanged() -> None:
    pn = pytest.importorskip("pandapower.networks")
    pp_net = pn.case9()
    before = set(pp_net.keys())
    net = from_pandapower(pp_net)
    assert set(pp_net.keys()) == before
    assert net.bus_numbers.tolist() == list(range(1, 10))


# ------------------------------------------------------------------ matrices
def naive_flows(net: Network, injection_mw: np.ndarray, out: int = -1) -> np.ndarray:
    """DC flows by a dense solve, branch ``out`` switched off (reference slack)."""
    on = net.branch["in_service"].to_numpy().copy()
    if out >= 0:
        on[out] = False
    f, t = net.from_position, net.to_position
    b = np.where(on, 1 / (net.branch["x_pu"] * net.branch["tap"]).to_numpy(), 0.0)
    bus_b = np.zeros((net.n_bus, net.n_bus))
    np.add.at(bus_b, (f, f), b)
    np.add.at(bus_b, (t, t), b)
    np.add.at(bus_b, (f, t), -b)
    np.add.at(bus_b, (t, f), -b)
    keep = np.arange(net.n_bus) != net.ref_position
    theta = np.zeros(net.n_bus)
    theta[keep] = np.linalg.solve(bus_b[np.ix_(keep, keep)], injection_mw[keep])
    return b * (theta[f] - theta[t])


def test_b_matrices_and_incidence() -> None:
    net = load_case("case14")
    a = matrices.incidence(net).toarray()
    assert np.all(a.sum(axis=1) == 0)
    assert np.all(np.abs(a).sum(axis=1) == 2)
    b = matrices.bbus(net)
    np.testing.assert_allclose(b.sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose((b - b.T).toarray(), 0)
    bf = matrices.bf(net).toarray()
    np.testing.assert_allclose(a.T @ bf, b.toarray())
    off = net.replace(branch=net.branch.assign(in_service=[False] + [True] * 19))
    assert not matrices.incidence(off).toarray()[0].any()


@pytest.mark.parametrize("name", ["case9", "case30", "case118"])
def test_ptdf_matches_naive_power_flow(name: str) -> None:
    net = load_case(name)
    h = matrices.ptdf(net)
    rng = np.random.default_rng(1)
    inj = rng.normal(size=net.n_bus)
    inj[net.ref_position] -= inj.sum()
    np.testing.assert_allclose(h @ inj, naive_flows(net, inj), atol=1e-9)
    # a different single slack or a distributed one gives the same flows for a
    # balanced injection, and no flow for the slack's own withdrawal pattern
    w = rng.uniform(size=net.n_bus)
    hd = matrices.ptdf(net, slack=w)
    np.testing.assert_allclose(hd @ inj, h @ inj, atol=1e-9)
    np.testing.assert_allclose(hd @ (w / w.sum()), 0, atol=1e-12)
    h5 = matrices.ptdf(net, slack=int(net.bus_numbers[4]))
    np.testing.assert_allclose(h5[:, 4], 0, atol=1e-12)


def test_lodf_matches_outage_power_flows() -> None:
    net = load_case("case30")
    lo = matrices.lodf(net)
    rng = np.random.default_rng(2)
    inj = rng.normal(size=net.n_bus)
    inj[net.ref_position] -= inj.sum()
    base = naive_flows(net, inj)
    for k in range(net.n_branch):
        if lo.islanding[k]:
            assert np.all(lo.matrix[:, k] == 0)
            assert len(net.replace(branch=net.branch.assign(
                in_service=np.arange(net.n_branch) != k)).islands()) == 2
            continue
        after = naive_flows(net, inj, out=k)
        np.testing.assert_allclose(base + lo.matrix[:, k] * base[k], after, atol=1e-9)
    assert np.isfinite(lo.matrix).all()


def test_radial_branches_are_the_bridges() -> None:
    for name in ("case9", "case30", "case118", "case33bw"):
        net = load_case(name)
        bridges = set(matrices.radial_branches(net).tolist())
        for k in range(net.n_branch):
            cut = net.replace(branch=net.branch.assign(in_service=np.arange(net.n_branch) != k))
            assert (len(cut.islands()) > 1) == (k in bridges), (name, k)
    # parallel branches are not bridges
    par = Network(bus={"bus": [1, 2], "type": [3, 1]},
                  branch={"from_bus": [1, 2], "to_bus": [2, 1], "x_pu": [0.1, 0.2]},
                  gen={"bus": [1], "p_max_mw": [1.0]}, load={"bus": [2], "p_mw": [0.5]})
    assert matrices.radial_branches(par).size == 0


def test_dc_power_flow_with_phase_shifter() -> None:
    net = small().replace(branch=small().branch.assign(shift_deg=[5.0, 0.0, 0.0]))
    flow = matrices.DCPowerFlow(net)
    inj = np.array([150.0, 0.0, -150.0])
    f = flow.flows(inj)
    # the shifter drives a loop flow; the bus balance still holds
    np.testing.assert_allclose(matrices.incidence(net).T @ f, inj, atol=1e-9)
    plain = matrices.DCPowerFlow(small()).flows(inj)
    assert f[0] < plain[0]  # a positive shift at the from end pushes flow back
    with pytest.raises(InputError, match="islands"):
        matrices.ptdf(net.replace(branch={"from_bus": [10], "to_bus": [20], "x_pu": [0.1]}))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                         min_size=1, max_size=14))))
def test_property_bridges_and_lodf_on_random_graphs(graph: tuple[int, list]) -> None:
    n, edges = graph
    edges = [(a, b) for a, b in edges if a != b]
    if not edges:
        return
    f, t = np.array(edges).T + 1
    net = Network(bus={"bus": np.arange(1, n + 1), "type": [3] + [1] * (n - 1)},
                  branch={"from_bus": f, "to_bus": t, "x_pu": np.linspace(0.1, 0.3, f.size)},
                  gen={"bus": [1], "p_max_mw": [1.0]}, load={"bus": [1], "p_mw": [0.5]})
    n_isl = len(net.islands())
    bridges = set(matrices.radial_branches(net).tolist())
    for k in range(f.size):
        cut = net.replace(branch=net.branch.assign(in_service=np.arange(f.size) != k))
        assert (len(cut.islands()) > n_isl) == (k in bridges)
    if n_isl == 1:
        lo = matrices.lodf(net)
        assert np.isfinite(lo.matrix).all()
        assert set(np.flatnonzero(lo.islanding).tolist()) == bridges
