"""A long run's reconciliation reads the movement of its transfers from the
ledger as it goes (every READ_EVERY of them): the same tables and problems as
reading them all at its end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transactive.settlement import Journal, Ledger, Settlement, SettlementConfig
from transactive.settlement import settle as settle_module
from transactive.settlement.amounts import block_amounts


def _settle(path: Path, *, concurrent: bool) -> Settlement:
    """Six days of five participants (the last one a pool present in odd
    intervals), settled by day."""
    rng = np.random.default_rng(3)
    s = Settlement(Ledger(path / "l.sqlite"), Journal(path / "j.jsonl"),
                   config=SettlementConfig(granularity="day", periods_per_day=4),
                   statements=path / "statements.parquet", concurrent=concurrent)
    labels = np.array(["a", "b", "c", "d", "pool"])
    for day in range(6):
        metered = rng.normal(0, 0.4, (4, 5))
        market = rng.uniform(-0.2, 0.2, (4, 5))
        present = np.ones((4, 5), dtype=bool)
        present[::2, 4] = False
        metered[~present], market[~present] = 0.0, 0.0
        market[:, 3] = -market[:, [0, 1, 2, 4]].sum(axis=1)
        payment = market * 0.15
        block = block_amounts(4 * day, metered, market, payment, retail_price_per_kwh=0.3,
                              feed_in_price_per_kwh=0.05, grid_fee_per_kwh=0.02,
                              carbon_cost=np.where(present, 0.01, 0.0), present=present)
        s.settle_block(labels, block)
    return s


@pytest.mark.parametrize("concurrent", [False, True])
def test_reading_the_ledger_as_it_goes_reconciles_the_same(tmp_path: Path, concurrent: bool,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    whole = _settle(tmp_path / "whole", concurrent=concurrent)
    monkeypatch.setattr(settle_module, "READ_EVERY", 7)
    going = _settle(tmp_path / "going", concurrent=concurrent)
    going.wait()
    assert going.tally.unread < 7 < going.tally.transfers  # read as it went
    bills = {p: 0.0 for p in "abcd"}  # wrong bills: problems to compare
    for s in (whole, going):
        s.close()
    a, b = whole.reconciliation(bills), going.reconciliation(bills)
    assert whole.reconciliation().is_ok
    assert going.reconciliation().is_ok  # again: nothing read twice
    assert a.problems == b.problems
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.residuals, b.residuals)
    assert whole.tally.transfers == going.tally.transfers == going.ledger.n_transfers
    assert going.tally.unread == 0
    for s in (whole, going):
        assert s.journal is not None
        s.journal.close()
        s.ledger.close()
