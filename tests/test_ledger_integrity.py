"""The ledger's own integrity checks, :meth:`Ledger.check`, against SQLite files
corrupted behind its back by raw SQL: every kind of problem they name is
produced once, and each report is compared in full with what the corruption
must cause, worked out by hand: the full walk (``check(full=True)``, the
auditor's, which ``transactive ledger verify`` runs) and the aggregate check
(``check()``, the stored aggregates against one aggregate query, run at the end
of every settled run), which cannot see a rewritten head or a transfer pointed
at an account that does not exist (the foreign keys forbid it) and says so here.

Each test works on its own database file; where the corruption needs it, the
test drops that file's no-UPDATE/no-DELETE triggers or turns off SQLite's CHECK
and foreign-key enforcement on its own connection first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from transactive.settlement import Account, AccountKind, Ledger, Transfer, Unit

MONEY = AccountKind.PARTICIPANT_MONEY
NO_UPDATE = "DROP TRIGGER transfers_no_update;"
NO_DELETE = "DROP TRIGGER transfers_no_delete;"

# alice pays bob 40, bob pays back 10, alice pays 5 more:
# alice debits/credits 45/10, bob 10/45; every unit sums to zero
TRANSFERS = [Transfer("t1", "alice", "bob", 40), Transfer("t2", "bob", "alice", 10),
             Transfer("t3", "alice", "bob", 5)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    with Ledger(path) as led:
        led.create_accounts([
            Account("alice", MONEY, Unit.CENT),
            Account("bob", MONEY, Unit.CENT),
            Account("alice_wh", AccountKind.PARTICIPANT_ENERGY, Unit.WH),
        ])
        assert led.post(TRANSFERS).is_ok
        assert led.check().is_ok
        assert led.check(full=True).is_ok
        yield led


def corrupt(path: Path, sql: str) -> None:
    """Run ``sql`` on the file through a connection of our own."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(sql)
    finally:
        db.close()


CHAIN = "hash chain of the transfers does not match the stored head"


def test_sequence_gap(ledger: Ledger, path: Path) -> None:
    # the sequence number is not hashed: renumbering the last transfer breaks only 1..n
    corrupt(path, NO_UPDATE + "UPDATE transfers SET seq = 5 WHERE id = 't3'")
    assert ledger.check(full=True).problems == ("transfer 't3' (seq 5): sequence gap, expected 3",)
    assert ledger.check().problems == ("sequence numbers run 1..5, not 1..3",)


def test_sequence_gap_in_the_middle_reorders_the_replay(ledger: Ledger, path: Path) -> None:
    # t2 moved to seq 7: read in seq order the transfers are t1, t3, t2, so both t3
    # (seq 3 at place 2) and t2 (seq 7 at place 3) are out of place, and the chain,
    # hashed in posting order, no longer matches
    corrupt(path, NO_UPDATE + "UPDATE transfers SET seq = 7 WHERE id = 't2'")
    assert ledger.check(full=True).problems == (
        "transfer 't3' (seq 3): sequence gap, expected 2",
        "transfer 't2' (seq 7): sequence gap, expected 3",
        CHAIN,
    )
    assert ledger.check().problems == ("sequence numbers run 1..7, not 1..3",)


def test_mixed_units(ledger: Ledger, path: Path) -> None:
    # bob's account relabelled to Wh: every transfer joins cent with Wh, and the
    # stored balances now leave cent at alice's -35 and Wh at bob's +35
    corrupt(path, "UPDATE accounts SET unit = 'Wh' WHERE id = 'bob'")
    assert ledger.check(full=True).problems == (
        "transfer 't1' (seq 1): mixes units cent and Wh",
        "transfer 't2' (seq 2): mixes units Wh and cent",
        "transfer 't3' (seq 3): mixes units cent and Wh",
        "unit Wh: balances sum to 35, not 0 (debits != credits)",
        "unit cent: balances sum to -35, not 0 (debits != credits)",
    )
    assert ledger.check().problems == (
        "unit Wh: balances sum to 35, not 0 (debits != credits)",
        "unit cent: balances sum to -35, not 0 (debits != credits)",
    )


