"""Settlement rules and the Settlement service: worked examples, invariants,
exact rounding, shadow settlement from the statement CSV, reconciliation and
verification of a run folder."""

from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Account,
    AccountKind,
    IntervalPrices,
    Journal,
    Ledger,
    Settlement,
    SettlementConfig,
    SettlementError,
    Status,
    Transfer,
    Unit,
    compute_lines,
    line_transfers,
    verify_run,
)
from transactive.settlement.operator import operator_key
from transactive.settlement.rules import EXACT_COLUMNS, check_interval

PRICES = IntervalPrices(retail_price_per_kwh=0.30, feed_in_price_per_kwh=0.05,
                        grid_fee_per_kwh=0.02, imbalance_penalty_per_kwh=0.10)


def _worked_clearing() -> Clearing:
    ob = OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "c", "d"],
                    side=["buy", "buy", "sell", "sell"], price=[0.30, 0.25, 0.10, 0.12],
                    quantity=[3.0, 1.0, 2.5, 2.0])
    return Clearing.from_allocation("uniform", ob, [3.0, 1.0, 2.5, 1.5], [0.2] * 4, 0.2)


def test_worked_example_by_hand() -> None:
    """Four participants, one uniform-price clearing at 0.20/kWh; every line by hand.

    market: a buys 3, b buys 1, c sells 2.5, d sells 1.5 kWh -> 60, 20, -50, -30 cents.
    planned: a 3.0, b 1.0, c -2.5, d -2.0 -> d sells the unmatched 0.5 kWh to the
    utility at 0.05: -2.5 cents -> -2 (half to even).
    metered: a 3.2 (short 0.2 at 0.30+0.10: 8), b 0.5 (long 0.5 at 0.05-0.10:
    pays 2.5 -> 2), c -2.5 (on plan), d -1.0 (short 1.0 at 0.40: 40).
    grid fee 0.02/kWh bought: a 6, b 2.
    """
    lines = compute_lines(0, _worked_clearing(), ["a", "b", "c", "d"], [3.2, 0.5, -2.5, -1.0],
                          PRICES, planned_kwh=[3.0, 1.0, -2.5, -2.0])
    assert lines.market_wh.tolist() == [3000, 1000, -2500, -1500]
    assert lines.market_cents.tolist() == [60, 20, -50, -30]
    assert lines.utility_wh.tolist() == [0, 0, 0, -500]
    assert lines.utility_cents.tolist() == [0, 0, 0, -2]
    assert lines.imbalance_wh.tolist() == [200, -500, 0, 1000]
    assert lines.imbalance_price_per_kwh.tolist() == pytest.approx([0.4, -0.05, -0.05, 0.4])
    assert lines.imbalance_cents.tolist() == [8, 2, 0, 40]
    assert lines.grid_fee_cents.tolist() == [6, 2, 0, 0]
    assert lines.total_cents.tolist() == [74, 24, -50, 8]

    s = Settlement(Ledger(":memory:"))
    s.settle_interval(0, _worked_clearing(), ["a", "b", "c", "d"], [3.2, 0.5, -2.5, -1.0],
                      planned_kwh=[3.0, 1.0, -2.5, -2.0], retail_price_per_kwh=0.30,
                      feed_in_price_per_kwh=0.05, grid_fee_per_kwh=0.02,
                      imbalance_penalty_per_kwh=0.10)
    bal = s.ledger.balances()
    assert [bal[f"participant:{p}:money"] for p in "abcd"] == [-74, -24, 50, -8]
    assert [bal[f"participant:{p}:energy"] for p in "abcd"] == [3200, 500, -2500, -1000]
    assert bal["market:money"] == 0
    assert bal["market:energy"] == 0
    assert bal["utility:money"] == 48
    assert bal["utility:energy"] == -200
    assert bal["grid:money"] == 8
    assert bal["carbon:money"] == 0
    assert s.reconciliation().is_ok


