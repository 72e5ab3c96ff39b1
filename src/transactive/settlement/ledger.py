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
  a refused transfer refuses only its own group. Many groups can come as
  columns, a :class:`TransferBatch` (how settlement hands over a day).
- **Nothing is edited.** The database refuses UPDATE and DELETE on transfers;
  a correction is a new transfer.
- **A state hash** for replay checks: each transfer extends a sha256 chain,
  ``head = sha256(head || canonical(transfer))`` in posting order, and
  :meth:`Ledger.state_hash` combines it with the accounts (see
  :func:`state_hash_of`).
- **A cursor** (an integer committed atomically with each batch) records how
  far an external write-ahead log (the journal) has been applied.
- **Running aggregates.** Each account keeps its ``debits`` and ``credits``,
  updated in the transaction that inserts the transfers, so
  :meth:`Ledger.check` can hold them against one aggregate query over the
  transfers; ``check(full=True)`` (the auditor's check, ``transactive ledger
  verify``) walks every transfer and recomputes the hash chain instead.

Bad input (wrong types, non-positive amounts, a transfer to itself, duplicate
ids in one call) raises :class:`~transactive.errors.InputError` before anything
changes; refusals that depend on the ledger's state come back in the
:class:`PostReport`.

A posting is planned in bulk when it can be: the accounts it names are read
once, and if every transfer joins two known accounts of one unit and no
account that forbids a negative balance would go below zero (replayed in
posting order), its rows go in with one ``executemany`` under a savepoint; the
unique index on ``id`` then proves that none existed. Anything else (an id
that exists, an unknown account, a refusal) rolls back to the savepoint and is
planned transfer by transfer, in posting order, with the same reports as ever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError, TransactiveError
from transactive.settlement._integrity import (
    Walk,
    aggregate_problems,
    chain,
    exact_sums,
    transfer_bytes,
    transfer_lines,
)
from transactive.settlement._sql import Store, open_store

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
    "TransferBatch",
    "Unit",
    "state_hash_of",
    "transfer_bytes",
    "transfer_lines",
]

MAX_AMOUNT = 2**53  # per transfer; keeps every balance far inside a signed 64-bit integer
_ID_MAX = 200
_WALK = 50_000  # transfers read per query by the full check
_INSERT = ("INSERT INTO transfers (seq, id, debit, credit, amount, code, interval_no) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")


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


class PostResult(NamedTuple):
    """What happened to one transfer (or account) of a posting."""

    id: str
    status: Status
    reason: str = ""

    @property
    def is_ok(self) -> bool:
        return self.status is not Status.REFUSED


class PostReport:
    """The results of one posting, in input order.

    A posting planned in bulk answers with one status for all its transfers;
    its :attr:`results` are then made when first asked for.
    """

    __slots__ = ("_ids", "_results", "_status")

    def __init__(self, results: Iterable[PostResult] = ()) -> None:
        self._results: tuple[PostResult, ...] | None = tuple(results)
        self._ids: Sequence[str] = ()
        self._status: Status | None = None

    @classmethod
    def uniform(cls, ids: Sequence[str], status: Status) -> PostReport:
        """The same ``status`` (without a reason) for each of ``ids``."""
        report = cls()
        report._results, report._ids, report._status = None, ids, status
        return report

    @property
    def results(self) -> tuple[PostResult, ...]:
        if self._results is None:
            self._results = tuple(map(PostResult._make, zip(
                self._ids, repeat(self._status), repeat(""))))
        return self._results

    def __len__(self) -> int:
        return len(self._ids) if self._results is None else len(self._results)

    @property
    def is_ok(self) -> bool:
        """True when nothing was refused."""
        if self._results is None:
            return self._status is not Status.REFUSED or not self._ids
        return all(r.is_ok for r in self._results)

    def count(self, status: Status) -> int:
        if self._results is None:
            return len(self._ids) if status is self._status else 0
        return sum(r.status is status for r in self._results)

    @property
    def refused(self) -> tuple[PostResult, ...]:
        if self._results is None and self._status is not Status.REFUSED:
            return ()
        return tuple(r for r in self.results if r.status is Status.REFUSED)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PostReport):
            return NotImplemented
        return self.results == other.results

    def __hash__(self) -> int:
        return hash(self.results)

    def __repr__(self) -> str:
        return f"PostReport(results={self.results!r})"