@pytest.mark.parametrize("amount", [0, -5])
def test_non_positive_amount(ledger: Ledger, path: Path, amount: int) -> None:
    corrupt(path, "PRAGMA ignore_check_constraints = ON;" + NO_UPDATE
            + f"UPDATE transfers SET amount = {amount} WHERE id = 't3'")
    # replayed, alice debits 40 + amount and bob is credited 40 + amount
    assert set(ledger.check(full=True).problems) == {
        f"transfer 't3' (seq 3): amount {amount} is not positive",
        CHAIN,
        f"account 'alice': stored debits/credits 45/10 differ from its transfers "
        f"{40 + amount}/10",
        f"account 'bob': stored debits/credits 10/45 differ from its transfers "
        f"10/{40 + amount}",
    }
    # stored: 55 debited and credited in all; the transfers now move 50 + amount
    assert ledger.check().problems == (
        f"a transfer's amount is {amount}, not positive",
        f"accounts' stored debits/credits 55/55 differ from the transfers' total {50 + amount}",
    )


def test_count_mismatch(ledger: Ledger, path: Path) -> None:
    corrupt(path, "UPDATE ledger_state SET seq = 4")
    assert ledger.check(full=True).problems == ("ledger_state counts 4 transfers, table holds 3",)
    assert ledger.check().problems == ("ledger_state counts 4 transfers, table holds 3",)


def test_deleted_transfer(ledger: Ledger, path: Path) -> None:
    corrupt(path, NO_DELETE + "DELETE FROM transfers WHERE id = 't3'")
    assert set(ledger.check(full=True).problems) == {
        "ledger_state counts 3 transfers, table holds 2",
        CHAIN,
        "account 'alice': stored debits/credits 45/10 differ from its transfers 40/10",
        "account 'bob': stored debits/credits 10/45 differ from its transfers 10/40",
    }
    assert ledger.check().problems == (
        "ledger_state counts 3 transfers, table holds 2",
        "accounts' stored debits/credits 55/55 differ from the transfers' total 50",
    )


@pytest.mark.parametrize("change", [7, -7])
def test_imbalance_of_either_sign(ledger: Ledger, path: Path, change: int) -> None:
    # more (or less) credited to bob than his transfers say: cent sums to +-7
    corrupt(path, f"UPDATE accounts SET credits = credits + {change} WHERE id = 'bob'")
    assert ledger.check(full=True).problems == (
        f"account 'bob': stored debits/credits 10/{45 + change} differ from its transfers "
        "10/45",
        f"unit cent: balances sum to {change}, not 0 (debits != credits)",
    )
    assert ledger.check().problems == (
        f"accounts' stored debits/credits 55/{55 + change} differ from the transfers' total 55",
        f"unit cent: balances sum to {change}, not 0 (debits != credits)",
    )


def test_unknown_account(ledger: Ledger, path: Path) -> None:
    # t3 pointed at an account that does not exist: it cannot be replayed, so the
    # chain stops short of the stored head and bob is credited 5 less than stored
    corrupt(path, "PRAGMA foreign_keys = OFF;" + NO_UPDATE
            + "UPDATE transfers SET credit = 'ghost' WHERE id = 't3'")
    assert set(ledger.check(full=True).problems) == {
        "transfer 't3' (seq 3): unknown account",
        CHAIN,
        "account 'alice': stored debits/credits 45/10 differ from its transfers 40/10",
        "account 'bob': stored debits/credits 10/45 differ from its transfers 10/40",
    }
    assert ledger.check().is_ok  # every sum still holds: only the walk sees it


def test_stored_head(ledger: Ledger, path: Path) -> None:
    corrupt(path, f"UPDATE ledger_state SET head = '{'0' * 64}'")
    assert ledger.check(full=True).problems == (CHAIN,)
    assert ledger.check().is_ok  # the head is taken as stored: only the walk sees it
