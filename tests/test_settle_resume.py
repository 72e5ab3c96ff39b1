"""A settlement service restarted in the middle of a run continues the
participants' running totals (``Settlement(..., totals=...)``): re-settling an
interval already in the ledger then posts the same transfers, and the ledger
ends exactly as an uninterrupted run's. Without the totals the restarted
service rounds differently and the ledger refuses the interval."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pytest

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    IntervalPrices,
    Journal,
    Ledger,
    RunningTotals,
    Settlement,
    SettlementError,
    compute_lines,
)
from transactive.settlement.rules import EXACT_COLUMNS, ROUNDED

LABELS = np.array(["a", "b", "c", "d"])
PRICES = IntervalPrices(0.2875, 0.0613, 0.0119, 0.0371)
N_INTERVALS, RESTART_AT = 6, 3


def _inputs(k: int) -> tuple[Clearing, np.ndarray, np.ndarray]:
    """Interval ``k``: a balanced market with odd prices, meters and plans."""
    rng = np.random.default_rng([7, k])
    side = np.array([1, -1, 1, -1])
    kwh = rng.uniform(0.1, 2.0, 4).round(3)
    kwh[side < 0] *= kwh[side > 0].sum() / kwh[side < 0].sum()
    ob = OrderBatch(id=np.arange(4), participant=LABELS, side=side,
                    price=np.full(4, 0.2), quantity=kwh)
    price = float(rng.uniform(0.1, 0.3))
    clearing = Clearing.from_allocation("uniform", ob, kwh, np.full(4, price), price)
    metered = rng.uniform(-2, 2, 4).round(4)
    return clearing, metered, metered + rng.normal(0, 0.1, 4).round(4)


def _settle(s: Settlement, k: int) -> None:
    clearing, metered, planned = _inputs(k)
    s.settle_interval(k, clearing, LABELS, metered, planned_kwh=planned,
                      retail_price_per_kwh=PRICES.retail_price_per_kwh,
                      feed_in_price_per_kwh=PRICES.feed_in_price_per_kwh,
                      grid_fee_per_kwh=PRICES.grid_fee_per_kwh,
                      imbalance_penalty_per_kwh=PRICES.imbalance_penalty_per_kwh)


def _totals_before(k: int) -> RunningTotals:
    """The running totals before interval ``k``, rebuilt from the inputs alone."""
    totals = RunningTotals()
    for j in range(k):
        clearing, metered, planned = _inputs(j)
        totals = totals.advance(compute_lines(j, clearing, LABELS, metered, PRICES,
                                              planned_kwh=planned, totals=totals))
    return totals


def _interrupted_run(root: Path) -> None:
    """Intervals 0 .. RESTART_AT committed by a first service."""
    with Journal(root / JOURNAL_FILE) as journal, Ledger(root / LEDGER_FILE) as ledger:
        first = Settlement(ledger, journal)
        for k in range(RESTART_AT + 1):
            _settle(first, k)


def test_a_restarted_service_continuing_the_totals_ends_as_an_uninterrupted_run(
        tmp_path: Path) -> None:
    whole = Settlement(Ledger(":memory:"))
    for k in range(N_INTERVALS):
        _settle(whole, k)
    _interrupted_run(tmp_path)
    with Journal(tmp_path / JOURNAL_FILE) as journal, \
            Ledger(tmp_path / LEDGER_FILE) as ledger:
        resumed = Settlement(ledger, journal, totals=_totals_before(RESTART_AT))
        for k in range(RESTART_AT, N_INTERVALS):   # RESTART_AT is already in the ledger
            _settle(resumed, k)
        again = resumed.settled[0].report
        assert again is not None
        assert {r.status.value for r in again.results} == {"exists"}
        assert any(t.code == "rounding" for s in resumed.settled for t in s.transfers)
        assert list(ledger.transfers()) == list(whole.ledger.transfers())
        assert ledger.state_hash() == whole.ledger.state_hash()
        recon = resumed.reconciliation()
    assert recon.is_ok, recon.problems
    # each participant's posted total of a line minus its exact total, over the whole
    # run, from the uninterrupted run's statements in decimal arithmetic
    rows = whole.statements()
    for name, exact_col in zip(ROUNDED, EXACT_COLUMNS, strict=True):
        for p, part in rows.groupby("participant"):
            exact = sum(Decimal(repr(v)) for v in part[exact_col])
            assert int(part[name].sum()) == int(exact.quantize(Decimal(1), ROUND_HALF_EVEN))
            assert recon.residuals.loc[p, name] == pytest.approx(
                float(int(part[name].sum()) - exact), abs=1e-9)


def test_a_restarted_service_without_the_totals_is_refused_and_changes_nothing(
        tmp_path: Path) -> None:
    _interrupted_run(tmp_path)
    with Journal(tmp_path / JOURNAL_FILE) as journal, \
            Ledger(tmp_path / LEDGER_FILE) as ledger:
        before = ledger.state_hash()
        fresh = Settlement(ledger, journal)
        with pytest.raises(SettlementError, match="exists with different fields"):
            _settle(fresh, RESTART_AT)
        assert ledger.state_hash() == before


def test_bad_totals_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with Ledger(tmp_path / LEDGER_FILE) as ledger:
        with pytest.raises(InputError) as wrong_type:
            Settlement(ledger, totals={"a": 0})  # type: ignore[arg-type]
        assert wrong_type.value.field == "totals"
        with pytest.raises(InputError, match="'a' has running totals but no accounts") as no_acc:
            Settlement(ledger, totals=_totals_before(1))
        assert no_acc.value.field == "totals"
        assert ledger.accounts() == []