@dataclass(frozen=True)
class IntegrityReport:
    """The outcome of :meth:`Ledger.check`.

    ``full`` says which check it was: the walk over every transfer (hash chain
    and state hash recomputed from the rows) or the aggregate check (the
    stored figures against one aggregate query; ``state_hash`` from the
    stored head).
    """

    problems: tuple[str, ...]
    n_accounts: int
    n_transfers: int
    totals: dict[str, int] = field(default_factory=dict)  # per unit: sum of amounts moved
    state_hash: str = ""
    full: bool = True

    @property
    def is_ok(self) -> bool:
        return not self.problems


class TransferBatch(Sequence[Transfer]):
    """Linked groups of transfers as columns, the ledger's bulk input.

    Transfer ``i`` is ``Transfer(id[i], debit[i], credit[i], amount[i], code[i],
    interval[i])``; the groups are consecutive runs of ``sizes`` transfers, in
    order (one group of all of them by default). Columns are one-dimensional
    arrays (or anything :func:`numpy.asarray` makes one of): strings for
    ``id``, ``debit``, ``credit`` and ``code``, integers for ``amount`` and
    ``interval``. The batch is a sequence of :class:`Transfer` too, made when
    read. The ledger checks the values (:meth:`Ledger.apply`); the batch only
    checks the shapes and kinds.

    Examples
    --------
    >>> b = TransferBatch(["t1", "t2", "t3"], ["a", "b", "a"], ["b", "a", "c"], [5, 2, 1],
    ...                   ["x", "x", "y"], [0, 0, 1], sizes=[2, 1])
    >>> len(b), b[2]
    (3, Transfer(id='t3', debit='a', credit='c', amount=1, code='y', interval=1))
    >>> [[t.id for t in g] for g in b.groups()]
    [['t1', 't2'], ['t3']]
    """

    __slots__ = ("_rows", "amount", "code", "credit", "debit", "id", "interval", "sizes")

    id: npt.NDArray[Any]
    debit: npt.NDArray[Any]
    credit: npt.NDArray[Any]
    amount: npt.NDArray[np.int64]
    code: npt.NDArray[Any]
    interval: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    _rows: _Rows | None

    def __init__(self, id: npt.ArrayLike, debit: npt.ArrayLike,
                 credit: npt.ArrayLike, amount: npt.ArrayLike, code: npt.ArrayLike,
                 interval: npt.ArrayLike, *, sizes: npt.ArrayLike | None = None) -> None:
        cols: dict[str, npt.NDArray[Any]] = {}
        for name, value in (("id", id), ("debit", debit), ("credit", credit), ("code", code)):
            # not an array yet: keep the values as they are (the ledger checks their types)
            col = value if isinstance(value, np.ndarray) else np.array(value, dtype=object)
            if col.size == 0:
                col = np.empty(0, dtype=object)
            if col.ndim != 1 or col.dtype.kind not in "UO":
                raise InputError(name, "must be a one-dimensional column of strings")
            cols[name] = col
        for name, value in (("amount", amount), ("interval", interval)):
            cols[name] = _int_column(value, name)
        n = len(cols["id"])
        if any(len(c) != n for c in cols.values()):
            raise InputError("transfers", "columns differ in length: "
                             + ", ".join(f"{k} {len(c)}" for k, c in cols.items()))
        counts = _int_column([n] if sizes is None else sizes, "sizes")
        if (counts < 0).any() or int(counts.sum()) != n:
            raise InputError("sizes", f"must be group sizes (>= 0) summing to {n}")
        cols["sizes"] = counts
        for name, col in cols.items():
            col.flags.writeable = False
            object.__setattr__(self, name, col)
        object.__setattr__(self, "_rows", None)  # the checked rows, once checked

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a TransferBatch is immutable")

    @classmethod
    def from_groups(cls, groups: Iterable[Iterable[Transfer]]) -> TransferBatch:
        """The batch of linked groups of transfers, each checked as the ledger
        checks it (:class:`~transactive.errors.InputError` naming the first bad one)."""
        flat: list[Transfer] = []
        sizes = []
        for g in groups:
            start = len(flat)
            flat += [_clean_transfer(t, start + k) for k, t in enumerate(g)]
            sizes.append(len(flat) - start)
        cols = list(zip(*flat, strict=True)) if flat else [()] * 6
        strings = [np.array(c, dtype=object) if c else np.empty(0, dtype=object)
                   for c in (cols[0], cols[1], cols[2], cols[4])]
        try:
            interval = np.array(cols[5], dtype=np.int64)
        except OverflowError:
            raise InputError("interval", "must fit a signed 64-bit integer") from None
        return cls(strings[0], strings[1], strings[2], np.array(cols[3], dtype=np.int64),
                   strings[3], interval, sizes=np.array(sizes, dtype=np.int64))

    @classmethod
    def concat(cls, parts: Iterable[TransferBatch | Iterable[Transfer]]) -> TransferBatch:
        """One batch of many: each batch keeps its groups, any other sequence of
        transfers is one group."""
        batches = [p if isinstance(p, TransferBatch) else cls.from_groups([p]) for p in parts]
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return cls.from_groups([])
        cols = [np.concatenate([getattr(b, c) for b in batches])
                for c in ("id", "debit", "credit", "amount", "code", "interval", "sizes")]
        return cls(*cols[:6], sizes=cols[6])

    def check(self) -> TransferBatch:
        """Check every transfer as :meth:`Ledger.apply` does (types, lengths,
        amounts, a transfer to itself, ids repeated in the batch); raise
        :class:`~transactive.errors.InputError` naming the first bad one.
        Returns the batch."""
        if self._rows is None:
            object.__setattr__(self, "_rows", _Rows.of(self))
        return self

    def columns(self) -> tuple[list[str], list[str], list[str], list[int], list[str], list[int]]:
        """The six columns as lists of Python strings and integers (do not change them)."""
        if self._rows is not None:
            r = self._rows
            return r.ids, r.debits, r.credits, r.amounts, r.codes, r.intervals
        return (self.id.tolist(), self.debit.tolist(), self.credit.tolist(),
                self.amount.tolist(), self.code.tolist(), self.interval.tolist())

    def groups(self) -> list[list[Transfer]]:
        """The linked groups, as lists of transfers."""
        flat = list(self)
        ends = np.cumsum(self.sizes).tolist()
        return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def __len__(self) -> int:
        return len(self.id)

    def __eq__(self, other: object) -> bool:
        """The same transfers in the same groups."""
        if not isinstance(other, TransferBatch):
            return NotImplemented
        return all(np.array_equal(getattr(self, c), getattr(other, c)) for c in (
            "id", "debit", "credit", "amount", "code", "interval", "sizes"))

    __hash__ = None  # type: ignore[assignment]  # equal by value, and holds arrays

    def __iter__(self) -> Iterator[Transfer]:
        return map(Transfer._make, zip(*self.columns(), strict=True))

    def __getitem__(self, i: int) -> Transfer:  # type: ignore[override]
        if not isinstance(i, int | np.integer):
            raise TypeError("a TransferBatch is indexed by position (an integer)")
        k = range(len(self))[i]
        return Transfer(*(c[k:k + 1].tolist()[0] for c in (
            self.id, self.debit, self.credit, self.amount, self.code, self.interval)))

    def __repr__(self) -> str:
        return f"TransferBatch({len(self)} transfers in {len(self.sizes)} groups)"


