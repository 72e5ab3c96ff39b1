"""Speed of every registered mechanism on 10^5 orders, beside ``uniform``, and
of VCG with 10^4 participants.

The double-auction batch: ``n`` orders, half buys (0.05-0.40 per kWh) and
half sells (0-0.35), whole-kWh quantities 1-10 (so ``mcafee`` can take it),
every order its own participant; seeded. ``vickrey`` gets ``n - 1`` unit bids
and one seller offering ``n / 10`` units; ``amm`` runs the batch in time
order through constant product and StableSwap pools holding 10^5 kWh;
``muda`` gets a fixed generator (seeded apart from the batch). A mechanism
that needs other options (e.g. a network) is listed as skipped. Each time is
the best of ``--repeat`` runs (the whole call, ``Clearing`` included;
building the batch is not timed).

Targets: every mechanism clears 10^5 orders (the AMM is sequential by nature,
one swap after another); VCG clears 10^4 participants with 3 steps each
within a minute (its "without participant i" welfares are computed for all
participants at once from prefix sums, not re-solved one by one).

Run: ``python benchmarks/bench_mechanisms.py [--orders 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

import transactive as te
from _timing import best_of
from transactive.markets.amm import Pool
from transactive.markets.registry import get
from transactive.orders import OrderBatch


def double_auction(n: int, seed: int) -> OrderBatch:
    rng = np.random.default_rng(seed)
    is_buy = rng.random(n) < 0.5
    price = np.where(is_buy, rng.uniform(0.05, 0.40, n), rng.uniform(0.0, 0.35, n))
    return OrderBatch(id=np.arange(n), participant=np.arange(n), side=np.where(is_buy, 1, -1),
                      price=price, quantity=rng.integers(1, 11, n))


def single_lot(n: int, seed: int) -> OrderBatch:
    rng = np.random.default_rng(seed)
    price = np.r_[rng.uniform(0.05, 0.40, n - 1), 0.10]
    quantity = np.r_[np.ones(n - 1), max(n // 10, 1)]
    return OrderBatch(id=np.arange(n), participant=np.arange(n),
                      side=np.r_[np.ones(n - 1), -1.0], price=price, quantity=quantity)


def step_curves(participants: int, steps: int, seed: int) -> OrderBatch:
    """``participants`` traders (half buyers), each with ``steps`` steps."""
    rng = np.random.default_rng(seed)
    n = participants * steps
    owner = np.repeat(np.arange(participants), steps)
    side = np.where(owner < participants // 2, 1, -1)
    price = np.where(side > 0, rng.uniform(0.05, 0.40, n), rng.uniform(0.0, 0.35, n))
    return OrderBatch(id=np.arange(n), participant=owner, side=side, price=price,
                      quantity=rng.uniform(0.1, 3.0, n))


def needs_options(name: str) -> list[str]:
    """Required options of a mechanism (keyword-only, no default)."""
    params = inspect.signature(get(name)).parameters.values()
    return [p.name for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty]


def cases(n: int, seed: int) -> list[tuple[str, OrderBatch, dict[str, Any]]]:
    """(label, batch, options) for every registered mechanism it can run."""
    double, lot = double_auction(n, seed), single_lot(n, seed)
    out: list[tuple[str, OrderBatch, dict[str, Any]]] = []
    for name in te.mechanisms():
        if name not in ("amm", "muda") and needs_options(name):
            print(f"skipped {name}: needs {', '.join(needs_options(name))}")
        elif name == "vickrey":
            out.append((name, lot, {}))
        elif name == "muda":
            out.append((name, double, {"rng": None}))  # a fresh generator per run
        elif name == "amm":
            for invariant in ("constant_product", "stableswap"):
                pool = Pool.create(1e5, 2e4, invariant=invariant, fee=0.003)
                out.append((f"amm/{invariant}", double, {"pool": pool}))
        else:
            out.append((name, double, {}))
    return out


def _best(fn: Callable[[], object], repeat: int) -> float:
    return best_of([fn], repeat)[0]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Print the tables; return the rows (times in seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--vcg-participants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    uniform_s = _best(lambda: te.clear(double_auction(10, 0), "uniform"), 1)  # warm-up
    todo = cases(args.orders, args.seed)
    print(f"{'mechanism':<22} {'orders':>8} {'time ms':>10} {'x uniform':>10} {'volume kWh':>12}")
    for label, orders, options in todo:
        name = label.split("/")[0]
        repeat = 1 if name == "amm" else args.repeat

        def run(name: str = name, orders: OrderBatch = orders,
                options: dict[str, Any] = options) -> te.Clearing:
            if "rng" in options:  # not the batch's own seed: its draws would align
                options = {**options, "rng": np.random.default_rng(args.seed + 1)}
            return te.clear(orders, name, **options)

        seconds = _best(run, repeat)
        if label == "uniform":
            uniform_s = seconds
        rows.append({"mechanism": label, "orders": len(orders), "seconds": seconds,
                     "volume_kwh": run().volume})
    for row in rows:
        print(f"{row['mechanism']:<22} {row['orders']:>8} {row['seconds'] * 1e3:>10.1f} "
              f"{row['seconds'] / uniform_s:>10.1f} {row['volume_kwh']:>12.1f}")

    print(f"\n{'VCG participants':>16} {'steps':>6} {'orders':>8} {'time s':>8} "
          f"{'deficit':>10}  target < 60 s")
    for participants in (args.vcg_participants, 10 * args.vcg_participants):
        orders = step_curves(participants, 3, args.seed)
        seconds = _best(lambda o=orders: te.clear(o, "vcg"), args.repeat)
        deficit = te.clear(orders, "vcg").info["operator_deficit"]
        rows.append({"mechanism": "vcg", "participants": participants, "orders": len(orders),
                     "seconds": seconds})
        print(f"{participants:>16} {3:>6} {len(orders):>8} {seconds:>8.3f} {deficit:>10.3f}")
    return rows


if __name__ == "__main__":
    main()
