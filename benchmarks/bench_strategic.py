"""The strategic-offer MILP (``transactive.markets.strategic``) beside brute
force over a grid of the agent's offers, on IEEE 30 and PGLib IEEE 118.

For each case and agent (one generator):

* ``MILP``: ``strategic_offer`` end to end (the clearing's setup, the KKT
  MILP solved by HiGHS to optimality, the LP with the binaries fixed, the
  truthful clearing and the measures); its binaries and profit;
* ``grid``: a fresh ``OfferMarket`` re-cleared at every point of a grid of
  the agent's offers (one price per block it prices: ``--points`` prices
  from 0 to the cap for one block; rising pairs or triples of ``--steps``
  prices for two or three), warm from the previous basis; its best profit,
  which is at most the MILP's (the grid's points are points of the MILP's
  feasible set) and approaches it as the grid gets finer.

IEEE 30 is the built-in MATPOWER case30 (PGLib's case30 is not in
/work/shared/cases); its quadratic costs are cut into ``blocks`` steps, so
an agent prices 1, 2 or 3 blocks. PGLib 118 has linear costs: one block
each. Price cap 1000 per MWh, line penalty the same. Each time is one run
(the MILP takes seconds; the machine is shared).

Run: ``python benchmarks/bench_strategic.py [--points 201] [--steps 21]``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from transactive.grid.cases import load_case
from transactive.markets.strategic import OfferMarket, brute_force, strategic_offer

PGLIB = Path("/work/shared/cases")
CAP = 1000.0
RUNS = (("case30", "case30", 1, (0, 1, 3)), ("case30", "case30", 2, (0,)),
        ("case30", "case30", 3, (0,)),
        ("pglib118", str(PGLIB / "pglib_opf_case118_ieee.m"), 1, (4, 20, 29)))


def _grid(n_free: int, points: int, steps: int) -> np.ndarray:
    if n_free == 1:
        return np.linspace(0.0, CAP, points)[:, None]
    prices = np.linspace(0.0, CAP, steps)
    rows = [p for p in itertools.product(prices, repeat=n_free) if all(np.diff(p) >= 0)]
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=201, help="grid of one price")
    parser.add_argument("--steps", type=int, default=21, help="prices per block, 2-3 blocks")
    args = parser.parse_args()
    head = (f"{'case':<9}{'gen':>4}{'bus':>5}{'blocks':>7}{'bins':>6}{'MILP s':>8}"
            f"{'MILP profit':>13}{'points':>8}{'grid s':>8}{'grid profit':>13}")
    print(head)
    print("-" * len(head))
    for name, case, blocks, agents in RUNS:
        net = load_case(case)
        for g in agents:
            start = time.perf_counter()
            out = strategic_offer(net, [g], blocks=blocks, price_cap_per_mwh=CAP)
            t_milp = time.perf_counter() - start
            start = time.perf_counter()
            market = OfferMarket(net, [g], blocks=blocks, price_cap_per_mwh=CAP)
            grid = _grid(market.n_free, args.points, args.steps)
            profits, _ = brute_force(market, grid)
            t_grid = time.perf_counter() - start
            bus = int(net.column("gen", "bus")[g])
            print(f"{name:<9}{g:>4}{bus:>5}{market.n_free:>7}{out.n_binaries:>6}{t_milp:>8.2f}"
                  f"{out.profit:>13.2f}{len(grid):>8}{t_grid:>8.2f}{profits.max():>13.2f}")


if __name__ == "__main__":
    main()
