"""The accounts a ledger keeps between postings (each account's unit and sign
rule, read once): a posting naming most accounts plans from them, with the
same reports, balances and rows as reading the table, including a refused
overdraft, an account created since, one deleted behind the ledger's back and
a posting rolled back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from transactive.settlement import Account, AccountKind, Ledger, Status, Transfer, Unit

MONEY = AccountKind.PARTICIPANT_MONEY
ACCS = [Account("alice", MONEY, Unit.CENT), Account("bob", MONEY, Unit.CENT),
        Account("prepaid", MONEY, Unit.CENT, allow_negative=False),
        Account("alice_wh", AccountKind.PARTICIPANT_ENERGY, Unit.WH),
        Account("bob_wh", AccountKind.PARTICIPANT_ENERGY, Unit.WH)]


def _post_all(led: Ledger, tag: str, prepaid_pays: int = 3, wh_to: str = "bob_wh"
              ) -> list[Status]:
    """A posting naming every account (so planned from the kept accounts)."""
    report = led.post_batches([[Transfer(f"{tag}/1", "alice", "bob", 5)],
                               [Transfer(f"{tag}/2", "bob", "prepaid", 2)],
                               [Transfer(f"{tag}/3", "prepaid", "alice", prepaid_pays)],
                               [Transfer(f"{tag}/4", "alice_wh", wh_to, 1)]])
    return [r.status for r in report.results]


def test_kept_accounts_plan_as_the_table(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    assert led.create_accounts(ACCS).is_ok
    ok = [Status.CREATED] * 4
    assert _post_all(led, "a", prepaid_pays=1) == ok  # scans the table
    assert led._kept is not None
    assert list(led._kept) == [a.id for a in ACCS]
    assert _post_all(led, "b", prepaid_pays=2) == ok  # in bulk, from the kept accounts
    # prepaid holds 1 + 2 when it pays: not 4 (its balance read afresh)
    assert _post_all(led, "c", prepaid_pays=4) == [Status.CREATED, Status.CREATED,
                                                   Status.REFUSED, Status.CREATED]
    assert _post_all(led, "d", prepaid_pays=3, wh_to="bob") == [  # Wh to cents
        Status.CREATED, Status.CREATED, Status.CREATED, Status.REFUSED]
    assert _post_all(led, "e", prepaid_pays=4) == ok  # 2 + 2
    assert led.balance("prepaid") == 0
    assert led.balance("bob") == 5 * 3
    assert led.balance("alice") == -5 * 5 + 1 + 2 + 3 + 4
    assert led.balance("bob_wh") == 4
    assert led.check().is_ok
    assert led.check(full=True).is_ok


def test_an_account_created_since_is_kept_and_a_deleted_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    led = Ledger(path)
    assert led.create_accounts([*ACCS, Account("dave", MONEY, Unit.CENT)]).is_ok
    _post_all(led, "a")
    assert led.create_accounts([Account("erin", MONEY, Unit.CENT)]).is_ok
    assert led._kept is not None
    assert list(led._kept)[-1] == "erin"
    with sqlite3.connect(path) as other:  # behind the ledger's back: never referenced
        other.execute("DELETE FROM accounts WHERE id = 'dave'")
    report = led.post_batches([[Transfer("x/1", "alice", "erin", 1)],
                               [Transfer("x/2", "bob", "dave", 1)],
                               [Transfer("x/3", "alice", "bob", 1)],
                               [Transfer("x/4", "prepaid", "bob", 1)],
                               [Transfer("x/5", "alice_wh", "bob_wh", 1)]])
    assert [r.status for r in report.results] == [Status.CREATED, Status.REFUSED,
                                                  Status.CREATED, Status.CREATED,
                                                  Status.CREATED]
    assert "dave" in report.results[1].reason
    assert led.balance("erin") == 1
    assert led.check().is_ok


def test_a_rolled_back_posting_forgets_the_kept_accounts(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    assert led.create_accounts(ACCS).is_ok
    _post_all(led, "a")

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        led.apply(accounts=[Account("frank", MONEY, Unit.CENT)],
                  groups=[[Transfer("y/1", "alice", "frank", 1),
                           Transfer("y/2", "bob", "prepaid", 1),
                           Transfer("y/3", "alice_wh", "alice_wh2", 1)]],
                  before_commit=fail)
    assert led._kept is None
    assert _post_all(led, "b")[0] is Status.CREATED
    assert led._kept is not None
    assert "frank" not in led._kept
