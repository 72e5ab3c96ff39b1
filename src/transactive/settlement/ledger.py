"""A double-entry ledger in integer minor units, on SQLite or PostgreSQL.

Every movement of money or energy is a :class:`Transfer` of a positive integer
``amount`` from a ``debit`` account to a ``credit`` account of the same
:class:`Unit` (cents, watt-hours or grams of CO2e: money and energy never mix
in one transfer). An account's balance is ``credits - debits``, so the balances
of each unit always sum to zero, and an account created with
``allow_negative=False`` can never go below zero.

Rules the ledger keeps, on both databases:

- **Client-chosen ids, idempotent.** Posting a transfer whose id exists with
  the same fields answers ``EXISTS`` and changes nothing; with different
  fields it is ``REFUSED`` and changes nothing.
- **Linked groups commit all or nothing.** :meth:`Ledger.post` takes one group;
  :meth:`Ledger.post_batches` takes many groups in one database transaction
  (one durable commit for many groups: the batched path for throughput), and
  a refused transfer refuses only its own group.
- **Nothing is edited.** The database refuses UPDATE and DELETE on transfers;
  a correction is a new transfer.
- **A state hash** for replay checks: each transfer extends a sha256 chain,
  ``head = sha256(head || canonical(transfer))`` in posting order, and
  :meth:`Ledger.state_hash` combines it with the accounts (see
  :func:`state_hash_of`).
- **A cursor** (an integer committed atomically with each batch) records how
  far an external write-ahead log (the journal) has been applied.

Bad input (wrong types, non-positive amounts, a transfer to itself, duplicate
ids in one call) raises :class:`~transactive.errors.InputError` before anything
changes; refusals that depend on the ledger's state come back in the
:class:`PostReport`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from transactive.errors import InputError, TransactiveError
from transactive.settlement._sql import GENESIS, Store, open_store

__all__ = [
    "Account",
    "AccountKind",
    "IntegrityReport",
    "Ledger",
    "PostReport",
    "PostResult",
    "SettlementError",
    "Status",
    "Transfer",
    "Unit",
    "state_hash_of",
]

MAX_AMOUNT = 2**53  # per transfer; keeps every balance far inside a signed 64-bit integer
_ID_MAX = 200
_CHUNK = 500  # ids per "IN (...)" query


class SettlementError(TransactiveError):
    """Settlement could not proceed: a refused posting, a broken invariant or
    a corrupted ledger or journal. The message says which and where."""


class AccountKind(StrEnum):
    """Who an account belongs to."""

    PARTICIPANT_MONEY = "participant_money"
    PARTICIPANT_ENERGY = "participant_energy"
    MARKET = "market"
    GRID = "grid"
    UTILITY = "utility"
    CARBON = "carbon"


class Unit(StrEnum):
    """The unit of an account's integer amounts."""

    CENT = "cent"  # minor unit of the currency
    WH = "Wh"
    G_CO2E = "gCO2e"


@dataclass(frozen=True)
class Account:
    """A ledger account. Its id is chosen by the client and never reused."""

    id: str
    kind: AccountKind
    unit: Unit
    allow_negative: bool = True

    def row(self) -> tuple[str, str, str, int]:
        return (self.id, str(self.kind), str(self.unit), int(self.allow_negative))


class Transfer(NamedTuple):
    """``amount`` (a positive integer in the accounts' unit) from ``debit`` to ``credit``.

    ``code`` says what the transfer is for (``"market_money"``, ``"grid_fee"``,
    ...); ``interval`` is the market interval it settles (``-1`` for none).
    """

    id: str
    debit: str
    credit: str
    amount: int
    code: str = ""
    interval: int = -1


def transfer_bytes(t: Transfer) -> bytes:
    """The canonical bytes of a transfer, hashed into the ledger's chain: the
    compact ASCII JSON array ``[id, debit, credit, amount, code, interval]``.

    Examples
    --------
    >>> transfer_bytes(Transfer("t1", "a", "b", 5, "fee", 2))
    b'["t1","a","b",5,"fee",2]'
    """
    return (f"[{_json_str(t[0])},{_json_str(t[1])},{_json_str(t[2])},{t[3]:d},"
            f"{_json_str(t[4])},{t[5]:d}]").encode()


def _account_bytes(a: Account) -> bytes:
    return json.dumps(list(a.row()), separators=(",", ":"), ensure_ascii=True).encode()


