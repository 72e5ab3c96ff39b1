"""Speed of the sealed-bid double auctions against one sort of the prices.

For n orders (half buys, half sells; prices uniform on 0-0.40 per kWh with
buys and sells overlapping, quantities 0.1-10 kWh; seeded) it times
``clear_uniform`` and ``clear_pay_as_bid`` (the whole call, building the
``Clearing`` included) and ``np.argsort(prices)``, each the best of
``--repeat`` runs (taking turns), and prints them with the ratio to the argsort. The target:
clearing takes no longer than the argsort (ratio <= 1) from 10^6 orders up.
Building the ``OrderBatch`` (validation) is not timed.

Run: ``python benchmarks/bench_clearing.py [--max-exp 7] [--repeat 3] [--seed 0]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from _timing import best_of
from transactive.markets.pay_as_bid import clear_pay_as_bid
from transactive.markets.uniform import clear_uniform
from transactive.orders import OrderBatch


def make_orders(n: int, seed: int) -> OrderBatch:
    """``n`` random orders: buys on 0.05-0.40, sells on 0-0.35 per kWh."""
    rng = np.random.default_rng(seed)
    is_buy = rng.random(n) < 0.5
    price = np.where(is_buy, rng.uniform(0.05, 0.40, n), rng.uniform(0.0, 0.35, n))
    quantity = rng.uniform(0.1, 10.0, n)
    return OrderBatch(id=np.arange(n), participant=np.arange(n) % 1000,
                      side=np.where(is_buy, 1, -1), price=price, quantity=quantity)


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    """Print the table; return its rows (times in seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-exp", type=int, default=7, help="largest n is 10**max_exp")
    parser.add_argument("--min-exp", type=int, default=4, help="smallest n is 10**min_exp")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'orders':>10} {'uniform ms':>11} {'pay_as_bid ms':>14} {'argsort ms':>11} "
          f"{'uniform/argsort':>16} {'pab/argsort':>12} {'volume kWh':>14}")
    for exp in range(args.min_exp, args.max_exp + 1):
        n = 10**exp
        orders = make_orders(n, args.seed)
        volume = clear_uniform(orders).volume
        t_uni, t_pab, t_sort = best_of([lambda o=orders: clear_uniform(o),
                                        lambda o=orders: clear_pay_as_bid(o),
                                        lambda o=orders: np.argsort(o.price)], args.repeat)
        rows.append({"n": float(n), "uniform_s": t_uni, "pay_as_bid_s": t_pab,
                     "argsort_s": t_sort})
        print(f"{n:>10} {t_uni * 1e3:>11.2f} {t_pab * 1e3:>14.2f} {t_sort * 1e3:>11.2f} "
              f"{t_uni / t_sort:>16.2f} {t_pab / t_sort:>12.2f} {volume:>14.1f}")
        del orders
    return rows


if __name__ == "__main__":
    main()
