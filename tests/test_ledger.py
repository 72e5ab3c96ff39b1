"""The double-entry ledger: one suite, run on SQLite and on PostgreSQL.

PostgreSQL runs when TRANSACTIVE_TEST_POSTGRES_URL is set (CI starts a server
with .ci/postgres.sh); otherwise those cases are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import unittest
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from transactive.errors import InputError
from transactive.settlement import (
    Account,
    AccountKind,
    Ledger,
    Status,
    Transfer,
    Unit,
)
from transactive.settlement.ledger import state_hash_of

PG_URL = os.environ.get("TRANSACTIVE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not PG_URL, reason="TRANSACTIVE_TEST_POSTGRES_URL is not set"))]

MONEY = AccountKind.PARTICIPANT_MONEY


class _Target:
    """Where a test ledger lives; opens connections to it and cleans up."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.url: str = str(folder / f"{uuid.uuid4().hex}.sqlite")
            self.schema: str | None = None
        else:
            assert PG_URL
            self.url, self.schema = PG_URL, f"t_{uuid.uuid4().hex[:20]}"

    def open(self) -> Ledger:
        return Ledger(self.url, schema=self.schema)

    def raw(self, sql: str) -> None:
        """Run SQL behind the ledger's back (as an attacker or a bug would)."""
        if self.backend == "sqlite":
            db = sqlite3.connect(self.url, isolation_level=None)
            try:
                db.executescript(sql)
            finally:
                db.close()
        else:
            import sqlalchemy as sa
            engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                                      poolclass=sa.pool.NullPool)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'SET search_path TO "{self.schema}"')
                    for stmt in filter(str.strip, sql.split(";")):
                        conn.exec_driver_sql(stmt)
            finally:
                engine.dispose()

    def drop(self) -> None:
        if self.backend == "postgres":
            self.raw(f'DROP SCHEMA "{self.schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Target]:
    t = _Target(request.param, tmp_path)
    yield t
    t.drop()


@pytest.fixture
def ledger(target: _Target) -> Iterator[Ledger]:
    with target.open() as led:
        led.create_accounts([
            Account("alice", MONEY, Unit.CENT),
            Account("bob", MONEY, Unit.CENT),
            Account("prepaid", MONEY, Unit.CENT, allow_negative=False),
            Account("alice_wh", AccountKind.PARTICIPANT_ENERGY, Unit.WH),
        ])
        yield led


def _chain(transfers: list[Transfer]) -> str:
    """The transfer hash chain, computed here independently of the ledger."""
    head = bytes(32)
    for t in transfers:
        canon = json.dumps([t.id, t.debit, t.credit, t.amount, t.code, t.interval],
                           separators=(",", ":")).encode()
        head = hashlib.sha256(head + canon).digest()
    return head.hex()


# ----------------------------------------------------------------- basics
def test_post_moves_money_and_keeps_debits_equal_credits(ledger: Ledger) -> None:
    report = ledger.post([Transfer("t1", "alice", "bob", 250, "market_money", 3)])
    assert report.is_ok
    assert report.count(Status.CREATED) == 1
    assert ledger.balances() == {"alice": -250, "alice_wh": 0, "bob": 250, "prepaid": 0}
    assert list(ledger.transfers()) == [Transfer("t1", "alice", "bob", 250, "market_money", 3)]
    assert ledger.n_transfers == 1
    check = ledger.check()
    assert check.is_ok
    assert check.totals == {"cent": 250}


def test_retry_with_same_fields_exists_and_with_other_fields_is_refused(ledger: Ledger) -> None:
    ledger.post([Transfer("t1", "alice", "bob", 250)])
    before = ledger.state_hash()
    again = ledger.post([Transfer("t1", "alice", "bob", 250)])
    assert again.results[0].status is Status.EXISTS
    for changed in (Transfer("t1", "alice", "bob", 251), Transfer("t1", "bob", "alice", 250),
                    Transfer("t1", "alice", "bob", 250, "other"),
                    Transfer("t1", "alice", "bob", 250, "", 7)):
        result = ledger.post([changed]).results[0]
        assert result.status is Status.REFUSED
        assert result.reason == "id t1 exists with different fields"
    assert ledger.state_hash() == before
    assert ledger.balance("bob") == 250
    assert ledger.n_transfers == 1


def test_linked_group_is_all_or_nothing(ledger: Ledger) -> None:
    ledger.post([Transfer("fund", "alice", "prepaid", 100)])
    before = (ledger.balances(), ledger.state_hash())
    report = ledger.post([
        Transfer("g1", "alice", "bob", 10),
        Transfer("g2", "prepaid", "bob", 101),      # would take prepaid below zero
        Transfer("g3", "bob", "alice", 5),
    ])
    assert [r.status for r in report.results] == [Status.REFUSED] * 3
    assert report.results[1].reason.startswith("account prepaid forbids a negative balance")
    assert report.results[0].reason == "linked transfer g2 was refused"
    assert (ledger.balances(), ledger.state_hash()) == before
    # exactly zero is allowed
    assert ledger.post([Transfer("g4", "prepaid", "bob", 100)]).is_ok
    assert ledger.balance("prepaid") == 0


def test_post_batches_refuses_only_the_bad_group(ledger: Ledger) -> None:
    report = ledger.post_batches([
        [Transfer("a1", "alice", "bob", 1), Transfer("a2", "alice", "bob", 2)],
        [Transfer("b1", "alice", "bob", 3), Transfer("b2", "alice", "alice_wh", 4)],
        [Transfer("c1", "alice", "nobody", 5)],
        [Transfer("d1", "bob", "alice", 1)],
    ])
    assert [r.status for r in report.results] == [
        Status.CREATED, Status.CREATED, Status.REFUSED, Status.REFUSED, Status.REFUSED,
        Status.CREATED]
    assert "units differ" in report.results[3].reason
    assert report.results[4].reason == "unknown account nobody"
    assert ledger.balance("bob") == 2
    assert ledger.n_transfers == 3
    assert ledger.check().is_ok


def test_unlinked_post_applies_each_transfer_on_its_own(ledger: Ledger) -> None:
    report = ledger.post([Transfer("u1", "prepaid", "bob", 1), Transfer("u2", "alice", "bob", 1)],
                         linked=False)
    assert [r.status for r in report.results] == [Status.REFUSED, Status.CREATED]


def test_accounts_are_idempotent_and_all_or_nothing(ledger: Ledger) -> None:
    same = ledger.create_accounts([Account("alice", MONEY, Unit.CENT)])
    assert same.results[0].status is Status.EXISTS
    report = ledger.create_accounts([Account("carol", MONEY, Unit.CENT),
                                     Account("alice", MONEY, Unit.WH)])
    assert [r.status for r in report.results] == [Status.REFUSED, Status.REFUSED]
    assert "exists with different fields" in report.results[1].reason
    assert "carol" not in ledger.balances()


@pytest.mark.parametrize(("transfer", "field"), [
    (Transfer("x", "alice", "bob", 0), "amount"),
    (Transfer("x", "alice", "bob", -5), "amount"),
    (Transfer("x", "alice", "bob", 1.5), "amount"),  # type: ignore[arg-type]
    (Transfer("x", "alice", "bob", True), "amount"),  # type: ignore[arg-type]
    (Transfer("x", "alice", "bob", 2**60), "amount"),
    (Transfer("", "alice", "bob", 1), "id"),
    (Transfer("x", "alice", "alice", 1), "credit"),
    (Transfer("x", "alice", "bob", 1, "c", 1.0), "interval"),  # type: ignore[arg-type]
    (Transfer("x" * 201, "alice", "bob", 1), "id"),
])
def test_bad_input_is_an_input_error_and_changes_nothing(ledger: Ledger, transfer: Transfer,
                                                         field: str) -> None:
    before = ledger.state_hash()
    with pytest.raises(InputError) as err:
        ledger.post([Transfer("ok", "alice", "bob", 1), transfer])
    assert err.value.field == field
    assert err.value.row == 1
    assert ledger.state_hash() == before
    assert ledger.n_transfers == 0


def test_duplicate_ids_in_one_posting_are_an_input_error(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="duplicate id 'd'"):
        ledger.post_batches([[Transfer("d", "alice", "bob", 1)],
                             [Transfer("d", "alice", "bob", 1)]])
    with pytest.raises(InputError, match="duplicate id"):
        ledger.create_accounts([Account("z", MONEY, Unit.CENT), Account("z", MONEY, Unit.CENT)])


def test_cursor_moves_forward_with_the_commit(ledger: Ledger) -> None:
    assert ledger.cursor == 0
    ledger.post([Transfer("c1", "alice", "bob", 1)], cursor=5)
    assert ledger.cursor == 5
    ledger.post([Transfer("c2", "alice", "bob", 1)])
    assert ledger.cursor == 5
    with pytest.raises(InputError, match="must not go back"):
        ledger.post([Transfer("c3", "alice", "bob", 1)], cursor=4)
    assert ledger.n_transfers == 2


def test_state_hash_is_the_documented_chain(ledger: Ledger) -> None:
    ts = [Transfer("h1", "alice", "bob", 7, "x", 0), Transfer("h2", "bob", "alice", 3, "y", 1)]
    ledger.post(ts)
    assert ledger.state_hash() == state_hash_of(ledger.accounts(), _chain(ts))
    # order matters: the same transfers posted the other way round hash differently
    with Ledger(":memory:") as other:
        other.create_accounts(ledger.accounts())
        other.post(ts[::-1])
        assert other.balances() == ledger.balances()
        assert other.state_hash() != ledger.state_hash()


def test_reopening_keeps_everything(target: _Target, ledger: Ledger) -> None:
    ledger.post([Transfer("p1", "alice", "bob", 42)], cursor=3)
    with target.open() as again:
        assert again.balances() == ledger.balances()
        assert again.state_hash() == ledger.state_hash()
        assert again.cursor == 3


def test_the_database_refuses_to_edit_or_delete_a_transfer(target: _Target,
                                                         ledger: Ledger) -> None:
    ledger.post([Transfer("e1", "alice", "bob", 42)])
    for sql in ("UPDATE transfers SET amount = 1", "DELETE FROM transfers"):
        with pytest.raises(Exception, match="transfers are immutable"):
            target.raw(sql)
    assert ledger.balance("bob") == 42


def test_check_finds_tampering_behind_the_ledgers_back(target: _Target, ledger: Ledger) -> None:
    ledger.post([Transfer("e1", "alice", "bob", 42), Transfer("e2", "bob", "alice", 2)])
    assert ledger.check().is_ok
    if target.backend == "sqlite":
        target.raw("DROP TRIGGER transfers_no_update; UPDATE transfers SET amount = 40 "
                   "WHERE id = 'e1'")
    else:
        target.raw("ALTER TABLE transfers DISABLE TRIGGER transfers_immutable; "
                   "UPDATE transfers SET amount = 40 WHERE id = 'e1'")
    problems = ledger.check(full=True).problems
    assert any("hash chain" in p for p in problems)
    assert any("account 'bob'" in p for p in problems)
    # the aggregate check sees the accounts no longer add up to the transfers
    assert ledger.check().problems == (
        "accounts' stored debits/credits 44/44 differ from the transfers' total 42",)


def test_check_finds_an_account_that_went_negative(target: _Target, ledger: Ledger) -> None:
    ledger.post([Transfer("f1", "alice", "prepaid", 5), Transfer("f2", "prepaid", "bob", 5)])
    target.raw("UPDATE accounts SET allow_negative = 1 WHERE id = 'prepaid'")
    ledger.post([Transfer("f3", "prepaid", "bob", 5), Transfer("f4", "alice", "prepaid", 5)])
    target.raw("UPDATE accounts SET allow_negative = 0 WHERE id = 'prepaid'")
    assert ledger.balance("prepaid") == 0
    assert ledger.check().is_ok  # only the replay in posting order sees it
    assert ledger.check(full=True).problems == (
        "transfer 'f3' (seq 3): account 'prepaid' forbids a negative balance but went to -5",)


def test_sqlite_is_durable_by_configuration(tmp_path: Path) -> None:
    with Ledger(tmp_path / "d.sqlite") as led:
        store: Any = led._store
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
        assert store.query("PRAGMA synchronous")[0][0] == 2  # FULL
        assert store.query("PRAGMA foreign_keys")[0][0] == 1


def test_open_without_create_and_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ledger database"):
        Ledger(tmp_path / "missing.sqlite", create=False)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="cannot open"):
        Ledger(tmp_path / "junk.sqlite")
    with pytest.raises(InputError, match="unsupported database URL"):
        Ledger("mysql://x/y")
    with pytest.raises(InputError, match="schema"):
        Ledger(tmp_path / "s.sqlite", schema="x")