def state_hash_of(accounts: Iterable[Account], head: str) -> str:
    """``sha256("transactive.ledger.v1" || sha256(accounts sorted by id) || head)``.

    ``head`` is the transfer chain: ``sha256(prev || canonical(transfer))`` from
    64 zero hex digits, in posting order. Two ledgers have the same state hash
    exactly when they hold the same accounts and the same transfers in the same
    order.
    """
    acc = hashlib.sha256()
    for a in sorted(accounts, key=lambda a: a.id):
        acc.update(_account_bytes(a) + b"\n")
    return hashlib.sha256(b"transactive.ledger.v1" + acc.digest() + bytes.fromhex(head)).hexdigest()


class Status(StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    REFUSED = "refused"


@dataclass(frozen=True)
class PostResult:
    """What happened to one transfer (or account) of a posting."""

    id: str
    status: Status
    reason: str = ""

    @property
    def is_ok(self) -> bool:
        return self.status is not Status.REFUSED


@dataclass(frozen=True)
class PostReport:
    """The results of one posting, in input order."""

    results: tuple[PostResult, ...]

    @property
    def is_ok(self) -> bool:
        """True when nothing was refused."""
        return all(r.is_ok for r in self.results)

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.results)

    @property
    def refused(self) -> tuple[PostResult, ...]:
        return tuple(r for r in self.results if r.status is Status.REFUSED)