def test_prices_may_differ_per_participant() -> None:
    """Per-participant tariffs: c imports 1 kWh at 0.40, d at 0.25; a and b stay on plan."""
    lines = compute_lines(0, _worked_clearing(), list("abcd"), [3.0, 1.0, -1.5, -0.5],
                          IntervalPrices([0.3, 0.3, 0.40, 0.25], 0.05))
    assert lines.utility_wh.tolist() == [0, 0, 1000, 1000]
    assert lines.utility_price_per_kwh.tolist() == [0.05, 0.05, 0.40, 0.25]
    assert lines.utility_cents.tolist() == [0, 0, 40, 25]
    with pytest.raises(InputError, match="one price per participant"):
        compute_lines(0, _worked_clearing(), list("abcd"), [0.0] * 4,
                      IntervalPrices([0.3, 0.3], 0.05))
    with pytest.raises(InputError, match="must be finite") as err:
        IntervalPrices([0.3, np.inf], 0.05)
    assert err.value.row == 1


def test_locational_grid_fee_is_the_bus_pair_price_difference() -> None:
    """A seller at bus 0 (0.10/kWh) sells 2 kWh to a buyer at bus 1 (0.30/kWh) at a
    system price of 0.20: together they pay (0.30 - 0.10) * 2 = 40 cents."""
    ob = OrderBatch(id=[1, 2], participant=["s", "b"], side=["sell", "buy"],
                    price=[0.05, 0.5], quantity=[2.0, 2.0], node=[0, 1])
    c = Clearing.from_allocation("uniform", ob, [2.0, 2.0], [0.2, 0.2], 0.2,
                                 node_price=[0.10, 0.30])
    lines = compute_lines(0, c, ["s", "b", "idle"], [-2.0, 2.0, 1.0], PRICES,
                          grid_fee="locational")
    assert lines.grid_fee_per_kwh.tolist() == pytest.approx([-0.10, 0.10, 0.0])
    assert lines.grid_fee_cents.tolist() == [20, 20, 0]
    with pytest.raises(InputError, match="node prices"):
        compute_lines(0, _worked_clearing(), list("abcd"), [0.0] * 4, PRICES,
                      grid_fee="locational")


def test_budget_imbalance_stays_with_the_market_operator() -> None:
    """Pay-as-bid: buyers pay their bids, sellers get their asks; the spread is
    the operator's surplus, rounded once; each participant's line is rounded on
    its own and the rounding account makes up the difference."""
    ob = OrderBatch(id=[1, 2, 3], participant=["x", "y", "z"], side=["buy", "sell", "sell"],
                    price=[0.333, 0.1, 0.111], quantity=[1.0, 0.5, 0.5])
    pay = [0.333, -0.05, -0.0555]
    c = Clearing.from_allocation("pay_as_bid", ob, [1.0, 0.5, 0.5], [0.333, 0.1, 0.111], 0.2,
                                 payment=pay)
    lines = compute_lines(0, c, ["x", "y", "z"], [1.0, -0.5, -0.5], PRICES)
    assert lines.market_cents.tolist() == [33, -5, -6]    # 33.3, -5, -5.55: total 22.75 -> 23
    s = Settlement(Ledger(":memory:"))
    s.settle_interval(0, c, ["x", "y", "z"], [1.0, -0.5, -0.5], retail_price_per_kwh=0.3,
                      feed_in_price_per_kwh=0.05)
    assert s.ledger.balance("market:money") == 23
    assert s.ledger.balance("rounding:money") == -1       # participants paid 22 in all


# ----------------------------------------------------------------- invariants
def _random_clearing(rng: np.random.Generator, participants: list[str], n: int,
                     pay_as_bid: bool = False) -> Clearing:
    side = rng.choice([-1, 1], n)
    side[0], side[1] = -1, 1
    qty = rng.uniform(0.001, 5.0, n).round(3)
    price = rng.uniform(0.01, 0.5, n).round(4)
    sold, bought = qty[side < 0].sum(), qty[side > 0].sum()
    volume = rng.uniform(0.2, 1.0) * min(sold, bought)
    accepted = np.where(side < 0, qty * volume / sold, qty * volume / bought)
    ob = OrderBatch(id=np.arange(n), participant=rng.choice(participants, n), side=side,
                    price=price, quantity=qty)
    p = float(rng.uniform(0.05, 0.4))
    if pay_as_bid:
        return Clearing.from_allocation("pay_as_bid", ob, accepted, price, p)
    return Clearing.from_allocation("uniform", ob, accepted, np.full(n, p), p)


