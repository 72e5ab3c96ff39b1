"""Time per call of the grid-aware market (mechanism ``"network"``) on the
IEEE 33-bus feeder, and a simulated week.

Each household sits at a random load bus (positions 1..32) and sends one
order per interval: a buy of its net demand, or a sell of its PV surplus
(40% of households sell in a daytime interval), with limit prices around
0.05-0.30 per kWh; quantities are kWh per 15 minutes. ``kw_per_unit`` scales
the households so that together they load the feeder like its nominal
3.7 MW (so voltage limits bind at times), and the timing covers a real
network-constrained dispatch, not an idle feeder.

Timed: one ``clear_network`` call (validation, LP build from the cached
network block, HiGHS or Clarabel, results) per interval, best of
``--repeat`` runs of ``--calls`` calls; building the orders is not timed.
LinDistFlow is timed twice: on a fresh LP every call (``fresh``) and on the
network's kept LP, updated and re-solved from the previous basis
(``reused``, the default); the "LP ms" column is the solver part alone
(the ``solve_time_s`` the call reports: build or update, HiGHS, reading the
solution). The "week" rows are 672 calls (15-minute intervals) with 50
households, each way.

Run: ``python benchmarks/bench_distflow.py [--households 50 1000] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from transactive.grid.cases import load_case
from transactive.markets.network import clear_network
from transactive.orders import OrderBatch

IMPORT, EXPORT = 0.25, 0.05
DT_H = 0.25
SHED = 2.0  # value of lost load per kWh: demand the feeder cannot carry is shed


def make_orders(n: int, n_bus: int, rng: np.random.Generator, sell_share: float) -> OrderBatch:
    """One order per household: a buy of net demand or a sell of surplus."""
    sell = rng.random(n) < sell_share
    qty = np.where(sell, rng.uniform(0.2, 1.5, n), rng.uniform(0.1, 1.0, n))
    price = np.where(sell, rng.uniform(0.02, 0.15, n), rng.uniform(0.20, 0.35, n))
    return OrderBatch._trusted(
        id=np.arange(n), participant=np.arange(n), side=np.where(sell, -1, 1).astype(np.int8),
        price=price, quantity=qty, node=rng.integers(1, n_bus, n),
    )


def time_calls(batches: list[OrderBatch], repeat: int, **options: object
               ) -> tuple[float, float]:
    """Best mean seconds per call over ``repeat`` passes through ``batches``,
    and the mean solver seconds per call of that pass."""
    clear_network(batches[0], **options)  # type: ignore[arg-type]  # warm-up (imports, caches)
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        solver = 0.0
        t0 = time.perf_counter()
        for ob in batches:
            solver += clear_network(ob, **options).info["solve_time_s"]  # type: ignore[arg-type]
        best = min(best, ((time.perf_counter() - t0) / len(batches), solver / len(batches)))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, nargs="+", default=[50, 1000])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    net = load_case("ieee33")
    nominal_kw = float(net.bus_load_mw.sum()) * 1000
    print(f"{'households':>10} {'model':>20} {'ms/call':>9} {'LP ms':>7} {'binding/call':>13}")
    for n in args.households:
        batches = [make_orders(n, net.n_bus, rng, 0.4 if i % 2 else 0.0)
                   for i in range(args.calls)]
        # households at 0.55 kWh per 15 min on average ~ 2.2 kW; scale to 1.2x nominal
        scale = 1.2 * nominal_kw / (n * 2.2)
        for label, model, reuse, calls in (
                ("dc", "dc", False, batches), ("lindistflow fresh", "lindistflow", False, batches),
                ("lindistflow reused", "lindistflow", True, batches),
                ("soc", "soc", False, batches[:4])):
            opts = {"network": net, "model": model, "import_price": IMPORT,
                    "export_price": EXPORT, "dt_h": DT_H, "kw_per_unit": scale,
                    "shed_price": SHED, "reuse_model": reuse}
            sec, lp = time_calls(calls, 1 if model == "soc" else args.repeat, **opts)
            bind = np.mean([len(clear_network(b, **opts).info["binding"]) for b in calls[:4]])
            print(f"{n:>10} {label:>20} {sec * 1e3:>9.2f} {lp * 1e3:>7.2f} {bind:>13.1f}")
    week = [make_orders(50, net.n_bus, rng, 0.4 if (i // 48) % 2 else 0.0) for i in range(672)]
    scale = 1.2 * nominal_kw / (50 * 2.2)
    for label, reuse in (("fresh", False), ("reused", True)):
        sec, lp = time_calls(week, 1, network=net, import_price=IMPORT, export_price=EXPORT,
                             dt_h=DT_H, kw_per_unit=scale, shed_price=SHED, reuse_model=reuse)
        print(f"week: 672 calls x 50 households (lindistflow {label}): {sec * 672:.2f} s, "
              f"LP {lp * 1e3:.3f} ms per interval")


if __name__ == "__main__":
    main()