@dataclass(frozen=True)
class IntegrityReport:
    """The outcome of :meth:`Ledger.check`: every figure recomputed from the transfers."""

    problems: tuple[str, ...]
    n_accounts: int
    n_transfers: int
    totals: dict[str, int] = field(default_factory=dict)  # per unit: sum of amounts moved
    state_hash: str = ""  # recomputed from the rows, not read from the stored head

    @property
    def is_ok(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------- validation
def _text(value: Any, name: str, row: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise InputError(name, f"must be a non-empty string, got {value!r}", row=row)
    if len(value) > _ID_MAX:
        raise InputError(name, f"must be at most {_ID_MAX} characters", row=row)
    return value


def _integer(value: Any, name: str, row: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(name, f"must be an integer, got {value!r}", row=row)
    return int(value)


def _clean_transfer(t: Any, row: int) -> Transfer:
    if type(t) is Transfer:  # fast path: the usual, well-formed transfer
        tid, debit, credit, amount, code, interval = t
        if (type(tid) is str and type(debit) is str and type(credit) is str
                and type(code) is str and type(amount) is int and type(interval) is int
                and 0 < len(tid) <= _ID_MAX and 0 < len(debit) <= _ID_MAX
                and 0 < len(credit) <= _ID_MAX and len(code) <= _ID_MAX
                and debit != credit and 0 < amount <= MAX_AMOUNT):
            return t
    if not isinstance(t, tuple) or len(t) != 6:
        raise InputError("transfers", f"expected a Transfer, got {t!r}", row=row)
    tid = _text(t[0], "id", row)
    debit = _text(t[1], "debit", row)
    credit = _text(t[2], "credit", row)
    if debit == credit:
        raise InputError("credit", f"debit and credit are the same account {debit!r}", row=row)
    amount = _integer(t[3], "amount", row)
    if not 0 < amount <= MAX_AMOUNT:
        raise InputError("amount", f"must be in 1..{MAX_AMOUNT}, got {amount}", row=row)
    code = _text(t[4], "code", row, empty=True)
    return Transfer(tid, debit, credit, amount, code, _integer(t[5], "interval", row))


def _clean_account(a: Any, row: int) -> Account:
    if not isinstance(a, Account):
        raise InputError("accounts", f"expected an Account, got {a!r}", row=row)
    try:
        kind, unit = AccountKind(a.kind), Unit(a.unit)
    except ValueError as exc:
        raise InputError("accounts", str(exc), row=row) from None
    if not isinstance(a.allow_negative, bool | np.bool_):
        raise InputError("allow_negative", "must be True or False", row=row)
    return Account(_text(a.id, "id", row), kind, unit, bool(a.allow_negative))


def _no_duplicates(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for row, i in enumerate(ids):
        if i in seen:
            raise InputError(what, f"duplicate id {i!r} in one posting", row=row)
        seen.add(i)


class _Balance:
    """An account as seen while planning a posting."""

    __slots__ = ("allow_negative", "balance", "unit")

    def __init__(self, unit: str, allow_negative: bool, balance: int) -> None:
        self.unit = unit
        self.allow_negative = allow_negative
        self.balance = balance


class Ledger:
    """A double-entry ledger on SQLite (a path) or PostgreSQL (a URL).

    Parameters
    ----------
    target : str or Path
        A file path, ``"sqlite:///path"``, ``":memory:"`` (scratch), or a
        ``postgresql://user@host/db`` URL (needs the ``postgres`` extra).
    schema : str, optional
        PostgreSQL only: keep the ledger's tables in this schema (created if needed).
    create : bool
        Create the database and tables if missing (default); otherwise a
        missing ledger is an error.

    Examples
    --------
    >>> led = Ledger(":memory:")
    >>> led.create_accounts([Account("alice", AccountKind.PARTICIPANT_MONEY, Unit.CENT),
    ...                      Account("bob", AccountKind.PARTICIPANT_MONEY, Unit.CENT)]).is_ok
    True
    >>> led.post([Transfer("t1", "alice", "bob", 125)]).results[0].status
    <Status.CREATED: 'created'>
    >>> led.post([Transfer("t1", "alice", "bob", 125)]).results[0].status   # a retry
    <Status.EXISTS: 'exists'>
    >>> led.post([Transfer("t1", "alice", "bob", 999)]).results[0].reason
    'id t1 exists with different fields'
    >>> led.balance("alice"), led.balance("bob")
    (-125, 125)
    >>> led.check().is_ok
    True
    """

    def __init__(self, target: str | Path, *, schema: str | None = None,
                 create: bool = True) -> None:
        self._store: Store = open_store(target, schema=schema, create=create)

    # ----------------------------------------------------------------- context
    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        """Where the ledger lives (a path, or a URL with the password hidden)."""
        return self._store.location

    # ----------------------------------------------------------------- writing
    def create_accounts(self, accounts: Iterable[Account], *,
                        cursor: int | None = None) -> PostReport:
        """Create accounts, all or nothing: an id that exists with the same
        fields is ``EXISTS``, with other fields ``REFUSED`` (and then none is created)."""
        return self.apply(accounts=accounts, cursor=cursor)[0]

    def post(self, transfers: Iterable[Transfer], *, linked: bool = True,
             cursor: int | None = None) -> PostReport:
        """Post transfers in one durable commit: one linked group (all or
        nothing) by default, or each on its own with ``linked=False``."""
        group = list(transfers)
        groups = [group] if linked else [[t] for t in group]
        return self.apply(groups=groups, cursor=cursor)[1]

    def post_batches(self, groups: Iterable[Iterable[Transfer]], *,
                     cursor: int | None = None) -> PostReport:
        """Post many linked groups in one durable commit (the fast path).

        Each group commits all or nothing; a refused group leaves the others alone.
        """
        return self.apply(groups=groups, cursor=cursor)[1]

    def apply(self, *, accounts: Iterable[Account] = (),
              groups: Iterable[Iterable[Transfer]] = (),
              cursor: int | None = None) -> tuple[PostReport, PostReport]:
        """Create accounts, then post linked groups, in one transaction.

        ``cursor`` (if given) is stored with the commit; see :attr:`cursor`.
        Returns the account report and the transfer report.
        """
        acc_in = [_clean_account(a, i) for i, a in enumerate(accounts)]
        _no_duplicates([a.id for a in acc_in], "accounts")
        group_in: list[list[Transfer]] = []
        row = 0
        for g in groups:
            cleaned = []
            for t in g:
                cleaned.append(_clean_transfer(t, row))
                row += 1
            group_in.append(cleaned)
        flat = [t for g in group_in for t in g]
        _no_duplicates([t.id for t in flat], "transfers")
        if cursor is not None:
            cursor = _integer(cursor, "cursor", 0)
        if cursor is None and not acc_in and not flat:
            return PostReport(()), PostReport(())

        db = self._store
        db.begin_write()
        try:
            seq, head, old_cursor = db.query(
                "SELECT seq, head, cursor FROM ledger_state WHERE id = 1")[0]
            if cursor is not None and cursor < old_cursor:
                raise InputError("cursor", f"must not go back (at {old_cursor}, got {cursor})")
            acc_report, new_accounts = self._plan_accounts(acc_in)
            balances = self._load_accounts({t.debit for t in flat} | {t.credit for t in flat})
            if acc_report.is_ok:
                for a in new_accounts:
                    balances[a.id] = _Balance(str(a.unit), a.allow_negative, 0)
            existing = self._load_transfers([t.id for t in flat])
            tr_report, created = _plan_transfers(group_in, existing, balances)
            if acc_report.is_ok and new_accounts:
                db.executemany("INSERT INTO accounts (id, kind, unit, allow_negative) "
                               "VALUES (?, ?, ?, ?)", [a.row() for a in new_accounts])
            if created:
                chain = bytes.fromhex(head)
                rows = []
                for t in created:
                    seq += 1
                    chain = hashlib.sha256(chain + transfer_bytes(t)).digest()
                    rows.append((seq, *t))
                head = chain.hex()
                db.executemany("INSERT INTO transfers (seq, id, debit, credit, amount, code, "
                               "interval_no) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                deltas: dict[str, list[int]] = {}
                for t in created:
                    deltas.setdefault(t.debit, [0, 0])[0] += t.amount
                    deltas.setdefault(t.credit, [0, 0])[1] += t.amount
                db.executemany("UPDATE accounts SET debits = debits + ?, credits = credits + ? "
                               "WHERE id = ?", [(d, c, i) for i, (d, c) in deltas.items()])
            db.execute("UPDATE ledger_state SET seq = ?, head = ?, cursor = ? WHERE id = 1",
                       (seq, head, old_cursor if cursor is None else cursor))
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return acc_report, tr_report

    def _plan_accounts(self, accounts: list[Account]) -> tuple[PostReport, list[Account]]:
        if not accounts:
            return PostReport(()), []
        found = {a.id: a for a in self._select_accounts([a.id for a in accounts])}
        results, new = [], []
        for a in accounts:
            old = found.get(a.id)
            if old is None:
                new.append(a)
                results.append(PostResult(a.id, Status.CREATED))
            elif old == a:
                results.append(PostResult(a.id, Status.EXISTS))
            else:
                results.append(PostResult(a.id, Status.REFUSED,
                                          f"account {a.id} exists with different fields"))
        report = PostReport(tuple(results))
        if not report.is_ok:
            report = PostReport(tuple(
                r if r.status is not Status.CREATED else
                PostResult(r.id, Status.REFUSED, "another account of this posting was refused")
                for r in results))
            new = []
        return report, new

    def _chunks(self, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows += self._store.query(sql.format(",".join("?" * len(part))), part)
        return rows

    def _select_accounts(self, ids: Sequence[str]) -> list[Account]:
        rows = self._chunks("SELECT id, kind, unit, allow_negative FROM accounts "
                            "WHERE id IN ({})", list(ids))
        return [Account(r[0], AccountKind(r[1]), Unit(r[2]), bool(r[3])) for r in rows]

    def _load_accounts(self, ids: set[str]) -> dict[str, _Balance]:
        rows = self._chunks("SELECT id, unit, allow_negative, credits - debits FROM accounts "
                            "WHERE id IN ({})", sorted(ids))
        return {r[0]: _Balance(r[1], bool(r[2]), int(r[3])) for r in rows}

    def _load_transfers(self, ids: list[str]) -> dict[str, Transfer]:
        rows = self._chunks("SELECT id, debit, credit, amount, code, interval_no FROM transfers "
                            "WHERE id IN ({})", ids)
        return {r[0]: Transfer(r[0], r[1], r[2], int(r[3]), r[4], int(r[5])) for r in rows}

    # ----------------------------------------------------------------- reading
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        db = self._store
        db.begin_read()
        try:
            rows = db.query(sql, params)
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return rows

    @property
    def cursor(self) -> int:
        """The last cursor committed (how far the journal has been applied)."""
        return int(self._read("SELECT cursor FROM ledger_state WHERE id = 1")[0][0])

    @property
    def n_transfers(self) -> int:
        return int(self._read("SELECT seq FROM ledger_state WHERE id = 1")[0][0])

    def accounts(self) -> list[Account]:
        """All accounts, sorted by id."""
        rows = self._read("SELECT id, kind, unit, allow_negative FROM accounts ORDER BY id")
        return [Account(r[0], AccountKind(r[1]), Unit(r[2]), bool(r[3])) for r in rows]

    def balance(self, account: str) -> int:
        """``credits - debits`` of one account."""
        rows = self._read("SELECT credits - debits FROM accounts WHERE id = ?", (account,))
        if not rows:
            raise InputError("account", f"no account {account!r}")
        return int(rows[0][0])

    def balances(self) -> dict[str, int]:
        """``credits - debits`` of every account, by id."""
        return {r[0]: int(r[1])
                for r in self._read("SELECT id, credits - debits FROM accounts ORDER BY id")}

    def transfers(self, *, after: int = 0) -> Iterator[Transfer]:
        """Transfers in posting order, from sequence number ``after + 1``."""
        rows = self._read("SELECT id, debit, credit, amount, code, interval_no FROM transfers "
                          "WHERE seq > ? ORDER BY seq", (after,))
        for r in rows:
            yield Transfer(r[0], r[1], r[2], int(r[3]), r[4], int(r[5]))

    def movements(self, spans: Sequence[tuple[int, int]], ids: Sequence[str] = ()
                  ) -> tuple[dict[str, int], int]:
        """``credits - debits`` of every account over the transfers whose sequence
        number is in one of ``spans`` (inclusive ``(first, last)`` ranges) or whose
        id is in ``ids``, summed in the database; and how many transfers that is.

        Examples
        --------
        >>> ledger = Ledger(":memory:")
        >>> _ = ledger.create_accounts([Account("a", AccountKind.MARKET, Unit.CENT),
        ...                             Account("b", AccountKind.MARKET, Unit.CENT)])
        >>> _ = ledger.post([Transfer("t1", "a", "b", 5, "x", 0),
        ...                  Transfer("t2", "b", "a", 2, "x", 0)])
        >>> ledger.movements([(2, 2)], ids=["t1"])
        ({'a': -3, 'b': 3}, 2)
        """
        sums: dict[str, int] = {}
        count = 0

        def add(rows: list[tuple[Any, ...]]) -> None:
            nonlocal count
            for debit, credit, amount, n in rows:
                sums[debit] = sums.get(debit, 0) - int(amount)
                sums[credit] = sums.get(credit, 0) + int(amount)
                count += int(n)

        select = "SELECT debit, credit, SUM(amount), COUNT(*) FROM transfers WHERE "
        for first, last in spans:
            add(self._read(select + "seq BETWEEN ? AND ? GROUP BY debit, credit",
                           (int(first), int(last))))
        for i in range(0, len(ids), _CHUNK):
            part = list(ids[i:i + _CHUNK])
            add(self._read(select + "id IN ({}) GROUP BY debit, credit".format(
                ",".join("?" * len(part))), part))
        return dict(sorted(sums.items())), count

    def transfers_frame(self) -> pd.DataFrame:
        """All transfers as a frame (one row each, in posting order)."""
        rows = self._read("SELECT seq, id, debit, credit, amount, code, interval_no "
                          "FROM transfers ORDER BY seq")
        frame = pd.DataFrame(rows, columns=["seq", "id", "debit", "credit", "amount", "code",
                                            "interval"])
        return frame.astype({"seq": np.int64, "amount": np.int64, "interval": np.int64})

    def state_hash(self) -> str:
        """The hash of the accounts and the ordered transfers (:func:`state_hash_of`)."""
        db = self._store
        db.begin_read()
        try:
            head = db.query("SELECT head FROM ledger_state WHERE id = 1")[0][0]
            rows = db.query("SELECT id, kind, unit, allow_negative FROM accounts")
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return state_hash_of(
            (Account(r[0], AccountKind(r[1]), Unit(r[2]), bool(r[3])) for r in rows), head)

    def check(self) -> IntegrityReport:
        """Recompute everything from the transfers, in one consistent snapshot.

        Checks: sequence numbers are 1..n; every transfer joins two accounts of
        the same unit with a positive amount; the hash chain matches the
        stored head; each stored balance equals the sum of its transfers; no
        account that forbids a negative balance was ever below zero (replayed
        in posting order); and per unit, debits equal credits.
        """
        db = self._store
        db.begin_read()
        try:
            state = db.query("SELECT seq, head FROM ledger_state WHERE id = 1")[0]
            acc_rows = db.query("SELECT id, unit, allow_negative, debits, credits, kind "
                                "FROM accounts")
            rows = db.query("SELECT seq, id, debit, credit, amount, code, interval_no "
                            "FROM transfers ORDER BY seq")
            db.commit()
        except BaseException:
            db.rollback()
            raise
        problems: list[str] = []
        unit = {r[0]: r[1] for r in acc_rows}
        forbid = {r[0] for r in acc_rows if not r[2]}
        running = dict.fromkeys(unit, 0)
        debits = dict.fromkeys(unit, 0)
        credits = dict.fromkeys(unit, 0)
        totals: dict[str, int] = {}
        chain = bytes.fromhex(GENESIS)
        for n, (seq, tid, deb, cred, amount, code, interval) in enumerate(rows, start=1):
            where = f"transfer {tid!r} (seq {seq})"
            if seq != n:
                problems.append(f"{where}: sequence gap, expected {n}")
            if deb not in unit or cred not in unit:
                problems.append(f"{where}: unknown account")
                continue
            if unit[deb] != unit[cred]:
                problems.append(f"{where}: mixes units {unit[deb]} and {unit[cred]}")
            if amount <= 0:
                problems.append(f"{where}: amount {amount} is not positive")
            chain = hashlib.sha256(
                chain + transfer_bytes(Transfer(tid, deb, cred, int(amount), code,
                                                int(interval)))).digest()
            debits[deb] += amount
            credits[cred] += amount
            running[deb] -= amount
            running[cred] += amount
            totals[unit[deb]] = totals.get(unit[deb], 0) + amount
            if deb in forbid and running[deb] < 0:
                problems.append(f"{where}: account {deb!r} forbids a negative balance "
                                f"but went to {running[deb]}")
        if len(rows) != state[0]:
            problems.append(f"ledger_state counts {state[0]} transfers, table holds {len(rows)}")
        if chain.hex() != state[1]:
            problems.append("hash chain of the transfers does not match the stored head")
        per_unit: dict[str, int] = {}
        for aid, _, _, d, c, _ in acc_rows:
            if d != debits[aid] or c != credits[aid]:
                problems.append(f"account {aid!r}: stored debits/credits {d}/{c} differ from "
                                f"its transfers {debits[aid]}/{credits[aid]}")
            per_unit[unit[aid]] = per_unit.get(unit[aid], 0) + c - d
        for u, total in sorted(per_unit.items()):
            if total != 0:
                problems.append(f"unit {u}: balances sum to {total}, not 0 (debits != credits)")
        accounts = (Account(r[0], AccountKind(r[5]), Unit(r[1]), bool(r[2])) for r in acc_rows)
        return IntegrityReport(tuple(problems), len(acc_rows), len(rows), totals,
                               state_hash_of(accounts, chain.hex()))


def _plan_transfers(groups: list[list[Transfer]], existing: dict[str, Transfer],
                    balances: dict[str, _Balance]) -> tuple[PostReport, list[Transfer]]:
    """Decide every transfer in posting order against the current balances.

    A group's new transfers are kept only if none of the group is refused; the
    balances of a refused group are rolled back before the next group.
    """
    results: list[PostResult] = []
    created: list[Transfer] = []
    for group in groups:
        group_results: list[PostResult] = []
        applied: list[Transfer] = []
        failed = False
        for t in group:
            old = existing.get(t.id)
            if old is not None:
                if old == t:
                    group_results.append(PostResult(t.id, Status.EXISTS))
                else:
                    group_results.append(PostResult(
                        t.id, Status.REFUSED, f"id {t.id} exists with different fields"))
                    failed = True
                continue
            reason = _refusal(t, balances)
            if reason:
                group_results.append(PostResult(t.id, Status.REFUSED, reason))
                failed = True
                continue
            balances[t.debit].balance -= t.amount
            balances[t.credit].balance += t.amount
            applied.append(t)
            group_results.append(PostResult(t.id, Status.CREATED))
        if failed:
            for t in applied:
                balances[t.debit].balance += t.amount
                balances[t.credit].balance -= t.amount
            failing = next(r.id for r in group_results if r.status is Status.REFUSED)
            group_results = [
                PostResult(r.id, Status.REFUSED, f"linked transfer {failing} was refused")
                if r.status is Status.CREATED else r
                for r in group_results
            ]
        else:
            for t in applied:
                existing[t.id] = t
            created += applied
        results += group_results
    return PostReport(tuple(results)), created


def _refusal(t: Transfer, balances: dict[str, _Balance]) -> str:
    debit, credit = balances.get(t.debit), balances.get(t.credit)
    if debit is None:
        return f"unknown account {t.debit}"
    if credit is None:
        return f"unknown account {t.credit}"
    if debit.unit != credit.unit:
        return f"units differ: {t.debit} is in {debit.unit}, {t.credit} in {credit.unit}"
    if not debit.allow_negative and debit.balance < t.amount:
        return (f"account {t.debit} forbids a negative balance "
                f"(balance {debit.balance}, amount {t.amount})")
    return ""