@given(seed=st.integers(0, 2**32 - 1), n_participants=st.integers(2, 12),
       n_orders=st.integers(2, 40), pay_as_bid=st.booleans())
@settings(max_examples=80, deadline=None)
def test_every_interval_keeps_its_invariants(seed: int, n_participants: int, n_orders: int,
                                             pay_as_bid: bool) -> None:
    rng = np.random.default_rng(seed)
    names = [f"h{i}" for i in range(n_participants)]
    c = _random_clearing(rng, names, n_orders, pay_as_bid)
    metered = rng.uniform(-5, 5, n_participants)
    planned = metered + rng.normal(0, 0.5, n_participants)
    prices = IntervalPrices(*rng.uniform(0, 0.5, 2).round(4), grid_fee_per_kwh=0.013,
                            imbalance_penalty_per_kwh=0.07)
    lines = compute_lines(3, c, names, metered, prices, planned_kwh=planned)
    assert np.array_equal(lines.market_wh + lines.utility_wh + lines.imbalance_wh,
                          lines.metered_wh)
    payment = np.array([c.payment[c.orders.participant == p].sum() for p in names])
    assert np.all(np.abs(lines.market_cents - payment * 100) <= 0.5 + 1e-6)
    # the market operator is due the rounded surplus, and no energy
    market_money, market_energy = lines.due[:2].tolist()
    assert market_money == round(Decimal(repr(float(c.payment.sum() * 100))))
    assert market_energy == 0
    transfers = line_transfers(lines)
    check_interval(lines, transfers)                                     # raises if broken
    assert all(t.amount > 0 for t in transfers)
    assert len({t.id for t in transfers}) == len(transfers)


def test_check_interval_catches_a_wrong_transfer() -> None:
    lines = compute_lines(0, _worked_clearing(), list("abcd"), [3, 1, -2.5, -1.5], PRICES)
    transfers = line_transfers(lines)
    first = next(i for i, t in enumerate(transfers) if t.code == "market_energy")
    broken = [t._replace(amount=t.amount + 1) if i == first else t
              for i, t in enumerate(transfers)]
    with pytest.raises(SettlementError, match="energy sold - energy bought = -1 Wh, not 0"):
        check_interval(lines, broken)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"participants": ["a", "b", "c"], "metered": [0.0] * 3}, "participants"),
    ({"participants": ["a", "b", "c", "c"]}, "participants"),
    ({"metered": [1.0, np.nan, 0.0, 0.0]}, "metered_kwh"),
    ({"metered": [1.0, 0.0]}, "metered_kwh"),
    ({"interval": -1}, "interval"),
    ({"prices": "nan"}, "retail_price_per_kwh"),
])
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, Any] = {"interval": 0, "participants": list("abcd"),
                            "metered": [0.0] * 4, "prices": PRICES, **kwargs}

    def run() -> None:
        prices = IntervalPrices(float("nan"), 0.0) if args["prices"] == "nan" else PRICES
        compute_lines(args["interval"], _worked_clearing(), args["participants"],
                      args["metered"], prices)

    with pytest.raises(InputError) as err:
        run()
    assert err.value.field == field


def test_an_unbalanced_clearing_is_refused() -> None:
    ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"], price=[1.0, 0.1],
                    quantity=[2.0, 1.0])
    c = Clearing.from_allocation("broken", ob, [2.0, 1.0], [0.2, 0.2], 0.2)
    with pytest.raises(InputError, match=r"energy bought and sold differ by 1000\.000 Wh"):
        compute_lines(0, c, ["a", "b"], [0.0, 0.0], PRICES)