def _int_column(value: Any, name: str) -> npt.NDArray[np.int64]:
    if isinstance(value, list | tuple) and any(isinstance(v, bool | np.bool_) for v in value):
        raise InputError(name, "must be integers, not True or False")
    col = np.asarray(value)
    if col.size == 0:
        return np.empty(0, dtype=np.int64)
    if col.ndim != 1 or col.dtype.kind not in "iu":
        raise InputError(name, "must be a one-dimensional column of integers")
    if col.dtype.kind == "u" and col.size and int(col.max()) > np.iinfo(np.int64).max:
        raise InputError(name, "must fit a signed 64-bit integer")
    return col.astype(np.int64, copy=False)


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


def _bad_text(col: list[Any], *, empty: bool = False) -> int:
    """The first row that is not a string of 1 (0 if ``empty``) to ``_ID_MAX``
    characters, or -1."""
    if not col:
        return -1
    if set(map(type, col)) == {str}:
        lengths = list(map(len, col))
        if max(lengths) <= _ID_MAX and (empty or min(lengths) > 0):
            return -1
    return next(r for r, v in enumerate(col)
                if not isinstance(v, str) or len(v) > _ID_MAX or not (empty or v))


class _Rows(NamedTuple):
    """The transfers of a posting as lists (checked), and its group sizes."""

    ids: list[str]
    debits: list[str]
    credits: list[str]
    amounts: list[int]
    codes: list[str]
    intervals: list[int]
    sizes: list[int]

    @classmethod
    def of(cls, batch: TransferBatch) -> _Rows:
        """The rows of a batch, every value checked (InputError at the first bad one)."""
        if batch._rows is not None:
            return batch._rows
        rows = cls(*batch.columns(), batch.sizes.tolist())
        bad = [_bad_text(rows.ids), _bad_text(rows.debits), _bad_text(rows.credits),
               _bad_text(rows.codes, empty=True)]
        amount = batch.amount
        bad += [int(r[0]) if r.size else -1 for r in (
            np.flatnonzero((amount <= 0) | (amount > MAX_AMOUNT)),
            np.flatnonzero(batch.debit == batch.credit))]
        bad = [r for r in bad if r >= 0]
        if bad:
            first = min(bad)
            _clean_transfer(batch[first], first)  # raises, naming the field
            raise InputError("transfers", "is not a valid transfer", row=first)
        if len(set(rows.ids)) != len(rows.ids):
            _no_duplicates(rows.ids, "transfers")
        return rows

    @classmethod
    def made(cls, transfers: list[Transfer]) -> _Rows:
        """The rows of checked transfers, as one group."""
        c: list[list[Any]] = ([list(col) for col in zip(*transfers, strict=True)]
                              if transfers else [[] for _ in range(6)])
        return cls(c[0], c[1], c[2], c[3], c[4], c[5], [len(transfers)])


