"""Decentralised P2P clearing (``p2p_admm``) against the central LP of the same market.

A community of n agents (half buyers, half sellers, three orders each:
buyers' limits 0.10-0.40, sellers' 0.00-0.30 per kWh, 0.5-5 kWh; seeded),
each at a random position, trading with its 8 nearest peers at a preference
cost of 0.0001 per kWh per unit of distance. For each n the tolerance is
tightened (1e-5, 1e-6, 1e-7) until the net welfare is within 1e-4 of the
central optimum (HiGHS); the table shows that tolerance, the iterations, the
whole ``clear_p2p_admm`` call's seconds (feasible projection and
``Clearing`` included) and the central LP's. The target: 1,000 agents in
under 5 s.

Run: ``python benchmarks/bench_admm.py [--sizes 100,1000,10000] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from transactive.decentral.p2p_admm import clear_p2p_admm
from transactive.decentral.problem import build_problem, solve_central
from transactive.orders import OrderBatch

_GAP = 1e-4
_TOLERANCES = (1e-5, 1e-6, 1e-7)
_NEIGHBOURS = 8
_DISTANCE_COST = 1e-4


def make_orders(n_agents: int, seed: int, orders_each: int = 3) -> OrderBatch:
    """``n_agents`` agents of three orders each, at random positions (their nodes)."""
    rng = np.random.default_rng(seed)
    part = np.repeat(np.arange(n_agents), orders_each)
    buy = part < n_agents // 2
    price = np.where(buy, rng.uniform(0.10, 0.40, part.size), rng.uniform(0.0, 0.30, part.size))
    node = rng.integers(0, 10 * n_agents, n_agents)[part]
    return OrderBatch(id=np.arange(part.size), participant=part, side=np.where(buy, 1, -1),
                      price=price, quantity=rng.uniform(0.5, 5.0, part.size), node=node)


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    """Print the table; return its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    options = {"neighbours": _NEIGHBOURS, "distance_cost_per_kwh": _DISTANCE_COST}
    rows = []
    print(f"{'agents':>7} {'edges':>7} {'tol':>6} {'iterations':>10} {'admm s':>8} "
          f"{'central s':>9} {'welfare gap':>11}")
    for n in (int(s) for s in args.sizes.split(",")):
        orders = make_orders(n, args.seed)
        central = solve_central(build_problem(orders, **options))  # type: ignore[arg-type]
        for tol in _TOLERANCES:
            start = time.perf_counter()
            c = clear_p2p_admm(orders, tol=tol, **options)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
            gap = (central.welfare - c.info["net_welfare"]) / abs(central.welfare)
            if gap <= _GAP or tol == _TOLERANCES[-1]:
                break
        rows.append({"agents": n, "edges": c.info["n_edges"], "tol": tol,
                     "iterations": c.info["iterations"], "admm_s": elapsed,
                     "central_s": central.solve_time_s, "gap": gap})
        print(f"{n:>7} {c.info['n_edges']:>7} {tol:>6.0e} {c.info['iterations']:>10} "
              f"{elapsed:>8.2f} {central.solve_time_s:>9.3f} {gap:>11.1e}")
    return rows


if __name__ == "__main__":
    main()