def test_concurrent_writers_lose_nothing(target: _Target, ledger: Ledger) -> None:
    """Two connections post at once; the single-writer lock serialises them."""
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with target.open() as led:
                for i in range(60):
                    assert led.post([Transfer(f"{name}{i}", "alice", "bob", 1),
                                     Transfer(f"{name}{i}r", "bob", "prepaid", 1)]).is_ok
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ledger.balances() == {"alice": -120, "alice_wh": 0, "bob": 0, "prepaid": 120}
    assert ledger.check().is_ok
    assert ledger.n_transfers == 240


# ----------------------------------------------------------------- stateful
class _Model:
    """A plain reference model of the ledger's rules."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.balance: dict[str, int] = {}
        self.transfers: dict[str, Transfer] = {}
        self.order: list[Transfer] = []

    def post(self, groups: list[list[Transfer]]) -> list[Status]:
        out: list[Status] = []
        for group in groups:
            trial = dict(self.balance)
            statuses, new, failed = [], [], False
            for t in group:
                if t.id in self.transfers:
                    same = self.transfers[t.id] == t
                    statuses.append(Status.EXISTS if same else Status.REFUSED)
                    failed |= not same
                    continue
                d, c = self.accounts.get(t.debit), self.accounts.get(t.credit)
                ok = (d is not None and c is not None and d.unit == c.unit
                      and (d.allow_negative or trial[t.debit] >= t.amount))
                if ok:
                    trial[t.debit] -= t.amount
                    trial[t.credit] += t.amount
                    new.append(t)
                statuses.append(Status.CREATED if ok else Status.REFUSED)
                failed |= not ok
            if failed:
                statuses = [Status.REFUSED if s is Status.CREATED else s for s in statuses]
            else:
                self.balance = trial
                for t in new:
                    self.transfers[t.id] = t
                    self.order.append(t)
            out += statuses
        return out


ACCOUNT_IDS = [f"acc{i}" for i in range(6)]


def _machine(backend: str) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.folder = Path(tempfile.mkdtemp())
            self.target = _Target(backend, self.folder)
            self.ledger = self.target.open()
            self.model = _Model()
            self.tried: list[Transfer] = []   # every transfer ever posted, created or not
            self.counter = 0

        def teardown(self) -> None:
            self.ledger.close()
            self.target.drop()

        @initialize(flags=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=6,
                                   max_size=6))
        def accounts(self, flags: list[tuple[bool, bool]]) -> None:
            accounts = [Account(a, MONEY, Unit.WH if energy else Unit.CENT, allow_neg)
                        for a, (energy, allow_neg) in zip(ACCOUNT_IDS, flags, strict=True)]
            assert self.ledger.create_accounts(accounts).is_ok
            for a in accounts:
                self.model.accounts[a.id] = a
                self.model.balance[a.id] = 0

        def _fresh(self) -> str:
            self.counter += 1
            return f"t{self.counter}"

        transfer = st.tuples(st.sampled_from([*ACCOUNT_IDS, "ghost"]),
                             st.sampled_from(ACCOUNT_IDS), st.integers(1, 60),
                             st.sampled_from(["a", "b"]), st.integers(-1, 3))

        @rule(groups=st.lists(st.lists(transfer, min_size=1, max_size=4), min_size=1,
                              max_size=3))
        def post(self, groups: list[list[tuple[str, str, int, str, int]]]) -> None:
            built = [[Transfer(self._fresh(), d, c, a, code, k) for d, c, a, code, k in g
                      if d != c] for g in groups]
            built = [g for g in built if g]
            if built:
                got = [r.status for r in self.ledger.post_batches(built).results]
                assert got == self.model.post(built)
                self.tried += [t for g in built for t in g]

        @rule(pick=st.integers(0, 10**6))
        def retry_is_idempotent(self, pick: int) -> None:
            if not self.tried:
                return
            t = self.tried[pick % len(self.tried)]
            stored = self.model.transfers.get(t.id)
            before = self.ledger.state_hash()
            got = self.ledger.post([t]).results[0].status
            assert got == self.model.post([[t]])[0]
            if stored is not None:
                assert got is (Status.EXISTS if stored == t else Status.REFUSED)
                assert self.ledger.state_hash() == before

        @rule(pick=st.integers(0, 10**6), delta=st.integers(1, 5))
        def conflicting_retry_is_refused(self, pick: int, delta: int) -> None:
            if not self.tried:
                return
            t = self.tried[pick % len(self.tried)]
            changed = t._replace(amount=t.amount + delta)
            stored = self.model.transfers.get(t.id)
            before = self.ledger.state_hash()
            got = self.ledger.post([changed]).results[0].status
            assert got == self.model.post([[changed]])[0]
            if stored is not None and stored != changed:
                assert got is Status.REFUSED
                assert self.ledger.state_hash() == before
            self.tried.append(changed)

        @invariant()
        def balances_match_the_model(self) -> None:
            if not self.model.accounts:
                return
            assert self.ledger.balances() == self.model.balance

        @invariant()
        def debits_equal_credits_and_no_forbidden_negative(self) -> None:
            per_unit: dict[Unit, int] = {}
            for aid, bal in self.model.balance.items():
                acc = self.model.accounts[aid]
                per_unit[acc.unit] = per_unit.get(acc.unit, 0) + bal
                assert acc.allow_negative or bal >= 0
            assert all(v == 0 for v in per_unit.values())
            assert self.ledger.check().is_ok

        @invariant()
        def state_hash_is_the_chain_of_accepted_transfers(self) -> None:
            assert self.ledger.state_hash() == state_hash_of(
                self.model.accounts.values(), _chain(self.model.order))

    return LedgerMachine


_SETTINGS = settings(max_examples=20, stateful_step_count=100, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


class TestLedgerMachineSQLite(_machine("sqlite").TestCase):  # type: ignore[name-defined,misc]
    settings = _SETTINGS


@unittest.skipUnless(PG_URL, "TRANSACTIVE_TEST_POSTGRES_URL is not set")
class TestLedgerMachinePostgres(_machine("postgres").TestCase):  # type: ignore[name-defined,misc]
    settings = settings(_SETTINGS, max_examples=10)

