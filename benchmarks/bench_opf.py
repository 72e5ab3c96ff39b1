"""DC-OPF and N-1 SCOPF speed against pandapower, PyPSA and the bare HiGHS solve.

For each case the same network is solved by

* ``ours``      -- ``transactive.grid.dcopf`` (lazy PTDF form), the whole call:
  validation, LU factorisation, every HiGHS solve, LMP decomposition;
* ``HiGHS full`` -- the HiGHS ``run()`` alone on the full LP (bus angles, every
  line limit, built beforehand): the floor of a one-shot solver;
* ``HiGHS red``  -- the HiGHS ``run()`` alone, from scratch, on the final reduced
  LP that our lazy method ends with (the floor of this formulation);
* ``pandapower`` -- ``pandapower.rundcopp`` (PIPS);
* ``PyPSA``      -- ``Network.optimize`` (linopy + HiGHS), model building included.

Sources: PGLib-OPF files in /work/shared/cases (``pglib_*``; pandapower gets
them through its ``from_ppc``), and ``pandapower.networks`` (``pp_*``; our
network then comes from ``from_pandapower``, so the problem is pandapower's
own). pandapower's copies of the pegase cases are DC-infeasible as shipped
(rundcopp fails on them too), so the pegase rows use PGLib. Converting to
pandapower/PyPSA is bench code below and is not timed. PyPSA ignores
transformer phase shifts in its linear OPF, so they are given to it as the
equivalent fixed bus injections. Each time is the best of ``--repeat`` runs
(``3 * --repeat`` for ours and the HiGHS floors), as the machine is shared
and the best run is the least disturbed.

Run: ``python benchmarks/bench_opf.py [--repeat 3] [--cases ...] [--no-pypsa]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _timing import best_of
from transactive.errors import SolverError
from transactive.grid import dcopf, from_pandapower, read_matpower
from transactive.grid.dcopf import PtdfModel, prepare_market
from transactive.grid.network import Network
from transactive.grid.scopf import scopf

PGLIB = Path("/work/shared/cases")
CASES = {
    "pglib_case118": ("pglib", "pglib_opf_case118_ieee.m"),
    "pp_case118": ("pp", "case118"),
    "pglib_case1354": ("pglib", "pglib_opf_case1354_pegase.m"),
    "pglib_case2869": ("pglib", "pglib_opf_case2869_pegase.m"),
}
# pandapower.networks' pegase copies carry 100 MVA transformer ratings that make
# their DC-OPF infeasible, in pandapower (rundcopp fails) and here (SolverError)
INFEASIBLE = {"pp_case1354pegase": ("pp", "case1354pegase"),
              "pp_case2869pegase": ("pp", "case2869pegase")}


# ------------------------------------------------------------- converters
def to_ppc(net: Network) -> dict[str, Any]:
    """A PYPOWER case dict of ``net`` (ratings inf -> 0, loads summed per bus)."""
    b, br, g = net.bus, net.branch, net.gen
    pd_ = np.bincount(net.load_position, weights=net.load["p_mw"], minlength=net.n_bus)
    qd = np.bincount(net.load_position, weights=net.load["q_mvar"], minlength=net.n_bus)
    bus = np.column_stack([b["bus"], b["type"], pd_, qd, b["gs_mw"], b["bs_mvar"], b["area"],
                           b["vm_pu"], b["va_deg"], b["vn_kv"], b["zone"], b["vm_max_pu"],
                           b["vm_min_pu"]]).astype(float)
    rates = [np.where(np.isinf(br[c]), 0.0, br[c]) for c in ("rate_a_mw", "rate_b_mw",
                                                              "rate_c_mw")]
    branch = np.column_stack([br["from_bus"], br["to_bus"], br["r_pu"], br["x_pu"], br["b_pu"],
                              *rates, br["tap"], br["shift_deg"], br["in_service"],
                              br["angmin_deg"], br["angmax_deg"]]).astype(float)
    qmax = np.where(np.isinf(g["q_max_mvar"]), 9999.0, g["q_max_mvar"])
    qmin = np.where(np.isinf(g["q_min_mvar"]), -9999.0, g["q_min_mvar"])
    gen = np.column_stack([g["bus"], g["p_mw"], g["q_mvar"], qmax, qmin, g["vm_pu"],
                           np.full(net.n_gen, net.base_mva), g["in_service"], g["p_max_mw"],
                           g["p_min_mw"]]).astype(float)
    gen = np.hstack([gen, np.zeros((net.n_gen, 11))])
    gencost = np.column_stack([np.full(net.n_gen, 2.0), np.zeros(net.n_gen),
                               np.zeros(net.n_gen), np.full(net.n_gen, 3.0), g["cost_per_mw2h"],
                               g["cost_per_mwh"], g["cost_per_h"]])
    return {"version": "2", "baseMVA": net.base_mva, "bus": bus, "branch": branch, "gen": gen,
            "gencost": gencost}


def to_pandapower(net: Network) -> Any:
    from pandapower.converter.pypower import from_ppc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_ppc(to_ppc(net), f_hz=50, validate_conversion=False)


def to_pypsa(net: Network) -> tuple[Any, float]:
    """A PyPSA network of ``net`` (v_nom 1 kV so that x in ohm is x in pu on
    1 MVA) and the constant cost PyPSA leaves out."""
    import pypsa

    n = pypsa.Network()
    names = np.array([str(b) for b in net.bus_numbers])
    n.add("Bus", names, v_nom=1.0)
    br = net.branch
    on = np.flatnonzero(br["in_service"].to_numpy())
    x = (br["x_pu"] * br["tap"]).to_numpy() / net.base_mva
    rate = br["rate_a_mw"].to_numpy()
    s_nom = np.where(np.isfinite(rate), rate, 1e7)
    n.add("Line", [f"l{k}" for k in on], bus0=names[net.from_position[on]],
          bus1=names[net.to_position[on]], x=x[on], r=0.0, s_nom=s_nom[on])
    g = net.gen
    gon = np.flatnonzero(g["in_service"].to_numpy())
    pmax, pmin = g["p_max_mw"].to_numpy()[gon], g["p_min_mw"].to_numpy()[gon]
    pnom = np.maximum(np.maximum(np.abs(pmax), np.abs(pmin)), 1e-6)
    n.add("Generator", [f"g{k}" for k in gon], bus=names[net.gen_position[gon]], p_nom=pnom,
          p_max_pu=pmax / pnom, p_min_pu=pmin / pnom,
          marginal_cost=g["cost_per_mwh"].to_numpy()[gon],
          marginal_cost_quadratic=g["cost_per_mw2h"].to_numpy()[gon])
    # phase shifters as their fixed injections (PyPSA's LOPF ignores phase_shift)
    b = np.where(br["in_service"], 1.0 / (br["x_pu"] * br["tap"]), 0.0) * net.base_mva
    f_shift = -b * np.deg2rad(br["shift_deg"].to_numpy())
    p_shift = (np.bincount(net.from_position, f_shift, net.n_bus)
               - np.bincount(net.to_position, f_shift, net.n_bus))
    demand = net.bus_load_mw + p_shift
    nz = np.flatnonzero(np.abs(demand) > 0)
    n.add("Load", [f"d{i}" for i in nz], bus=names[nz], p_set=demand[nz])
    return n, float(g["cost_per_h"].to_numpy()[gon].sum())


# ----------------------------------------------------------------- timing
def highs_floors(net: Network) -> tuple[float, float]:
    """HiGHS run() alone: the full angle-form LP, and our final reduced LP cold."""
    full = dcopf(net, formulation="angle")
    market = prepare_market(net)
    model = PtdfModel(market)
    model.lazy_limits(np.flatnonzero(np.isfinite(market.limit)), market.limit)
    model.solve()
    model.highs.h.clearSolver()
    start = time.perf_counter()
    model.highs.h.run()
    return full.solve_time_s, time.perf_counter() - start


def load(kind: str, name: str) -> tuple[Network, Any]:
    if kind == "pglib":
        net = read_matpower(PGLIB / name)
        return net, None
    import pandapower.networks as pn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp_net = getattr(pn, name)()
    return from_pandapower(pp_net), pp_net


def run_case(label: str, kind: str, name: str, repeat: int, pypsa: bool) -> dict[str, Any]:
    import pandapower as pp

    net, pp_net = load(kind, name)
    if pp_net is None:
        pp_net = to_pandapower(net)
    ours = dcopf(net)
    rows: dict[str, Any] = {"case": label, "buses": net.n_bus, "branches": net.n_branch,
                            "obj": ours.objective}

    def run_pp() -> None:
        work = copy.deepcopy(pp_net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.rundcopp(work)
        rows["pp_obj"] = float(work.res_cost)

    t_ours = best_of([lambda: dcopf(net)], 3 * repeat)[0]
    t_pp = best_of([run_pp], repeat)[0]
    floors = [highs_floors(net) for _ in range(3 * repeat)]
    floor_full, floor_red = min(f[0] for f in floors), min(f[1] for f in floors)
    rows.update(ours_ms=t_ours * 1e3, full_ms=floor_full * 1e3, red_ms=floor_red * 1e3,
                pp_ms=t_pp * 1e3, n_solves=ours.n_solves, n_limits=ours.n_limits)
    if pypsa:
        n, const = to_pypsa(net)

        def run_pypsa() -> None:
            n.optimize(solver_name="highs", solver_options={"output_flag": False},
                       include_objective_constant=False)
            rows["pypsa_obj"] = float(n.objective) + const

        rows["pypsa_ms"] = best_of([run_pypsa], max(1, repeat - 1))[0] * 1e3
    return rows


def run_scopf(repeat: int) -> list[tuple[str, float, str]]:
    out = []
    for label, kind, name in (("pglib_case118", "pglib", "pglib_opf_case118_ieee.m"),
                              ("pp_case118", "pp", "case118")):
        net, _ = load(kind, name)
        for post in ("c", 1.5):
            def run(net: Network = net, post: str | float = post) -> str:
                try:
                    res = scopf(net, post_rating=post)
                except SolverError as exc:
                    return "infeasible: " + str(exc)[25:95] + "..."
                return (f"obj {res.objective:.2f}, {res.iterations} solves, "
                        f"{len(res.outages)} outages ({len(res.skipped)} islanding skipped), "
                        f"{res.n_limits} rows")
            note = run()
            t = best_of([run], repeat)[0]
            out.append((f"{label} post_rating={post}", t * 1e3, note))
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Print the tables; return the DC-OPF rows (times in ms)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES),
                        help=f"from {list(CASES) + list(INFEASIBLE)}")
    parser.add_argument("--no-pypsa", action="store_true", help="skip PyPSA (slow to build)")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # pandapower / linopy chatter
    table = {**CASES, **INFEASIBLE}
    rows = []
    head = (f"{'case':<20}{'buses':>6}{'ours ms':>9}{'HiGHS full':>11}{'HiGHS red':>10}"
            f"{'pandapower':>11}{'PyPSA':>9}{'x pp':>7}{'x PyPSA':>8}{'/full':>7}{'/red':>6}"
            f"{'solves':>7}{'rows':>6}{'d obj pp':>10}{'d obj PyPSA':>12}")
    print(head)
    for label in args.cases:
        kind, name = table[label]
        if kind == "pglib" and not (PGLIB / name).exists():
            continue
        try:
            r = run_case(label, kind, name, args.repeat, not args.no_pypsa)
        except SolverError as exc:
            print(f"{label:<20} infeasible: {str(exc)[:90]}...")
            continue
        rows.append(r)
        pypsa_ms = r.get("pypsa_ms", float("nan"))
        d_pp = abs(r["pp_obj"] / r["obj"] - 1)
        d_py = abs(r.get("pypsa_obj", float("nan")) / r["obj"] - 1)
        print(f"{label:<20}{r['buses']:>6}{r['ours_ms']:>9.1f}{r['full_ms']:>11.1f}"
              f"{r['red_ms']:>10.1f}{r['pp_ms']:>11.0f}{pypsa_ms:>9.0f}"
              f"{r['pp_ms'] / r['ours_ms']:>7.0f}{pypsa_ms / r['ours_ms']:>8.0f}"
              f"{r['ours_ms'] / r['full_ms']:>7.2f}{r['ours_ms'] / r['red_ms']:>6.1f}"
              f"{r['n_solves']:>7}{r['n_limits']:>6}{d_pp:>10.1e}{d_py:>12.1e}", flush=True)
    print("\nN-1 SCOPF (LODF screening + constraint generation)")
    for label, ms, note in run_scopf(args.repeat):
        print(f"  {label:<32}{ms:>8.1f} ms  {note}")
    return rows


if __name__ == "__main__":
    main()
