"""Settled trades per second through the Vyper escrow on the in-process EVM.

Each market interval: every buyer locks its trades of the interval in one
``deposit_batch`` transaction, the oracle settles all the interval's trades
against metered delivery in ONE netted ``release_batch`` transaction, and every
account with credit withdraws once. Trades pair random buyers (accounts 1-4) with
random sellers (accounts 5-9); delivery is 60-100 % of the contracted energy.

Timed (best of ``--repeat`` intervals, wall clock, py-evm through web3):
``settle`` = the one settlement transaction; ``cycle`` = deposits + settlement +
withdrawals of the interval. Compilation and deployment are not timed.

Run: ``python benchmarks/bench_chain.py [--sizes 50 500] [--repeat 3] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from transactive.settlement.chain import EscrowChain


def run_interval(
    chain: EscrowChain, first_id: int, n_trades: int, rng: np.random.Generator
) -> tuple[float, float, int]:
    """One interval; returns (settle seconds, cycle seconds, settlement gas)."""
    accounts = chain.accounts
    buyers = rng.integers(1, 5, n_trades)
    sellers = rng.integers(5, 10, n_trades)
    energy_wh = rng.integers(100, 5000, n_trades)
    amount_wei = energy_wh * rng.integers(20_000, 40_000, n_trades)  # a price per Wh
    delivered_wh = (energy_wh * rng.uniform(0.6, 1.0, n_trades)).astype(np.int64)
    ids = np.arange(first_id, first_id + n_trades)
    deadline = chain.now() + 3600

    start = time.perf_counter()
    for b in np.unique(buyers):
        mine = buyers == b
        chain.deposit_batch(
            ids[mine], buyer=accounts[b], sellers=[accounts[s] for s in sellers[mine]],
            energies_wh=energy_wh[mine], amounts_wei=amount_wei[mine], deadline=deadline,
        )
    settle_start = time.perf_counter()
    receipt = chain.settle_interval(ids, delivered_wh)
    settle_end = time.perf_counter()
    paid = [a for a, owed in zip(accounts, chain.balances(accounts), strict=True) if owed > 0]
    for account in paid:
        chain.withdraw(account)
    end = time.perf_counter()
    return settle_end - settle_start, end - start, receipt.gas_used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    chain = EscrowChain.in_process()
    chain.deploy(chain.accounts[0])
    rows = []
    next_id = 1
    for n in args.sizes:
        runs = []
        for _ in range(args.repeat):
            runs.append(run_interval(chain, next_id, n, rng))
            next_id += n
        settle_s = min(r[0] for r in runs)
        cycle_s = min(r[1] for r in runs)
        gas = runs[-1][2]
        rows.append((n, gas / n, settle_s, n / settle_s, cycle_s, n / cycle_s))
    totals = chain.totals()
    assert totals.balance_wei == totals.locked_wei + totals.credits_wei == 0

    print("escrow on in-process EVM (py-evm), one netted settlement transaction per interval")
    head = ("trades/interval", "gas/trade", "settle s", "settled tx/s", "cycle s", "cycle tx/s")
    print("".join(f"{h:>16}" for h in head))
    for n, gas_per, s, s_rate, c, c_rate in rows:
        print(f"{n:>16d}{gas_per:>16,.0f}{s:>16.3f}{s_rate:>16,.0f}{c:>16.3f}{c_rate:>16,.0f}")


if __name__ == "__main__":
    main()
