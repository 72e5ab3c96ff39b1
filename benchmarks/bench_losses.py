"""Time per call of the marginal loss factors on the IEEE 33-bus feeder, as
the simulation's carbon charge uses them (one AC power flow and one adjoint
solve per interval), and the same through ``carbon_lines``.

Operating points: 96 intervals of a day, each bus drawing its nominal load
times a random factor 0.2-1.5 (unity power factor, as ``carbon_lines``
assumes). Rows:

- ``cold``: the first call on a freshly loaded network (builds and caches
  the Y-bus, the index arrays and the flat-start Jacobian's LU factors);
- ``warm``: later calls on the same network, one interval per call;
- ``stacked``: all 96 intervals in one call (a ``(96, n_bus)`` array), per interval;
- ``carbon_lines``: one interval of 66 participants, per call (validation,
  aggregation to buses, the loss factors, the lines).

Best of ``--repeat`` passes (other processes on the machine slow the worst).

Run: ``python benchmarks/bench_losses.py [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _timing import best_of
from transactive.grid.cases import load_case
from transactive.grid.losses import marginal_loss_factors
from transactive.programs.carbon import CarbonPrices, carbon_lines

INTERVALS = 96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    net = load_case("ieee33")
    p = -net.bus_load_mw * rng.uniform(0.2, 1.5, (INTERVALS, net.n_bus))
    q = np.zeros(net.n_bus)

    cold = float("inf")
    for _ in range(args.repeat):
        fresh = load_case("ieee33")
        start = time.perf_counter()
        marginal_loss_factors(fresh, p[0], q)
        cold = min(cold, time.perf_counter() - start)

    def warm() -> None:
        for row in p:
            marginal_loss_factors(net, row, q)

    def stacked() -> None:
        marginal_loss_factors(net, p, q)

    node = np.repeat(np.arange(1, net.n_bus), 2)
    injection = -rng.uniform(0.2, 1.6, (INTERVALS, node.size))
    zeros = np.zeros(node.size)
    prices = CarbonPrices(price_per_kg=0.1, grid_kg_per_kwh=0.4)

    def lines() -> None:
        for row in injection:
            carbon_lines(net, node, row, zeros, zeros, dt_h=0.25, kw_per_unit=30.0,
                         prices=prices)

    warm()  # the network's cache is built
    t_warm, t_stacked, t_lines = best_of([warm, stacked, lines], args.repeat)
    year = 35_040
    print("IEEE 33-bus, marginal loss factors (AC Newton + adjoint)")
    print(f"{'call':<14}{'ms per interval':>16}{'s per year':>12}")
    print(f"{'cold':<14}{cold * 1e3:>16.3f}{'-':>12}")
    for name, seconds in (("warm", t_warm / INTERVALS), ("stacked", t_stacked / INTERVALS),
                          ("carbon_lines", t_lines / INTERVALS)):
        print(f"{name:<14}{seconds * 1e3:>16.3f}{seconds * year:>12.1f}")


if __name__ == "__main__":
    main()
