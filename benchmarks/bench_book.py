"""Throughput of the continuous double auction order book (events per second).

A realistic mixed stream, seeded: 60% limit orders (a fifth of them priced
through the mid, so they trade), 30% cancels of resting orders, 10% market or
immediate-or-cancel orders. Prices are on a 0.1 ct/kWh grid around
0.25 per kWh, quantities 0.1-10 kWh.

Timed: one ``add``/``cancel`` call per event on a fresh book, best of
``--repeat`` runs, as wall-clock and as this process's CPU time (the latter
is steadier on a shared machine); building the stream is not timed.

Run: ``python benchmarks/bench_book.py [--sizes 100000 1000000] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transactive.markets.book import OrderBook

ADD, CANCEL = 0, 1
TICK = 0.001
MID = 0.25


@dataclass(frozen=True)
class Stream:
    """The events as columns: kind (ADD or CANCEL), order id, side, price (nan:
    market order), quantity and time in force."""

    kind: npt.NDArray[np.int64]
    order_id: npt.NDArray[np.int64]
    side: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    quantity: npt.NDArray[np.float64]
    tif: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.kind)


def make_stream(n: int, seed: int) -> Stream:
    """``n`` valid events: the stream is built by running it, so that each
    cancel picks (uniformly) an order that is resting at that moment."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    is_cancel = (u >= 0.6) & (u < 0.9)
    is_taker = u >= 0.9  # market or ioc
    kind = np.where(is_cancel, CANCEL, ADD).astype(np.int64)
    side = rng.choice(np.array([1, -1]), n)
    offset = 1 + rng.geometric(0.15, n)  # passive: ticks away from the mid
    crossing = (rng.random(n) < 0.2) | is_taker
    ticks = np.where(crossing, side * rng.integers(0, 6, n), -side * offset)
    price = np.round(MID + ticks * TICK, 6)
    price[is_taker & (rng.random(n) < 0.5)] = np.nan  # market orders
    quantity = np.round(np.clip(rng.lognormal(0.5, 0.8, n), 0.1, 10.0), 1)
    tif = np.where(is_taker, "ioc", "gtc")
    order_id = np.arange(n, dtype=np.int64)
    pick = rng.random(n)
    book = OrderBook()
    live: list[int] = []  # resting order ids; position of each in `where`
    where: dict[int, int] = {}

    def drop(oid: int) -> None:
        i = where.pop(oid)
        last = live.pop()
        if last != oid:
            live[i] = last
            where[last] = i

    for i, (k, s, p, q, t) in enumerate(zip(kind.tolist(), side.tolist(), price.tolist(),
                                            quantity.tolist(), tif.tolist(), strict=True)):
        if k == CANCEL and live:
            oid = live[int(pick[i] * len(live))]
            order_id[i] = oid
            book.cancel(oid)
            drop(oid)
            continue
        kind[i] = ADD
        for fill in book.add(i, None, s, q, None if p != p else p, t):
            if book.order(fill.maker_id).status != "open":
                drop(fill.maker_id)
        if book.order(i).status == "open":
            where[i] = len(live)
            live.append(i)
    return Stream(kind, order_id, side, price, quantity, tif)


def run(stream: Stream) -> tuple[float, float, OrderBook]:
    """One method call per event on a fresh book; (wall seconds, CPU seconds, book)."""
    rows = list(zip(stream.kind.tolist(), stream.order_id.tolist(), stream.side.tolist(),
                    stream.price.tolist(), stream.quantity.tolist(), stream.tif.tolist(),
                    strict=True))
    book = OrderBook()
    add, cancel = book.add, book.cancel
    start, cpu = time.perf_counter(), time.process_time()
    for k, oid, s, p, q, t in rows:
        if k == ADD:
            add(oid, None, s, q, None if p != p else p, t)
        else:
            cancel(oid)
    return time.perf_counter() - start, time.process_time() - cpu, book


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    print(f"{'events':>9} {'limit':>8} {'cancel':>8} {'mkt/ioc':>8} {'trades':>8} "
          f"{'resting':>8} {'wall s':>7} {'events/s':>10} {'cpu s':>7} {'events/cpu-s':>12}")
    for n in args.sizes:
        stream = make_stream(n, args.seed)
        takers = int(np.sum(stream.tif == "ioc"))
        cancels = int(np.sum(stream.kind == CANCEL))
        runs = [run(stream) for _ in range(args.repeat)]
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        book = runs[0][2]
        print(f"{n:>9} {n - cancels - takers:>8} {cancels:>8} {takers:>8} "
              f"{len(book.trades()):>8} {len(book):>8} {wall:>7.3f} {n / wall:>10,.0f} "
              f"{cpu:>7.3f} {n / cpu:>12,.0f}")


if __name__ == "__main__":
    main()