class _Balance:
    """An account as seen while planning a posting."""

    __slots__ = ("allow_negative", "balance", "unit")

    def __init__(self, unit: str, allow_negative: bool, balance: int) -> None:
        self.unit = unit
        self.allow_negative = allow_negative
        self.balance = balance


IntArray = npt.NDArray[np.intp]


class _Accounts(NamedTuple):
    """The accounts a posting names, as read in its transaction (columns).

    ``balances`` are read for every account, or (``kept``: the units and sign
    rules from :attr:`Ledger._kept`) only for those that forbid a negative
    balance, the others 0: enough for :func:`_bulk_plan`, not for
    :meth:`balance_objects`."""

    ids: list[str]
    units: list[str]
    allow_negative: list[bool]
    balances: list[int]
    kept: bool = False

    def positions(self, rows: _Rows) -> tuple[IntArray, IntArray]:
        """Each transfer's debit and credit account by position (KeyError if unknown)."""
        index = dict(zip(self.ids, range(len(self.ids)), strict=True))
        n = len(rows.ids)
        return (np.fromiter(map(index.__getitem__, rows.debits), np.intp, n),
                np.fromiter(map(index.__getitem__, rows.credits), np.intp, n))

    def balance_objects(self) -> dict[str, _Balance]:
        """The accounts as the transfer-by-transfer planner changes them."""
        if self.kept:
            raise SettlementError("the kept accounts have no balances: read the table")
        return {i: _Balance(u, a, b) for i, u, a, b in
                zip(self.ids, self.units, self.allow_negative, self.balances, strict=True)}


