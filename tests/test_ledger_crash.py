"""Crash test: a settlement process is SIGKILLed at 100 random points.

A small "zygote" Python process imports transactive once and, for each round,
forks a fresh settlement process that recovers the run folder (journal tail
replayed into the ledger), then settles batches of intervals forever, writing
``B k n`` before each batch and ``A k n`` once its commit has returned. The test
kills it after a random number (0-3) of acknowledged batches plus a random
delay (0-30 ms), so the kill lands anywhere in a batch, then checks the ledger
exactly as the kill left it: the integrity check passes, every acknowledged
interval is complete, and every batch is either wholly in the ledger or wholly
absent. Recovery (reopening journal + ledger: done by the next settlement
process, and by the test itself every tenth round) must then leave a run that
:func:`verify_run` accepts: chain, signatures, debits = credits and the
replayed state hash.

Each participant's lines are rounded by running totals over the run (see
:mod:`transactive.settlement.rules`), so every settlement process continues the
totals of the intervals before the one it starts at, recomputed from the
(deterministic) inputs: without them a restarted process would round an
interval differently from the process that committed it, and the ledger would
refuse the re-settlement. Each interval therefore has one set of transfers,
whichever process settles it, rounding transfers included.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transactive.clearing import Clearing
from transactive.orders import OrderBatch
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    IntervalLines,
    IntervalPrices,
    Journal,
    Ledger,
    RunningTotals,
    Settlement,
    SettlementConfig,
    Transfer,
    compute_lines,
    line_transfers,
    verify_run,
)
from transactive.settlement.operator import operator_key

SEED = 1234
KILLS = 100
PARTICIPANTS = np.array([f"h{i}" for i in range(5)])
VERIFY_EVERY = 10
CONFIG = SettlementConfig(run_id="crash")

ZYGOTE = r"""
import importlib.util, os, sys, traceback
spec = importlib.util.spec_from_file_location("crash_workload", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
os.write(1, b"UP\n")
for line in sys.stdin:
    run_dir, start = line.split()
    mod.totals_before(int(start))  # computed once here, inherited by the fork
    pid = os.fork()
    if pid == 0:
        try:
            mod.settle_forever(run_dir, int(start))
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(1)
    os.write(1, f"PID {pid}\n".encode())
    os.waitpid(pid, 0)
    os.write(1, b"DEAD\n")
"""


# ----------------------------------------------------------------- the workload
def interval_inputs(k: int) -> tuple[Clearing, np.ndarray, np.ndarray, IntervalPrices]:
    """The (deterministic) market and meter data of interval ``k``."""
    rng = np.random.default_rng([SEED, k])
    n = 12
    side = np.where(np.arange(n) % 2 == 0, -1, 1)
    qty = rng.uniform(0.1, 3.0, n).round(3)
    sold, bought = qty[side < 0].sum(), qty[side > 0].sum()
    volume = min(sold, bought)
    accepted = np.where(side < 0, qty * volume / sold, qty * volume / bought)
    ob = OrderBatch(id=np.arange(n), participant=rng.choice(PARTICIPANTS, n), side=side,
                    price=rng.uniform(0.05, 0.4, n).round(4), quantity=qty)
    price = round(float(rng.uniform(0.1, 0.3)), 4)
    clearing = Clearing.from_allocation("uniform", ob, accepted, np.full(n, price), price)
    metered = rng.uniform(-3, 3, PARTICIPANTS.size).round(3)
    planned = metered + rng.normal(0, 0.2, PARTICIPANTS.size).round(3)
    return clearing, metered, planned, IntervalPrices(0.3, 0.06, 0.01, 0.05)


_TOTALS: list[RunningTotals] = [RunningTotals()]   # [k]: the running totals before interval k
_LINES: list[IntervalLines] = []                    # [k]: the lines of interval k


def interval_lines(k: int) -> IntervalLines:
    """The lines of interval ``k``, rounded by the totals of intervals 0 .. k-1."""
    while len(_LINES) <= k:
        j = len(_LINES)
        clearing, metered, planned, prices = interval_inputs(j)
        lines = compute_lines(j, clearing, PARTICIPANTS, metered, prices, planned_kwh=planned,
                              totals=_TOTALS[j])
        _LINES.append(lines)
        _TOTALS.append(_TOTALS[j].advance(lines))
    return _LINES[k]


def totals_before(k: int) -> RunningTotals:
    """The participants' running totals before interval ``k``."""
    if k:
        interval_lines(k - 1)
    return _TOTALS[k]


def batch_size(k: int) -> int:
    return 1 + k % 3


def settle_forever(run_dir: str, start: int) -> None:
    """The settlement process: recover, then settle batch after batch until killed,
    continuing the running totals of the intervals before ``start``."""
    root = Path(run_dir)
    journal = Journal(root / JOURNAL_FILE)
    settlement = Settlement(Ledger(root / LEDGER_FILE), journal, config=CONFIG,
                            totals=totals_before(start), operator=operator_key())
    os.write(1, b"R\n")
    k = start
    while True:
        n = batch_size(k)
        os.write(1, f"B {k} {n}\n".encode())
        with settlement.batch():
            for j in range(k, k + n):
                clearing, metered, planned, p = interval_inputs(j)
                settlement.settle_interval(
                    j, clearing, PARTICIPANTS, metered, planned_kwh=planned,
                    retail_price_per_kwh=p.retail_price_per_kwh,
                    feed_in_price_per_kwh=p.feed_in_price_per_kwh,
                    grid_fee_per_kwh=p.grid_fee_per_kwh,
                    imbalance_penalty_per_kwh=p.imbalance_penalty_per_kwh)
        os.write(1, f"A {k} {n}\n".encode())
        k += n


@functools.cache
def expected_transfers(k: int) -> frozenset[Transfer]:
    """The transfers of interval ``k`` (ids, accounts and amounts), rounding
    transfers included."""
    return frozenset(line_transfers(interval_lines(k), prefix=CONFIG.prefix))


# ----------------------------------------------------------------- the harness
class _Lines:
    """Line reader over a pipe with a timeout."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def next(self, timeout: float = 30.0) -> str:
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                raise TimeoutError("the settlement process went quiet")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the zygote process exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


@pytest.mark.slow
def test_sigkill_at_100_random_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    errors = tmp_path / "zygote.err"
    with errors.open("wb") as err:
        zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, __file__],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    lines = _Lines(zygote.stdout.fileno())
    acked_until = 0                      # intervals [0, acked_until) are acknowledged
    begun: set[tuple[int, int]] = set()
    stats = {"killed mid-batch": 0, "journal ahead of ledger": 0, "torn journal tail": 0,
             "batches acknowledged": 0, "full verifications": 0,
             "committed, not acknowledged": 0}
    try:
        assert lines.next(120) == "UP", errors.read_text()
        for round_no in range(KILLS):
            zygote.stdin.write(f"{tmp_path} {acked_until}\n".encode())
            zygote.stdin.flush()
            pid = int(lines.next().split()[1])
            first = lines.next()
            assert first == "R", f"{first}: {errors.read_text()}"
            # kill after a random number of acknowledged batches plus a random delay
            open_batch = None

            def note(msg: str) -> bool:
                nonlocal open_batch, acked_until
                assert msg != "DEAD", f"the settlement process died: {errors.read_text()}"
                tag, k, n = msg.split()
                if tag == "B":
                    open_batch = (int(k), int(n))
                    begun.add(open_batch)
                    return False
                acked_until = max(acked_until, int(k) + int(n))
                open_batch = None
                stats["batches acknowledged"] += 1
                return True

            wait_for = int(rng.integers(0, 4))
            while wait_for:
                wait_for -= note(lines.next())
            select.select([], [], [], float(rng.uniform(0.0, 0.03)))
            os.kill(pid, signal.SIGKILL)
            while (msg := lines.next()) != "DEAD":
                note(msg)
            stats["killed mid-batch"] += open_batch is not None

            # --- the ledger exactly as the kill left it
            with Ledger(tmp_path / LEDGER_FILE, create=False) as ledger:
                assert ledger.check().is_ok, ledger.check().problems
                present = set(ledger.transfers())
                cursor = ledger.cursor
            for k in range(acked_until):
                assert expected_transfers(k) <= present, \
                    f"acknowledged interval {k} is missing transfers"
            for k, n in begun:
                want = frozenset().union(*(expected_transfers(j) for j in range(k, k + n)))
                got = len(want & present)
                assert got in (0, len(want)), f"batch {k}..{k + n - 1} is half applied"
            if open_batch is not None:
                stats["committed, not acknowledged"] += (
                    expected_transfers(open_batch[0]) <= present)
            journal_bytes = (tmp_path / JOURNAL_FILE).read_bytes()
            stats["torn journal tail"] += not journal_bytes.endswith(b"\n")
            stats["journal ahead of ledger"] += journal_bytes.count(b"\n") > cursor

            # --- every tenth round (and the last) recover here, then verify from scratch;
            # otherwise the next settlement process recovers on its own
            if (round_no + 1) % VERIFY_EVERY == 0:
                with Journal(tmp_path / JOURNAL_FILE) as journal, \
                        Ledger(tmp_path / LEDGER_FILE) as ledger:
                    Settlement(ledger, journal, config=CONFIG, operator=operator_key())
                report = verify_run(tmp_path)
                assert report.is_ok, str(report)
                stats["full verifications"] += 1
    finally:
        zygote.stdin.close()
        zygote.wait(30)
        zygote.stdout.close()
    print(f"\ncrash test: {KILLS} kills, {acked_until} intervals acknowledged, {stats}")
    assert stats["killed mid-batch"] > 0
