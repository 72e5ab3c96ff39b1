"""The ledger's arithmetic over rows of transfers, in bulk.

- the canonical bytes of a transfer (:func:`transfer_bytes`, the compact
  ASCII JSON array ``[id, debit, credit, amount, code, interval]``) and of
  many at once (:func:`transfer_lines`), and the hash chain over them
  (:func:`chain`: ``head = sha256(head || bytes)`` in posting order);
- exact integer sums by account (:func:`exact_sums`);
- the two integrity checks of :meth:`~transactive.settlement.ledger.Ledger.check`
  as computations over rows read from the database:
  :func:`aggregate_problems` (the stored aggregates against one aggregate
  query) and :class:`Walk` (every transfer, in posting order, a chunk at a time).

Nothing here touches a database or knows the ledger's types: rows are plain
tuples, as the stores return them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import repeat
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.settlement._sql import GENESIS

__all__ = ["Walk", "aggregate_problems", "chain", "exact_sums", "plain", "transfer_bytes",
           "transfer_lines"]

IntArray = npt.NDArray[np.intp]
#: The characters compact ASCII JSON writes as they are.
_PLAIN = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def plain(text: str) -> bool:
    """True if compact ASCII JSON writes ``text`` as it is (no character escaped:
    only printable ASCII, no ``"`` and no backslash).

    Examples
    --------
    >>> plain("participant:h7:money"), plain('say "hi"'), plain("caf\\u00e9"), plain("a\\nb")
    (True, False, False, False)
    """
    return text.isascii() and not text.encode().translate(None, _PLAIN)


def transfer_bytes(t: Sequence[Any]) -> bytes:
    """The canonical bytes of a transfer, hashed into the ledger's chain: the
    compact ASCII JSON array ``[id, debit, credit, amount, code, interval]``.

    Examples
    --------
    >>> transfer_bytes(("t1", "a", "b", 5, "fee", 2))
    b'["t1","a","b",5,"fee",2]'
    """
    return (f"[{_json_str(t[0])},{_json_str(t[1])},{_json_str(t[2])},{t[3]:d},"
            f"{_json_str(t[4])},{t[5]:d}]").encode()


def transfer_lines(ids: Sequence[str], debits: Sequence[str], credits: Sequence[str],
                   amounts: Sequence[int], codes: Sequence[str], intervals: Sequence[int]
                   ) -> list[bytes]:
    """:func:`transfer_bytes` of many transfers given as columns (Python strings
    and integers), in one pass: when no string needs escaping (the usual case,
    tested once per column) each is written as it is.

    Examples
    --------
    >>> transfer_lines(["t1", 'q"t'], ["a", "a"], ["b", "b"], [5, 6], ["", ""], [2, -1])
    [b'["t1","a","b",5,"",2]', b'["q\\\\"t","a","b",6,"",-1]']
    """
    if (all(plain("".join(col)) for col in (ids, debits, credits, codes))
            and set(map(type, amounts)) <= {int} and set(map(type, intervals)) <= {int}):
        return [f'["{i}","{d}","{c}",{a},"{k}",{n}]'.encode()
                for i, d, c, a, k, n in zip(ids, debits, credits, amounts, codes, intervals,
                                            strict=True)]
    return [transfer_bytes(t) for t in zip(ids, debits, credits, amounts, codes, intervals,
                                            strict=True)]


def chain(head: bytes, lines: Iterable[bytes]) -> bytes:
    """``head`` extended by each line: ``head = sha256(head || line)``."""
    sha = hashlib.sha256
    for line in lines:
        head = sha(head + line).digest()
    return head


def exact_sums(where: IntArray, amounts: Sequence[int], n: int) -> list[int]:
    """``amounts`` summed into ``n`` bins by ``where``, exactly."""
    values = np.asarray(amounts, dtype=np.int64)
    if values.size and int(np.abs(values).max()) * values.size < 2**53:  # float64 is exact
        return np.bincount(where, weights=values, minlength=n).astype(np.int64).tolist()
    out = [0] * n
    for k, a in zip(where.tolist(), amounts, strict=True):
        out[k] += a
    return out


def aggregate_problems(seq: int, acc_rows: list[tuple[Any, ...]], summary: tuple[Any, ...]
                        ) -> tuple[list[str], dict[str, int]]:
    """The problems :meth:`~transactive.settlement.ledger.Ledger.check` finds in the
    stored aggregates (``acc_rows``: id, unit, allow_negative, debits, credits;
    ``summary``: the transfers' count, first and last sequence number, sum and
    smallest amount), and the amounts moved per unit."""
    count, first, last, total, smallest = summary
    count, total = int(count), int(total or 0)
    problems = []
    if count != seq:
        problems.append(f"ledger_state counts {seq} transfers, table holds {count}")
    if count and (first, last) != (1, count):
        problems.append(f"sequence numbers run {first}..{last}, not 1..{count}")
    if count and smallest <= 0:
        problems.append(f"a transfer's amount is {smallest}, not positive")
    debits = sum(int(r[3]) for r in acc_rows)
    credits = sum(int(r[4]) for r in acc_rows)
    if (debits, credits) != (total, total):
        problems.append(f"accounts' stored debits/credits {debits}/{credits} differ from "
                        f"the transfers' total {total}")
    per_unit: dict[str, int] = {}
    totals: dict[str, int] = {}
    for aid, unit, allow_negative, d, c, _ in acc_rows:
        per_unit[unit] = per_unit.get(unit, 0) + int(c) - int(d)
        if d:
            totals[unit] = totals.get(unit, 0) + int(d)
        if not allow_negative and c < d:
            problems.append(f"account {aid!r} forbids a negative balance but holds {c - d}")
    problems += [f"unit {u}: balances sum to {v}, not 0 (debits != credits)"
                 for u, v in sorted(per_unit.items()) if v]
    return problems, totals


class Walk:
    """The full check's pass over the transfers, in posting order, a chunk at a time."""

    def __init__(self, acc_rows: list[tuple[Any, ...]]) -> None:
        self.acc_rows = acc_rows
        self.index = {r[0]: k for k, r in enumerate(acc_rows)}
        self.units = [r[1] for r in acc_rows]
        codes, self.unit_names = pd.factorize(np.array(self.units, dtype=object))
        self.unit = np.append(codes, -1)  # position -1: an unknown account
        forbid = [k for k, r in enumerate(acc_rows) if not r[2]]
        self.forbid = np.zeros(len(acc_rows) + 1, dtype=bool)
        self.forbid[forbid] = True
        self.running = dict.fromkeys(forbid, 0)
        self.debits = [0] * len(acc_rows)
        self.credits = [0] * len(acc_rows)
        self.moved = [0] * len(self.unit_names)
        self.chain = bytes.fromhex(GENESIS)
        self.n = 0
        self.problems: list[str] = []

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        seqs, ids, debs, creds, amounts, codes, intervals = zip(*rows, strict=True)
        m, get = len(rows), self.index.get
        debit = np.fromiter(map(get, debs, repeat(-1)), np.intp, m)
        credit = np.fromiter(map(get, creds, repeat(-1)), np.intp, m)
        amount = np.array(amounts, dtype=np.int64)
        known = (debit >= 0) & (credit >= 0)
        flagged = (np.array(seqs, dtype=np.int64) != np.arange(self.n + 1, self.n + 1 + m)) | ~known
        flagged |= known & ((self.unit[debit] != self.unit[credit]) | (amount <= 0))
        negative = self._replay(debit, credit, amounts, known)
        for r in sorted({*np.flatnonzero(flagged).tolist(), *negative}):
            self._row_problems(r, seqs[r], ids[r], debs[r], creds[r], amounts[r],
                               bool(known[r]), negative.get(r))
        keep = np.flatnonzero(known)
        if keep.size < m:  # a transfer with an unknown account is left out of the chain
            pick = keep.tolist()
            ids, debs, creds, amounts, codes, intervals = (
                tuple(c[k] for k in pick) for c in (ids, debs, creds, amounts, codes, intervals))
            debit, credit, amount = debit[keep], credit[keep], amount[keep]
        self.chain = chain(self.chain, transfer_lines(ids, debs, creds, amounts, codes,
                                                       intervals))
        n = len(self.acc_rows)
        self.debits = [a + b for a, b in zip(self.debits, exact_sums(debit, amounts, n),
                                              strict=True)]
        self.credits = [a + b for a, b in zip(self.credits, exact_sums(credit, amounts, n),
                                               strict=True)]
        self.moved = [a + b for a, b in zip(self.moved, exact_sums(
            self.unit[debit].astype(np.intp), amounts, len(self.moved)), strict=True)]
        self.n += m

    def _replay(self, debit: IntArray, credit: IntArray, amounts: Sequence[int],
                known: npt.NDArray[np.bool_]) -> dict[int, int]:
        """Running balances of the accounts that forbid a negative one: the rows
        where such an account was debited below zero, and the balance it went to."""
        out: dict[int, int] = {}
        if not self.running:
            return out
        running = self.running
        for r in np.flatnonzero(known & (self.forbid[debit] | self.forbid[credit])).tolist():
            d, c, a = int(debit[r]), int(credit[r]), amounts[r]
            if d in running:
                running[d] -= a
            if c in running:
                running[c] += a
            if d in running and running[d] < 0:
                out[r] = running[d]
        return out

    def _row_problems(self, r: int, seq: Any, tid: str, deb: str, cred: str, amount: Any,
                      known: bool, negative: int | None) -> None:
        where = f"transfer {tid!r} (seq {seq})"
        if seq != self.n + r + 1:
            self.problems.append(f"{where}: sequence gap, expected {self.n + r + 1}")
        if not known:
            self.problems.append(f"{where}: unknown account")
            return
        ud, uc = self.units[self.index[deb]], self.units[self.index[cred]]
        if ud != uc:
            self.problems.append(f"{where}: mixes units {ud} and {uc}")
        if amount <= 0:
            self.problems.append(f"{where}: amount {amount} is not positive")
        if negative is not None:
            self.problems.append(f"{where}: account {deb!r} forbids a negative balance "
                                 f"but went to {negative}")

    def report(self, seq: int, head: str) -> tuple[list[str], dict[str, int], str]:
        """The problems, the amounts moved per unit and the recomputed head."""
        problems = list(self.problems)
        if self.n != seq:
            problems.append(f"ledger_state counts {seq} transfers, table holds {self.n}")
        if self.chain.hex() != head:
            problems.append("hash chain of the transfers does not match the stored head")
        per_unit: dict[str, int] = {}
        for (aid, unit, _, d, c, _), dd, cc in zip(self.acc_rows, self.debits, self.credits,
                                                  strict=True):
            if d != dd or c != cc:
                problems.append(f"account {aid!r}: stored debits/credits {d}/{c} differ from "
                                f"its transfers {dd}/{cc}")
            per_unit[unit] = per_unit.get(unit, 0) + c - d
        problems += [f"unit {u}: balances sum to {v}, not 0 (debits != credits)"
                     for u, v in sorted(per_unit.items()) if v]
        totals = {str(u): v for u, v in zip(self.unit_names, self.moved, strict=True) if v}
        return problems, totals, self.chain.hex()