def _bulk_plan(rows: _Rows, accounts: _Accounts) -> tuple[IntArray, IntArray] | None:
    """The positions of every transfer's accounts if all of them can be
    created as posted (both accounts known and of one unit, and no account
    that forbids a negative balance goes below zero, in posting order);
    ``None`` if the posting needs planning transfer by transfer."""
    try:
        debit, credit = accounts.positions(rows)
    except KeyError:
        return None
    unit = pd.factorize(np.array(accounts.units, dtype=object))[0]
    if (unit[debit] != unit[credit]).any():
        return None
    forbid = ~np.array(accounts.allow_negative, dtype=bool)
    if forbid[debit].any():
        running = {k: accounts.balances[k] for k in np.flatnonzero(forbid).tolist()}
        amounts = rows.amounts
        for r in np.flatnonzero(forbid[debit] | forbid[credit]).tolist():
            d, c, a = int(debit[r]), int(credit[r]), amounts[r]
            if d in running:
                if running[d] < a:
                    return None
                running[d] -= a
            if c in running:
                running[c] += a
    return debit, credit


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
    >>> led.check().is_ok, led.check(full=True).is_ok
    (True, True)
    """

    def __init__(self, target: str | Path, *, schema: str | None = None,
                 create: bool = True) -> None:
        self._store: Store = open_store(target, schema=schema, create=create)
        self._n_accounts = -1  # about how many accounts there are (-1: not counted yet)
        # each account's unit and sign rule (never changed), in the table's order,
        # from its last scan and the accounts committed here since (None: not scanned)
        self._kept: dict[str, tuple[str, bool]] | None = None

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

    def post_batches(self, groups: TransferBatch | Iterable[Iterable[Transfer]], *,
                     cursor: int | None = None) -> PostReport:
        """Post many linked groups in one durable commit (the fast path).

        Each group commits all or nothing; a refused group leaves the others
        alone. ``groups`` may be a :class:`TransferBatch` (columns).
        """
        return self.apply(groups=groups, cursor=cursor)[1]

    def apply(self, *, accounts: Iterable[Account] = (),
              groups: TransferBatch | Iterable[Iterable[Transfer]] = (),
              cursor: int | None = None,
              before_commit: Callable[[], None] | None = None
              ) -> tuple[PostReport, PostReport]:
        """Create accounts, then post linked groups, in one transaction.

        ``groups`` are lists of transfers or a :class:`TransferBatch`. ``cursor``
        (if given) is stored with the commit; see :attr:`cursor`.
        ``before_commit`` (if given) is called last inside the transaction, just
        before it commits (if it raises, nothing is committed): e.g. waiting for
        the write-ahead journal to reach the disk. Returns the account report
        and the transfer report.
        """
        acc_in = [_clean_account(a, i) for i, a in enumerate(accounts)]
        _no_duplicates([a.id for a in acc_in], "accounts")
        batch = groups if isinstance(groups, TransferBatch) else TransferBatch.from_groups(groups)
        rows = _Rows.of(batch.check())
        if cursor is not None:
            cursor = _integer(cursor, "cursor", 0)
        if cursor is None and not acc_in and not rows.ids:
            return PostReport(()), PostReport(())

        db = self._store
        db.begin_write()
        try:
            seq, head, old_cursor = db.query(
                "SELECT seq, head, cursor FROM ledger_state WHERE id = 1")[0]
            if cursor is not None and cursor < old_cursor:
                raise InputError("cursor", f"must not go back (at {old_cursor}, got {cursor})")
            acc_report, new_accounts = self._plan_accounts(acc_in)
            if new_accounts:
                db.executemany("INSERT INTO accounts (id, kind, unit, allow_negative) "
                               "VALUES (?, ?, ?, ?)", [a.row() for a in new_accounts])
                self._n_accounts += len(new_accounts) if self._n_accounts >= 0 else 0
            tr_report = PostReport(())
            if rows.ids:
                tr_report, seq, head = self._post(batch, rows, int(seq), head)
            db.execute("UPDATE ledger_state SET seq = ?, head = ?, cursor = ? WHERE id = 1",
                       (seq, head, old_cursor if cursor is None else cursor))
            if before_commit is not None:
                before_commit()
            db.commit()
        except BaseException:
            db.rollback()
            self._kept = None  # it may have been scanned inside the transaction
            raise
        if self._kept is not None:  # committed: in the table, after those scanned
            self._kept.update((a.id, (str(a.unit), a.allow_negative)) for a in new_accounts)
        return acc_report, tr_report

    def _post(self, batch: TransferBatch, rows: _Rows, seq: int, head: str
              ) -> tuple[PostReport, int, str]:
        """Plan and insert a posting's transfers (``rows``, checked, of ``batch``)
        inside the open write transaction; the report, the new sequence number
        and the new head."""
        db = self._store
        names = set(rows.debits).union(rows.credits)
        accounts = self._load_accounts(names)
        plan = _bulk_plan(rows, accounts)
        if plan is not None and db.try_executemany(
                _INSERT, zip(range(seq + 1, seq + 1 + len(rows.ids)), *rows[:6], strict=True)):
            report, created = PostReport.uniform(rows.ids, Status.CREATED), rows
            debit, credit = plan
        else:  # transfer by transfer: ids that exist, unknown accounts, refusals
            if accounts.kept:  # the balances of all, from the table
                accounts = self._load_accounts(names, kept=False)
            existing = self._load_transfers(rows.ids)
            report, kept = _plan_transfers(batch.groups(), existing, accounts.balance_objects())
            created = _Rows.made(kept)
            db.executemany(_INSERT, zip(range(seq + 1, seq + 1 + len(kept)), *created[:6],
                                        strict=True))
            debit, credit = accounts.positions(created)
        if not created.ids:
            return report, seq, head
        n, amounts = len(accounts.ids), created.amounts
        debits, credits = exact_sums(debit, amounts, n), exact_sums(credit, amounts, n)
        db.executemany("UPDATE accounts SET debits = debits + ?, credits = credits + ? "
                       "WHERE id = ?", [(d, c, a) for a, d, c in zip(accounts.ids, debits, credits,
                                                                       strict=True) if d or c])
        head = chain(bytes.fromhex(head), transfer_lines(*created[:6])).hex()
        return report, seq + len(created.ids), head

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

    def _select_in(self, sql: str, column: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` (with ``{}`` where the condition goes) for ``column IN values``."""
        rows: list[tuple[Any, ...]] = []
        step = self._store.in_chunk
        for i in range(0, len(values), step):
            condition, params = self._store.in_list(column, values[i:i + step])
            rows += self._store.query(sql.format(condition), params)
        return rows

    def _select_accounts(self, ids: Sequence[str]) -> list[Account]:
        rows = self._select_in("SELECT id, kind, unit, allow_negative FROM accounts WHERE {}",
                               "id", list(ids))
        return [Account(r[0], AccountKind(r[1]), Unit(r[2]), bool(r[3])) for r in rows]

    def _load_accounts(self, ids: set[str], *, kept: bool = True) -> _Accounts:
        """The accounts among ``ids``: by id, or, when they are most of the
        accounts (the count is only a guide), in one scan of the table, which
        keeps every account's unit and sign rule (:attr:`_kept`).

        With ``kept``, when they are most of the accounts and all kept, they
        come from what was kept instead, in the scan's order (the table's:
        accounts are never deleted), with the balances of only those that
        forbid a negative one read (:class:`_Accounts`): a posting of a day
        names every account, and reading them all back each day costs more
        than its inserts. An account kept but gone (changed behind the
        ledger's back) fails the insert's foreign key, and the posting is
        then planned from the table."""
        db, sql = self._store, "SELECT id, unit, allow_negative, credits - debits FROM accounts"
        if self._n_accounts < 0:
            self._n_accounts = int(db.query("SELECT COUNT(*) FROM accounts")[0][0])
        if 2 * len(ids) >= self._n_accounts:
            if kept and self._kept is not None and ids.issubset(self._kept):
                return self._kept_accounts(ids)
            rows = db.query(sql)
            self._n_accounts = len(rows)
            self._kept = {r[0]: (r[1], bool(r[2])) for r in rows}
            rows = [r for r in rows if r[0] in ids]
        else:
            rows = self._select_in(sql + " WHERE {}", "id", list(ids))
        if not rows:
            return _Accounts([], [], [], [])
        found, units, allow, balances = zip(*rows, strict=True)
        return _Accounts(list(found), list(units), [bool(a) for a in allow],
                         [int(b) for b in balances])

    def _kept_accounts(self, ids: set[str]) -> _Accounts:
        """The accounts among ``ids``, all kept (:meth:`_load_accounts`)."""
        assert self._kept is not None
        found = [i for i in self._kept if i in ids]
        units, allow = [self._kept[i][0] for i in found], [self._kept[i][1] for i in found]
        balances = [0] * len(found)
        forbid = [i for i, a in zip(found, allow, strict=True) if not a]
        if forbid:
            read = dict(self._select_in("SELECT id, credits - debits FROM accounts WHERE {}",
                                        "id", forbid))
            at = {i: k for k, i in enumerate(found)}
            for i in forbid:
                balances[at[i]] = int(read.get(i, 0))
        return _Accounts(found, units, allow, balances, kept=True)

    def _load_transfers(self, ids: list[str]) -> dict[str, Transfer]:
        rows = self._select_in("SELECT id, debit, credit, amount, code, interval_no "
                               "FROM transfers WHERE {}", "id", ids)
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
        select = "SELECT debit, credit, SUM(amount), COUNT(*) FROM transfers WHERE "
        db = self._store
        db.begin_read()
        try:
            found = [db.query(select + "seq BETWEEN ? AND ? GROUP BY debit, credit",
                              (int(first), int(last))) for first, last in spans]
            found.append(self._select_in(select + "{} GROUP BY debit, credit", "id", list(ids)))
            db.commit()
        except BaseException:
            db.rollback()
            raise
        for rows in found:
            for debit, credit, amount, n in rows:
                sums[debit] = sums.get(debit, 0) - int(amount)
                sums[credit] = sums.get(credit, 0) + int(amount)
                count += int(n)
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

    # ----------------------------------------------------------------- checking
    def check(self, *, full: bool = False) -> IntegrityReport:
        """Check the ledger's invariants, in one consistent snapshot.

        By default against the running aggregates, with one aggregate query
        over the transfers (fast however long the ledger): the transfers are
        numbered 1..n and ``ledger_state`` counts n; every amount is positive;
        the accounts' stored debits and credits each add up to the amounts
        of all transfers; per unit, the balances sum to zero; and no account
        that forbids a negative balance holds one. The state hash is made from
        the stored head.

        With ``full=True`` (the auditor's check, :func:`~transactive.settlement.verify.verify_run`)
        everything is recomputed from the transfers, read in posting order:
        sequence numbers are 1..n; every transfer joins two accounts of the
        same unit with a positive amount; the hash chain matches the stored
        head; each stored balance equals the sum of its transfers; no account
        that forbids a negative balance was ever below zero (replayed in
        posting order); and per unit, debits equal credits.
        """
        db = self._store
        db.begin_read()
        try:
            seq, head = db.query("SELECT seq, head FROM ledger_state WHERE id = 1")[0]
            acc_rows = db.query("SELECT id, unit, allow_negative, debits, credits, kind "
                                "FROM accounts")
            if full:
                walk = Walk(acc_rows)
                rows = db.query("SELECT seq, id, debit, credit, amount, code, interval_no "
                                "FROM transfers ORDER BY seq LIMIT ?", (_WALK,))
                while rows:
                    walk.add(rows)
                    rows = [] if len(rows) < _WALK else db.query(
                        "SELECT seq, id, debit, credit, amount, code, interval_no FROM "
                        "transfers WHERE seq > ? ORDER BY seq LIMIT ?", (rows[-1][0], _WALK))
            else:
                summary = db.query("SELECT COUNT(*), MIN(seq), MAX(seq), SUM(amount), "
                                   "MIN(amount) FROM transfers")[0]
            db.commit()
        except BaseException:
            db.rollback()
            raise
        accounts = [Account(r[0], AccountKind(r[5]), Unit(r[1]), bool(r[2])) for r in acc_rows]
        if full:
            problems, totals, chain = walk.report(int(seq), head)
            return IntegrityReport(tuple(problems), len(acc_rows), walk.n, totals,
                                   state_hash_of(accounts, chain), full=True)
        problems, totals = aggregate_problems(int(seq), acc_rows, summary)
        return IntegrityReport(tuple(problems), len(acc_rows), int(summary[0]), totals,
                               state_hash_of(accounts, head), full=False)


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
