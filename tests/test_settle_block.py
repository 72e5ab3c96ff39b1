"""Day blocks settled from arrays (Settlement.settle_block): the same exact amounts,
statements, transfers, journal and ledger as interval by interval; statements
in Parquet read back as the CSV's rows."""

from __future__ import annotations

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
    SettlementError,
    verify_run,
)
from transactive.settlement.amounts import block_amounts
from transactive.settlement.operator import operator_key
from transactive.settlement.rules import IntervalPrices, exact_amounts
from transactive.settlement.statements import (
    STATEMENT_COLUMNS,
    SUMMED_COLUMNS,
    StatementWriter,
    iter_statements,
    read_statements,
    statement_totals,
)

LABELS = np.array(["a", "b", "c", "d", "pool"])
RETAIL = np.array([0.2875, 0.31])  # alternating by interval
FEE = 0.017


def _run(seed: int, periods: int) -> dict[str, np.ndarray | list[Clearing | None]]:
    """Arrays of shape (periods, 5): one order per participant in a market among
    them (80 % of the intervals); the pool (last) only in odd intervals; meters
    and carbon near the rounding edges."""
    rng = np.random.default_rng(seed)
    n = LABELS.size
    present = np.ones((periods, n), dtype=bool)
    present[::2, -1] = False
    metered = np.where(rng.random((periods, n)) < 0.5, rng.integers(-9, 9, (periods, n)) / 3000,
                       rng.normal(0, 0.4, (periods, n)))
    carbon = rng.uniform(-0.01, 0.02, (periods, n))
    market = np.zeros((periods, n))
    payment = np.zeros((periods, n))
    clearings: list[Clearing | None] = []
    for k in range(periods):
        rows = np.flatnonzero(present[k])
        if rng.random() < 0.2:
            clearings.append(None)
            continue
        side = np.where(np.arange(rows.size) % 2 == 0, 1, -1).astype(np.int8)
        qty = rng.uniform(0.01, 0.3, rows.size)
        qty[side < 0] *= qty[side > 0].sum() / qty[side < 0].sum()
        price = rng.uniform(0.05, 0.35, rows.size)
        ob = OrderBatch(id=np.arange(rows.size), participant=LABELS[rows], side=side,
                        price=price, quantity=qty)
        c = Clearing.from_allocation("pay_as_bid", ob, qty, price, float(price.mean()))
        market[k, rows] = qty * side
        payment[k, rows] = c.payment
        clearings.append(c)
    metered[~present] = 0.0
    carbon[~present] = 0.0
    return {"present": present, "metered": metered, "carbon": carbon, "market": market,
            "payment": payment, "clearings": clearings}


def _retail(periods: int, first: int = 0) -> np.ndarray:
    return RETAIL[(np.arange(first, first + periods)) % 2]


def _block(run: dict, start: int, stop: int):  # type: ignore[no-untyped-def,type-arg]
    k = slice(start, stop)
    return block_amounts(start, run["metered"][k], run["market"][k], run["payment"][k],
                         retail_price_per_kwh=_retail(stop - start, start),
                         feed_in_price_per_kwh=0.0613, grid_fee_per_kwh=FEE,
                         carbon_cost=run["carbon"][k], present=run["present"][k])


def _one_by_one(s: Settlement, run: dict, start: int, stop: int) -> None:  # type: ignore[type-arg]
    for k in range(start, stop):
        rows = np.flatnonzero(run["present"][k])
        s.settle_interval(k, run["clearings"][k], LABELS[rows], run["metered"][k, rows],
                          retail_price_per_kwh=float(_retail(1, k)[0]),
                          feed_in_price_per_kwh=0.0613, grid_fee_per_kwh=FEE,
                          carbon_cost=run["carbon"][k, rows])