# ----------------------------------------------------------------- the service
def _run(run_dir: Path, intervals: int, seed: int = 7) -> Settlement:
    rng = np.random.default_rng(seed)
    names = [f"h{i:02d}" for i in range(9)]
    journal = Journal(run_dir / JOURNAL_FILE)
    s = Settlement(Ledger(run_dir / LEDGER_FILE), journal,
                   config=SettlementConfig(run_id="test"), operator=operator_key())
    with s.batch():
        for k in range(intervals):
            metered = rng.uniform(-4, 4, len(names)).round(3)
            s.settle_interval(k, _random_clearing(rng, names, 30, pay_as_bid=k % 2 == 1), names,
                              metered, planned_kwh=metered + rng.normal(0, 0.3, len(names)),
                              retail_price_per_kwh=round(float(rng.uniform(0.2, 0.4)), 4),
                              feed_in_price_per_kwh=round(float(rng.uniform(0.02, 0.1)), 4),
                              grid_fee_per_kwh=0.0125, imbalance_penalty_per_kwh=0.05,
                              carbon_cost=rng.uniform(0, 0.02, len(names)))
    return s


def test_shadow_settlement_from_the_statement_csv_matches_the_ledger(tmp_path: Path) -> None:
    s = _run(tmp_path, intervals=12)
    csv = s.write_statements(tmp_path / "statements.csv")
    s.journal.close()  # type: ignore[union-attr]
    # --- what a participant can do with the CSV alone (exact decimal arithmetic)
    text = pd.read_csv(csv, dtype=str)
    frame = pd.read_csv(csv)
    assert len(frame) == 12 * 9
    for row in text.itertuples():
        # the exact money of a line is its exact energy times its rate (to 1e-6 cent)
        utility_wh = Decimal(row.planned_exact_wh) - Decimal(row.market_exact_wh)
        imbalance_wh = Decimal(row.metered_exact_wh) - Decimal(row.planned_exact_wh)
        fee_wh = max(Decimal(row.market_exact_wh), Decimal(0))
        for wh, rate, cents in ((utility_wh, row.utility_price_per_kwh, row.utility_exact_cents),
                                (imbalance_wh, row.imbalance_price_per_kwh,
                                 row.imbalance_exact_cents),
                                (fee_wh, row.grid_fee_per_kwh, row.grid_fee_exact_cents)):
            assert abs(wh * Decimal(rate) / 10 - Decimal(cents)) <= Decimal("1e-6"), row
        assert int(row.metered_wh) == int(row.market_wh) + int(row.utility_wh) + int(
            row.imbalance_wh)
    # the posted amounts: each participant's running exact total, rounded half to
    # even, less what was posted before (from the participant's own rows only)
    for _, rows in text.groupby("participant"):
        rows = rows.sort_values("interval", key=lambda k: k.astype(int))
        for exact_col in EXACT_COLUMNS:
            line, unit = exact_col.split("_exact_")
            running, posted_before = Decimal(0), 0
            for exact, posted in zip(rows[exact_col], rows[f"{line}_{unit}"], strict=True):
                running += Decimal(exact)
                total = int(running.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
                assert int(posted) == total - posted_before, (exact_col, rows)
                posted_before = total
    energy = ["market_cents", "utility_cents", "imbalance_cents"]
    assert (frame[energy].sum(axis=1) == frame["energy_cents"]).all()
    assert (frame[["energy_cents", "grid_fee_cents", "carbon_cents"]].sum(axis=1)
            == frame["total_cents"]).all()
    # --- the bills recomputed from the CSV equal the ledger
    bills = frame.groupby("participant")[["total_cents", "metered_wh"]].sum()
    with Ledger(tmp_path / LEDGER_FILE, create=False) as ledger:
        for p, row in bills.iterrows():
            assert ledger.balance(f"participant:{p}:money") == -row["total_cents"]
            assert ledger.balance(f"participant:{p}:energy") == row["metered_wh"]
    assert s.reconciliation().is_ok
    s.ledger.close()
    assert verify_run(tmp_path).is_ok


def test_resettling_is_idempotent_and_batches_are_atomic(tmp_path: Path) -> None:
    s = _run(tmp_path, intervals=3)
    before = s.ledger.state_hash()
    again = s.settle_interval(0, _worked_clearing(), list("abcd"), [3, 1, -2.5, -1.5],
                              retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05)
    assert again.report is not None
    assert again.report.count(Status.CREATED) > 0
    hash_one = s.ledger.state_hash()
    repeat = s.settle_interval(0, _worked_clearing(), list("abcd"), [3, 1, -2.5, -1.5],
                               retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05)
    assert repeat.report is not None
    assert {r.status for r in repeat.report.results} == {Status.EXISTS}
    assert s.ledger.state_hash() == hash_one != before
    seq = s.journal.seq  # type: ignore[union-attr]

    def failing_batch() -> None:
        with s.batch():
            s.settle_interval(9, _worked_clearing(), list("abcd"), [3, 1, -2.5, -1.5],
                              retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05)
            raise RuntimeError("engine failed mid-batch")

    with pytest.raises(RuntimeError):
        failing_batch()
    assert s.ledger.state_hash() == hash_one
    assert s.journal.seq == seq
    s.journal.close()  # type: ignore[union-attr]
    s.ledger.close()
    assert verify_run(tmp_path).is_ok


def test_a_refused_interval_raises_and_changes_nothing() -> None:
    ledger = Ledger(":memory:")
    ledger.create_accounts([Account("participant:a:money", AccountKind.PARTICIPANT_MONEY,
                                    Unit.CENT, allow_negative=False),
                            Account("participant:a:energy", AccountKind.PARTICIPANT_ENERGY,
                                    Unit.WH)])
    s = Settlement(ledger)
    with pytest.raises(SettlementError, match="participant:a:money forbids a negative"):
        s.settle_interval(0, _worked_clearing(), list("abcd"), [3, 1, -2.5, -1.5],
                          retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05)
    assert ledger.n_transfers == 0
    assert set(ledger.balances().values()) == {0}


def test_reconciliation_finds_a_ledger_edited_behind_its_back(tmp_path: Path) -> None:
    s = _run(tmp_path, intervals=2)
    s.journal.close()  # type: ignore[union-attr]
    db = sqlite3.connect(tmp_path / LEDGER_FILE, isolation_level=None)
    db.executescript("DROP TRIGGER transfers_no_update; UPDATE transfers SET amount = amount + 1 "
                     "WHERE seq = 3")
    db.close()
    rec = s.reconciliation()
    assert not rec.is_ok
    assert (rec.table["difference"] != 0).sum() == 2
    report = verify_run(tmp_path)
    failed = {c.name for c in report.checks if not c.ok}
    assert failed == {"ledger integrity", "replay"}
    s.ledger.close()


def test_verify_run_sees_a_flipped_journal_byte_and_a_ledger_behind(tmp_path: Path) -> None:
    s = _run(tmp_path, intervals=2)
    journal = s.journal
    assert journal is not None
    # a crash after the journal write, before the ledger commit
    journal.append_transfers([[Transfer("late", "market:money", "grid:money", 5, "x", 2)]])
    journal.close()
    s.ledger.close()
    report = verify_run(tmp_path)
    # the ledger is what the journal says up to its cursor, and the tail not yet
    # attested: interrupted, not damaged
    assert [c.name for c in report.checks if not c.ok] == ["operator signature",
                                                          "ledger applied the journal"]
    assert report.interrupted
    with Journal(tmp_path / JOURNAL_FILE) as j2, Ledger(tmp_path / LEDGER_FILE) as l2:
        Settlement(l2, j2, operator=operator_key())  # recovery signs and replays the tail
        assert l2.balance("grid:money") > 0
        assert l2.cursor == j2.seq - 1
        assert j2.at_checkpoint
    assert verify_run(tmp_path).is_ok
    data = bytearray((tmp_path / JOURNAL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x20
    (tmp_path / JOURNAL_FILE).write_bytes(data)
    report = verify_run(tmp_path)
    assert not report.is_ok
    assert not report.interrupted
    assert report.checks[0].name == "journal"
    assert not report.checks[0].ok
    assert "FAIL  journal" in str(report)
    assert not verify_run(tmp_path / "nowhere").is_ok
