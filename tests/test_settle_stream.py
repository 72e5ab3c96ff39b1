"""Settlement of long runs: a block of intervals rounded in one step (same cents as
interval by interval), statements streamed to disk, reconciliation from running sums."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Journal,
    Ledger,
    Settlement,
    SettlementConfig,
    verify_run,
)
from transactive.settlement.operator import operator_key
from transactive.settlement.rules import (
    IntervalPrices,
    RunningTotals,
    compute_lines,
    exact_amounts,
    post_running,
    round_micro,
    running_lines,
)

LABELS = np.array(["a", "b", "c", "d", "pool"])


def _interval(rng: np.random.Generator, k: int) -> dict[str, object]:
    """Random meters near the rounding edges; a market among a-d; the pool (last
    label) trades in odd intervals only, so it is absent from the others."""
    n = 5 if k % 2 else 4
    # multiples of 1/3 Wh and of 0.05 kWh hit half cents and half Wh often
    metered = np.where(rng.random(n) < 0.5, rng.integers(-9, 9, n) / 3000,
                       rng.normal(0, 0.4, n))
    clearing = None
    if rng.random() < 0.8:
        who = rng.choice(n, size=6)
        side = np.where(np.arange(6) % 2 == 0, 1, -1).astype(np.int8)
        qty = rng.uniform(0.01, 0.3, 6)
        qty[side < 0] *= qty[side > 0].sum() / qty[side < 0].sum()
        price = rng.uniform(0.05, 0.35, 6)
        ob = OrderBatch(id=np.arange(6), participant=LABELS[who], side=side, price=price,
                        quantity=qty)
        clearing = Clearing.from_allocation("uniform", ob, qty, price, float(price.mean()))
    return {"k": k, "rows": np.arange(n), "metered": metered, "clearing": clearing,
            "carbon": rng.uniform(-0.01, 0.02, n),
            "prices": IntervalPrices(0.2875, 0.0613, grid_fee_per_kwh=0.017)}


def _amounts(iv: dict[str, object]):  # type: ignore[no-untyped-def]
    clearing = iv["clearing"]
    at = (None if clearing is None else
          pd.Index(LABELS).get_indexer(clearing.orders.participant))  # type: ignore[attr-defined]
    return exact_amounts(iv["k"], clearing, at, iv["rows"], iv["metered"],  # type: ignore[arg-type]
                         iv["prices"], carbon_cost=iv["carbon"])  # type: ignore[arg-type]


def _one_by_one(s: Settlement, ivs: list[dict[str, object]]) -> None:
    for iv in ivs:
        p: IntervalPrices = iv["prices"]  # type: ignore[assignment]
        s.settle_interval(iv["k"], iv["clearing"], LABELS[iv["rows"]],  # type: ignore[arg-type,index]
                          iv["metered"], retail_price_per_kwh=p.retail_price_per_kwh,  # type: ignore[arg-type]
                          feed_in_price_per_kwh=p.feed_in_price_per_kwh,
                          grid_fee_per_kwh=p.grid_fee_per_kwh, carbon_cost=iv["carbon"])  # type: ignore[arg-type]


def test_post_running_is_each_interval_rounded_on_its_running_total() -> None:
    """By hand: from a start of 0.5 (rounded half to even: 0), amounts 1.4, 1.4,
    -0.8 make running totals 1.9, 3.3, 2.5, rounded 2, 3, 2: posted 2, 1, -1."""
    got = post_running([[500_000]], [[[1_400_000]], [[1_400_000]], [[-800_000]]])
    assert got[:, 0, 0].tolist() == [2, 1, -1]
    # and against the integer rule applied interval by interval, on random data
    rng = np.random.default_rng(7)
    start = rng.integers(-10**9, 10**9, (6, 8))
    exact = rng.integers(-3 * 10**6, 3 * 10**6, (50, 6, 8)) // 500_000 * 500_000
    totals, expected = start.copy(), []
    for k in range(50):
        expected.append(round_micro(totals + exact[k]) - round_micro(totals))
        totals = totals + exact[k]
    np.testing.assert_array_equal(post_running(start, exact), np.stack(expected))


@pytest.mark.parametrize("line_major", [False, True])
def test_post_running_of_empty_and_repeated_lines(line_major: bool) -> None:
    """Lines without amounts post nothing whatever their start; a line equal to
    an earlier one posts the same only if its start is the same too."""
    rng = np.random.default_rng(11)
    start = rng.integers(-10**9, 10**9, (5, 6))
    exact = rng.integers(-3 * 10**6, 3 * 10**6, (30, 5, 6)) // 500_000 * 500_000
    exact[..., 2] = 0
    exact[..., 3] = exact[..., 0]
    start[:, 3] = start[:, 0]  # a twin of line 0
    exact[..., 4] = exact[..., 1]  # the amounts of line 1 from another start
    if line_major:  # each line contiguous, as a day block holds them
        exact = np.moveaxis(np.ascontiguousarray(np.moveaxis(exact, -1, 0)), 0, -1)
    totals, expected = start.copy(), []
    for k in range(30):
        expected.append(round_micro(totals + exact[k]) - round_micro(totals))
        totals = totals + exact[k]
    got = post_running(start, exact)
    np.testing.assert_array_equal(got, np.stack(expected))
    assert not got[..., 2].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_block_rounds_to_the_same_lines_as_interval_by_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ivs = [_interval(rng, k) for k in range(40)]
    totals = RunningTotals()
    reference = []
    for iv in ivs:
        p: IntervalPrices = iv["prices"]  # type: ignore[assignment]
        lines = compute_lines(iv["k"], iv["clearing"], LABELS[iv["rows"]],  # type: ignore[arg-type,index]
                              iv["metered"], p, carbon_cost=iv["carbon"], totals=totals)  # type: ignore[arg-type]
        reference.append(lines)
        totals = totals.advance(lines)
    # two blocks, the second continuing the first's totals
    first, after = running_lines(LABELS, [_amounts(iv) for iv in ivs[:25]], RunningTotals())
    second, end = running_lines(LABELS, [_amounts(iv) for iv in ivs[25:]], after)
    for want, got in zip(reference, first + second, strict=True):
        pd.testing.assert_frame_equal(got.to_frame(), want.to_frame())
        np.testing.assert_array_equal(got.start_micro, want.start_micro)
        np.testing.assert_array_equal(got.due, want.due)
    for name in ("participant", "last_interval", "before", "through"):
        np.testing.assert_array_equal(getattr(end, name), getattr(totals, name))


def test_a_block_refuses_intervals_out_of_order() -> None:
    rng = np.random.default_rng(3)
    amounts = [_amounts(_interval(rng, k)) for k in (4, 2)]
    with pytest.raises(InputError, match="interval"):
        running_lines(LABELS, amounts, RunningTotals())


@pytest.mark.parametrize("granularity", ["interval", "day"])
def test_settle_amounts_posts_what_settle_interval_posts(tmp_path: Path, granularity: str
                                                         ) -> None:
    """Same statements, transfers, journal and ledger state, block or one by one."""
    rng = np.random.default_rng(11)
    ivs = [_interval(rng, k) for k in range(24)]
    config = SettlementConfig(granularity=granularity, periods_per_day=8)  # type: ignore[arg-type]
    runs = {}
    for how in ("one", "block"):
        folder = tmp_path / how
        folder.mkdir()
        with Ledger(folder / LEDGER_FILE) as ledger, Journal(folder / JOURNAL_FILE) as journal:
            s = Settlement(ledger, journal, config=config, operator=operator_key())
            for day in range(3):
                part = ivs[8 * day:8 * day + 8]
                if how == "one":
                    with s.batch():
                        _one_by_one(s, part)
                else:
                    s.settle_amounts(LABELS, [_amounts(iv) for iv in part],
                                     [iv["clearing"] for iv in part])  # type: ignore[misc]
            runs[how] = (s.statements(), list(ledger.transfers()), ledger.state_hash(),
                         s.reconciliation())
        assert verify_run(folder).is_ok
    (st1, tr1, h1, rec1), (st2, tr2, h2, rec2) = runs["one"], runs["block"]
    pd.testing.assert_frame_equal(st1, st2)
    assert tr1 == tr2
    assert h1 == h2
    assert rec1.is_ok
    assert rec2.is_ok
    assert (tmp_path / "one" / JOURNAL_FILE).read_bytes() == \
        (tmp_path / "block" / JOURNAL_FILE).read_bytes()


@pytest.mark.parametrize("name", ["statements.csv", "statements.csv.gz"])
def test_streamed_statements_and_running_reconciliation(tmp_path: Path, name: str) -> None:
    """Streaming keeps no committed interval, writes the rows the kept settlement
    holds, and reconciles to the same tables."""
    rng = np.random.default_rng(5)
    ivs = [_interval(rng, k) for k in range(30)]
    kept = Settlement(Ledger(":memory:"))
    streamed = Settlement(Ledger(":memory:"), statements=tmp_path / name)
    for s in (kept, streamed):
        for day in range(3):
            with s.batch():
                _one_by_one(s, ivs[10 * day:10 * day + 10])
    assert len(kept.settled) == 30
    assert not streamed.settled
    streamed.close()
    if name.endswith(".gz"):
        assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"
        text = gzip.decompress((tmp_path / name).read_bytes()).decode()
    else:
        text = (tmp_path / name).read_text()
    assert text == kept.statements().to_csv(index=False, lineterminator="\n")
    assert kept.reconciliation().is_ok
    assert streamed.reconciliation().is_ok
    bills = {p: 0.0 for p in "abcd"}  # wrong bills: the same problems either way
    a, b = kept.reconciliation(bills), streamed.reconciliation(bills)
    assert a.problems == b.problems
    assert len(a.problems) == 4
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.residuals, b.residuals)
    pd.testing.assert_frame_equal(a.bills, b.bills)  # type: ignore[arg-type]
    # the running residuals are those of the statements' own sums
    frame = kept.statements()
    sums = frame.groupby("participant")[["metered_wh", "metered_exact_wh"]].sum()
    np.testing.assert_allclose(b.residuals["metered_wh"],
                               sums["metered_wh"] - sums["metered_exact_wh"], atol=1e-9)
    assert kept.tally.transfers == streamed.tally.transfers == kept.ledger.n_transfers


def test_running_reconciliation_reads_the_ledger(tmp_path: Path) -> None:
    """A transfer edited in the ledger after the run is found, with streaming too."""
    rng = np.random.default_rng(8)
    ivs = [_interval(rng, k) for k in range(6)]
    with Ledger(tmp_path / LEDGER_FILE) as ledger:
        s = Settlement(ledger, statements=tmp_path / "statements.csv.gz")
        with s.batch():
            _one_by_one(s, ivs)
        s.close()
        assert s.reconciliation().is_ok
        # Ledger.movements against the transfers summed in Python
        frame = ledger.transfers_frame()
        moved, count = ledger.movements([(1, len(frame))])
        expected = (frame.groupby("credit")["amount"].sum()
                    .sub(frame.groupby("debit")["amount"].sum(), fill_value=0))
        assert count == len(frame)
        assert moved == {k: int(v) for k, v in expected.items()}
    db = sqlite3.connect(tmp_path / LEDGER_FILE, isolation_level=None)
    db.executescript("DROP TRIGGER transfers_no_update; UPDATE transfers SET amount = amount + 1 "
                     "WHERE seq = 5")
    db.close()
    with Ledger(tmp_path / LEDGER_FILE) as ledger:
        s.ledger = ledger
        rec = s.reconciliation()
    assert not rec.is_ok
    assert (rec.table["difference"] != 0).sum() == 2


def test_gzip_statements_are_the_same_bytes_every_time(tmp_path: Path) -> None:
    """No file name or time stamp in the gzip header: a run's bytes do not depend
    on when or where it was written."""
    rng = np.random.default_rng(9)
    ivs = [_interval(rng, k) for k in range(4)]
    for name in ("one", "two"):
        s = Settlement(Ledger(":memory:"), statements=tmp_path / name / "statements.csv.gz")
        with s.batch():
            _one_by_one(s, ivs)
        s.close()
    one = (tmp_path / "one" / "statements.csv.gz").read_bytes()
    assert one[4:8] == b"\0\0\0\0"  # MTIME (RFC 1952)
    assert one == (tmp_path / "two" / "statements.csv.gz").read_bytes()