def test_a_block_has_the_exact_amounts_of_its_intervals() -> None:
    run = _run(1, 12)
    block = _block(run, 0, 12)
    for k in range(12):
        rows = np.flatnonzero(run["present"][k])
        c = run["clearings"][k]
        at = None if c is None else pd.Index(LABELS[rows]).get_indexer(c.orders.participant)
        want = exact_amounts(k, c, at, rows, run["metered"][k, rows],
                             IntervalPrices(float(_retail(1, k)[0]), 0.0613, FEE),
                             carbon_cost=run["carbon"][k, rows])
        got = block.interval(k)
        assert got.interval == want.interval
        np.testing.assert_array_equal(got.rows, want.rows)
        np.testing.assert_array_equal(got.exact_micro, want.exact_micro)
        for name in ("utility_price_per_kwh", "imbalance_price_per_kwh", "grid_fee_per_kwh"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


@pytest.mark.parametrize("granularity", ["interval", "day"])
def test_settle_block_posts_what_settle_interval_posts(tmp_path: Path, granularity: str
                                                       ) -> None:
    """Same statements, transfers, journal and ledger state, reconciliation: the
    blocks are a day, a day and a half (two days in one call) and the rest; by
    day, also with each block committed on a thread beside the next
    (``concurrent``)."""
    run = _run(2, 30)
    config = SettlementConfig(granularity=granularity, periods_per_day=8)  # type: ignore[arg-type]
    results = {}
    hows = ("one", "block", "concurrent") if granularity == "day" else ("one", "block")
    for how in hows:
        folder = tmp_path / how
        folder.mkdir()
        with Ledger(folder / LEDGER_FILE) as ledger, Journal(folder / JOURNAL_FILE) as journal:
            s = Settlement(ledger, journal, config=config, concurrent=how == "concurrent",
                           operator=operator_key())
            for start, stop in ((0, 8), (8, 24), (24, 30)):
                if how == "one":
                    with s.batch():
                        _one_by_one(s, run, start, stop)
                else:
                    s.settle_block(LABELS, _block(run, start, stop),
                                   run["clearings"][start:stop])  # type: ignore[arg-type]
            results[how] = (s.statements(), list(ledger.transfers()), ledger.state_hash(),
                            s.reconciliation(), s.tally.intervals)
            s.close()
        assert verify_run(folder).is_ok
    (st1, tr1, h1, rec1, n1), (st2, tr2, h2, rec2, n2) = results["one"], results["block"]
    assert len(st1) == 30 * 5 - 15
    pd.testing.assert_frame_equal(st1, st2)
    assert tr1 == tr2
    assert h1 == h2
    assert n1 == n2 == 30
    assert rec1.is_ok
    assert rec2.is_ok, rec2.problems
    pd.testing.assert_frame_equal(rec1.table, rec2.table)
    pd.testing.assert_frame_equal(rec1.residuals, rec2.residuals)
    assert (tmp_path / "one" / JOURNAL_FILE).read_bytes() == \
        (tmp_path / "block" / JOURNAL_FILE).read_bytes()
    if "concurrent" in results:
        st3, tr3, h3, rec3, n3 = results["concurrent"]
        pd.testing.assert_frame_equal(st2, st3)
        assert (tr3, h3, n3) == (tr2, h2, n2)
        pd.testing.assert_frame_equal(rec2.table, rec3.table)
        assert (tmp_path / "concurrent" / JOURNAL_FILE).read_bytes() == \
            (tmp_path / "block" / JOURNAL_FILE).read_bytes()


def test_streamed_parquet_reads_back_as_the_kept_statements(tmp_path: Path) -> None:
    run = _run(3, 24)
    config = SettlementConfig(granularity="day", periods_per_day=8)
    kept = Settlement(Ledger(":memory:"), config=config)
    streamed = Settlement(Ledger(":memory:"), config=config,
                          statements=tmp_path / "statements.parquet")
    csv = Settlement(Ledger(":memory:"), config=config, statements=tmp_path / "statements.csv")
    for s in (kept, streamed):
        for day in range(3):
            s.settle_block(LABELS, _block(run, 8 * day, 8 * day + 8))
    for day in range(3):
        with csv.batch():
            _one_by_one(csv, run, 8 * day, 8 * day + 8)
    for s in (streamed, csv):
        s.close()
    frame = kept.statements()
    assert list(frame.columns) == list(STATEMENT_COLUMNS)
    pd.testing.assert_frame_equal(read_statements(tmp_path / "statements.parquet"), frame)
    # the CSV of the same rows, read back exactly
    pd.testing.assert_frame_equal(read_statements(tmp_path / "statements.csv"), frame)
    assert streamed.reconciliation().is_ok
    pd.testing.assert_frame_equal(streamed.reconciliation().table, csv.reconciliation().table)
    # one frame per day, columns as asked
    parts = list(iter_statements(tmp_path / "statements.parquet",
                                 ["participant", "total_cents", "planned_exact_wh"]))
    assert [len(p) for p in parts] == [8 * 5 - 4] * 3
    pd.testing.assert_frame_equal(
        pd.concat(parts, ignore_index=True),
        frame[["participant", "total_cents", "planned_exact_wh"]])
    with pytest.raises(InputError, match="no statement column"):
        read_statements(tmp_path / "statements.parquet", ["bill"])
    # each participant's sums, from either form
    want = frame.groupby("participant", sort=False)[list(SUMMED_COLUMNS)].sum()
    for name in ("statements.parquet", "statements.csv"):
        pd.testing.assert_frame_equal(statement_totals(tmp_path / name), want)
    with pytest.raises(InputError, match="summed"):
        statement_totals(tmp_path / "statements.parquet", ["utility_price_per_kwh"])
    # each column alone (read from only the stored columns it needs)
    for name in STATEMENT_COLUMNS:
        pd.testing.assert_frame_equal(read_statements(tmp_path / "statements.parquet", [name]),
                                      frame[[name]])


def test_parquet_keeps_planned_and_locational_grid_fees(tmp_path: Path) -> None:
    """A plan off the meter (imbalance) and a locational grid fee (energy sold
    counts) survive the Parquet form."""
    config = SettlementConfig(granularity="day", periods_per_day=2, grid_fee="locational")
    s = Settlement(Ledger(":memory:"), config=config, statements=tmp_path / "s.parquet")
    market = np.array([[0.4, -0.4], [-0.2, 0.2]])
    b = block_amounts(0, [[0.5, -0.3], [-0.1, 0.3]], market, market * 0.2,
                      retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05,
                      grid_fee_per_kwh=[[0.01, -0.01], [-0.02, 0.02]],
                      planned_kwh=[[0.4, -0.4], [-0.2, 0.2]], imbalance_penalty_per_kwh=0.02,
                      grid_fee="locational")
    s.settle_block(["a", "b"], b)
    s.close()
    frame = read_statements(tmp_path / "s.parquet")
    assert frame["grid_fee_wh"].tolist() == [400, -400, -200, 200]
    assert frame["imbalance_wh"].tolist() == [100, 100, 100, 100]
    assert frame["planned_exact_wh"].tolist() == [400.0, -400.0, -200.0, 200.0]
    assert (frame["imbalance_price_per_kwh"] == [0.32, 0.32, 0.32, 0.32]).all()
    assert s.reconciliation().is_ok


def test_settle_block_refuses_a_day_twice_a_batch_and_bad_labels() -> None:
    run = _run(4, 16)
    s = Settlement(Ledger(":memory:"), config=SettlementConfig(granularity="day",
                                                               periods_per_day=8))
    s.settle_block(LABELS, _block(run, 0, 4))  # the first half of day 0
    n = s.ledger.n_transfers
    with pytest.raises(SettlementError, match="day 0"):
        s.settle_block(LABELS, _block(run, 4, 8))
    with pytest.raises(SettlementError, match="outside"), s.batch():
        s.settle_block(LABELS, _block(run, 8, 16))
    with pytest.raises(InputError, match="participants"):
        s.settle_block(LABELS[:4], _block(run, 8, 16))
    assert s.ledger.n_transfers == n
    s.settle_block(LABELS, _block(run, 8, 16))  # nothing of the refused calls stuck
    assert s.reconciliation().is_ok


@pytest.mark.parametrize(("kwargs", "field", "match"), [
    ({"market_kwh": [[1.0, 0.0]]}, "market_kwh", "interval 3: energy bought and sold"),
    ({"present": [[True, False]]}, "present", "absent"),
    ({"metered_kwh": [0.1, 0.2]}, "metered_kwh", "2-d"),
    ({"retail_price_per_kwh": [0.1, 0.2, 0.3]}, "retail_price_per_kwh", "one per interval"),
    ({"carbon_cost": [[np.nan, 0.0]]}, "carbon_cost", "finite"),
])
def test_block_amounts_names_the_bad_input(kwargs: dict[str, object], field: str,
                                           match: str) -> None:
    args: dict[str, object] = {"metered_kwh": [[0.1, -0.1]], "market_kwh": [[0.1, -0.1]],
                               "payment": [[0.02, -0.02]], "retail_price_per_kwh": 0.3,
                               "feed_in_price_per_kwh": 0.05}
    with pytest.raises(InputError, match=match) as err:
        block_amounts(3, **{**args, **kwargs})  # type: ignore[arg-type]
    assert err.value.field == field


def test_statement_files_name_their_form(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.parquet"):
        StatementWriter(tmp_path / "statements.txt")
    (tmp_path / "other.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="not settled"):
        read_statements(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_statements(tmp_path / "missing.csv")
    # an empty Parquet file still has the schema, and reads as no rows
    StatementWriter(tmp_path / "empty.parquet").close()
    assert read_statements(tmp_path / "empty.parquet").empty


def test_a_concurrent_commit_that_fails_raises_at_the_next_wait(tmp_path: Path) -> None:
    """A day block committed on the commit thread raises what its commit raised
    when the settlement next waits: the next block, a reader, or close."""
    run = _run(2, 24)
    config = SettlementConfig(granularity="day", periods_per_day=8)
    with Ledger(tmp_path / LEDGER_FILE) as ledger, Journal(tmp_path / JOURNAL_FILE) as journal:
        s = Settlement(ledger, journal, config=config, concurrent=True)
        s.settle_block(LABELS, _block(run, 0, 8))
        s.wait()
        assert s.tally.intervals == 8

        def refuse(pending: object) -> None:
            raise SettlementError("the ledger refused the day")

        s._commit = refuse  # type: ignore[method-assign]
        s.settle_block(LABELS, _block(run, 8, 16))  # handed to the commit thread
        with pytest.raises(SettlementError, match="refused the day"):
            s.settle_block(LABELS, _block(run, 16, 24))
        assert s.tally.intervals == 8  # nothing of the refused day was booked
        s.close()
