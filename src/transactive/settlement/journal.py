"""An append-only, hash-chained journal of everything settlement accepts.

The journal is a text file with one JSON record per line (``journal.jsonl`` in a
run folder)::

    {"body":{...},"hash":"<64 hex>","kind":"orders","prev":"<64 hex>","seq":12}

- ``seq`` counts records from 1; ``prev`` is the previous record's ``hash``
  (64 zeros for the first);
- ``hash = sha256(bytes.fromhex(prev) || {"body":B,"kind":K,"prev":P,"seq":N})``
  over the record's own bytes without the ``hash`` field, so a change to any byte
  of a line breaks that line's hash, and removing, reordering or inserting lines
  breaks ``prev`` or ``seq``;
- records are written canonically (sorted keys, no spaces, ASCII only).

Kinds of record and their bodies:

``keys``       ``{"role": "participant"|"meter", "keys": [[owner, pubkey_hex], ...]}``
``orders``     ``{"interval", "orders": {column: [...]}, "signatures": [hex, ...]}``
``readings``   ``{"readings": [[meter_id, interval, energy_wh, nonce, timestamp_ms, sig], ...]}``
``clearing``   ``{"interval", "mechanism", "clearing_price", "order_id", "participant",
               "side", "accepted", "payment"[, "node", "node_price"]}``
``accounts``   ``{"accounts": [[id, kind, unit, allow_negative], ...]}``
``transfers``  ``{"amount": [...], "code": [...], "credit": [...], "debit": [...],
               "id": [...], "interval": [...], "sizes": [n, ...]}``
``commands``   ``{"commands": [[participant, nonce, expires_ms, at_ms, action, payload,
               signature], ...]}``: commands the live exchange accepted, each signed
               by its participant (:func:`~transactive.settlement._signing.command_message`)
``events``     ``{"events": [[action, payload, at_ms], ...]}``: what the exchange's
               operator did (a gate closed, trading halted, a participant admitted)
``checkpoint`` ``{"seq": N, "head": "<64 hex>", "operator": pubkey_hex, "signature": hex}``:
               the operator attests the journal through record ``N``

A ``transfers`` body holds linked groups of transfers as columns: transfer ``i``
is ``[id[i], debit[i], credit[i], amount[i], code[i], interval[i]]`` (strings,
and integers for amount and interval), and the groups are consecutive runs of
``sizes`` transfers, in posting order. Journals written before the columns hold
the same as ``{"groups": [[[id, debit, credit, amount, code, interval], ...],
...]}``; every reader here reads both.

Orders and readings carry Ed25519 signatures that are verified against keys
registered earlier in the same journal *before* they are accepted, and again by
:func:`verify_journal`.

A ``checkpoint`` covers the record just before it: ``seq`` and ``head`` are
that record's sequence number and hash, and ``signature`` is the Ed25519
signature of ``canonical(["transactive.checkpoint.v1", seq, head])``
(:func:`~transactive.settlement._signing.checkpoint_message`) by the operator
key ``operator`` names. Whoever holds the file can recompute the hash chain
after changing a record, but cannot sign a checkpoint without the operator's
private key, which is kept apart from the data
(:mod:`~transactive.settlement.operator`): a record a checkpoint covers cannot
be changed unseen. Records after the last checkpoint are not yet attested
(:attr:`JournalReport.attested`). Accounts and transfers records are written ahead of the
ledger commit they describe (write-ahead), so :func:`replay_journal` rebuilds
the ledger exactly, and a ledger that crashed before committing is brought up to
date by replaying the records after its :attr:`~Ledger.cursor`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement._integrity import plain
from transactive.settlement._signing import (
    canonical,
    checkpoint_message,
    command_message,
    order_messages,
    public_key,
    public_key_hex,
    verifies,
    verify_many,
)
from transactive.settlement.ledger import (
    Account,
    AccountKind,
    Ledger,
    SettlementError,
    Transfer,
    TransferBatch,
    Unit,
)
from transactive.settlement.oracle import MeterReading

__all__ = [
    "Journal",
    "JournalRecord",
    "JournalReport",
    "OrderAcceptance",
    "read_journal",
    "replay_journal",
    "transfer_batch",
    "verify_journal",
]

GENESIS = "0" * 64
KINDS = ("keys", "orders", "readings", "clearing", "accounts", "transfers", "commands",
         "events", "checkpoint")
_LINE = re.compile(
    rb'^\{"body":(.*),"hash":"([0-9a-f]{64})","kind":"([a-z]{1,16})",'
    rb'"prev":"([0-9a-f]{64})","seq":([1-9][0-9]{0,17})\}$', re.DOTALL)


@dataclass(frozen=True)
class JournalRecord:
    """One parsed journal record."""

    seq: int
    kind: str
    prev: str
    hash: str
    body_bytes: bytes

    @cached_property
    def body(self) -> dict[str, Any]:
        """The record's body, parsed (ValueError if it is not a JSON object)."""
        try:
            body = json.loads(self.body_bytes)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValueError("body is not a JSON object")
        return body


@dataclass(frozen=True)
class JournalReport:
    """The outcome of :func:`verify_journal`.

    ``first_bad`` is the sequence number (1-based line number) of the first
    record that fails, ``reason`` says why; both are ``None``/empty when the
    journal is sound. Of the records before it, ``checkpoints`` are signed by
    ``operator`` (public key, hex), the last of them record ``attested``:
    records ``1..attested`` are attested, later ones not yet (0: none is).
    """

    path: str
    n_records: int
    head: str
    first_bad: int | None = None
    reason: str = ""
    counts: tuple[tuple[str, int], ...] = ()
    operator: str = ""
    checkpoints: int = 0
    attested: int = 0

    @property
    def is_ok(self) -> bool:
        return self.first_bad is None

    def __str__(self) -> str:
        if self.is_ok:
            return f"journal {self.path}: {self.n_records} records, chain and signatures ok"
        return f"journal {self.path}: record {self.first_bad} is bad: {self.reason}"


@dataclass(frozen=True)
class OrderAcceptance:
    """Orders after signature checks: the accepted batch, and why others were refused."""

    accepted: OrderBatch
    refused_rows: npt.NDArray[np.int64]
    reasons: tuple[str, ...]
    record: int | None


def _record_bytes(body: bytes, kind: str, prev: str, seq: int) -> bytes:
    return b'{"body":%s,"kind":"%s","prev":"%s","seq":%d}' % (body, kind.encode(),
                                                                prev.encode(), seq)


def _hash(prev: str, unsigned: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + unsigned).hexdigest()


def _line(body: bytes, kind: str, prev: str, seq: int, digest: str) -> bytes:
    return b'{"body":%s,"hash":"%s","kind":"%s","prev":"%s","seq":%d}\n' % (
        body, digest.encode(), kind.encode(), prev.encode(), seq)


class _Chain:
    """Walks raw lines, checking format and hash chain; knows the registered keys."""

    def __init__(self, operator: str = "") -> None:
        self.seq = 0
        self.head = GENESIS
        self.kind = ""  # the last record's
        self.operator = operator  # who signs the checkpoints (hex), once known
        self.checkpoints = 0
        self.attested = 0  # the last checkpoint
        self.keys: dict[str, dict[str, Ed25519PublicKey]] = {"participant": {}, "meter": {}}
        self.nonces: dict[str, set[int]] = {}
        # the exchange's commands: per participant, nonce -> expires_ms of the
        # commands not yet expired (a nonce may come back once its command expired)
        self.command_nonces: dict[str, dict[int, int]] = {}

    def nonce_fresh(self, participant: str, nonce: int, at_ms: int) -> bool:
        """Whether ``nonce`` is unused among ``participant``'s commands unexpired at ``at_ms``."""
        return self.command_nonces.get(participant, {}).get(nonce, -1) < at_ms

    def use_nonce(self, participant: str, nonce: int, expires_ms: int, at_ms: int) -> None:
        """Remember a command's nonce until it expires."""
        used = self.command_nonces.setdefault(participant, {})
        if len(used) % 1024 == 1023:  # forget the expired ones now and then
            for n in [n for n, e in used.items() if e < at_ms]:
                del used[n]
        used[nonce] = expires_ms

    def parse(self, raw: bytes) -> JournalRecord:
        """Check one line (without its newline) and advance; raise ValueError if bad."""
        m = _LINE.match(raw)
        if m is None:
            raise ValueError("not a well-formed record line")
        body_raw, digest, kind_raw, prev, seq_raw = m.groups()
        kind, seq = kind_raw.decode(), int(seq_raw)
        if seq != self.seq + 1:
            raise ValueError(f"sequence number {seq}, expected {self.seq + 1}")
        if prev.decode() != self.head:
            raise ValueError("prev does not match the previous record's hash")
        if _hash(self.head, _record_bytes(body_raw, kind, self.head, seq)) != digest.decode():
            raise ValueError("hash does not match the record's bytes")
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        self.seq, self.head, self.kind = seq, digest.decode(), kind
        return JournalRecord(seq, kind, prev.decode(), self.head, body_raw)

    def learn(self, rec: JournalRecord) -> None:
        """Remember keys and nonces a writer needs (no signature checks)."""
        if rec.kind == "keys":
            role = self.keys[rec.body["role"]]
            for owner, key in rec.body["keys"]:
                role[str(owner)] = public_key(key)
        elif rec.kind == "readings":
            for row in rec.body["readings"]:
                self.nonces.setdefault(row[0], set()).add(row[3])
        elif rec.kind == "commands":
            for participant, nonce, expires_ms, at_ms, *_ in rec.body["commands"]:
                self.use_nonce(str(participant), nonce, expires_ms, at_ms)


def _check_content(chain: _Chain, rec: JournalRecord, workers: int | None) -> None:
    """Check a record's content and signatures; raise ValueError naming the problem."""
    b = rec.body
    try:
        if rec.kind == "keys":
            if b["role"] not in chain.keys:
                raise ValueError(f"unknown key role {b['role']!r}")
            known = chain.keys[b["role"]]
            for owner, key in b["keys"]:
                if not isinstance(owner, str | int):
                    raise ValueError(f"bad key owner {owner!r}")
                old = known.get(str(owner))
                if old is not None and public_key_hex(old) != public_key_hex(public_key(key)):
                    raise ValueError(f"{b['role']} {owner!r} already has a different key")
        elif rec.kind == "orders":
            cols: dict[str, Any] = {k: np.asarray(v) for k, v in b["orders"].items()}
            orders = OrderBatch(**cols)
            ok = _verify_orders(chain, int(b["interval"]), orders,
                                [bytes.fromhex(s) for s in b["signatures"]], workers)
            if not ok.all():
                raise ValueError(f"order row {int(np.flatnonzero(~ok)[0])}: "
                                 "signature does not verify")
        elif rec.kind == "readings":
            readings = [MeterReading.from_row(r) for r in b["readings"]]
            keys = chain.keys["meter"]
            ok = verify_many([keys.get(r.meter_id) for r in readings],
                             [r.message() for r in readings],
                             [r.signature for r in readings], workers=workers)
            if not ok.all():
                raise ValueError(f"reading row {int(np.flatnonzero(~ok)[0])}: "
                                 "signature does not verify")
            for row, r in enumerate(readings):
                used = chain.nonces.setdefault(r.meter_id, set())
                if r.nonce in used:
                    raise ValueError(f"reading row {row}: nonce {r.nonce} of meter "
                                     f"{r.meter_id!r} was used before (replay)")
                used.add(r.nonce)
        elif rec.kind == "accounts":
            for row in b["accounts"]:
                _account_from_row(row)
        elif rec.kind == "transfers":
            transfer_batch(b).check()
        elif rec.kind == "commands":
            _check_commands(chain, b["commands"], workers)
        elif rec.kind == "events":
            if not all(isinstance(e, list) and len(e) == 3 and isinstance(e[0], str)
                       for e in b["events"]):
                raise ValueError("events must be [action, payload, at_ms] rows")
        elif rec.kind == "clearing":
            n = len(b["order_id"])
            if any(len(b[c]) != n for c in ("participant", "side", "accepted", "payment")):
                raise ValueError("clearing columns differ in length")
        elif rec.kind == "checkpoint":
            _check_checkpoint(chain, rec)
    except InputError as exc:
        raise ValueError(f"malformed {rec.kind} body: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed {rec.kind} body: {exc!r}") from None
    if rec.kind == "keys":
        chain.learn(rec)


def _check_commands(chain: _Chain, rows: Sequence[Any], workers: int | None) -> None:
    """Signatures of the exchange's commands and their nonces (no replay)."""
    keys = chain.keys["participant"]
    messages, signatures = [], []
    for row in rows:
        participant, nonce, expires_ms, at_ms, action, payload, sig = row
        messages.append(command_message(participant, nonce, expires_ms, action, payload))
        signatures.append(bytes.fromhex(sig))
    ok = verify_many([keys.get(str(r[0])) for r in rows], messages, signatures,
                     workers=workers)
    if not ok.all():
        raise ValueError(f"command row {int(np.flatnonzero(~ok)[0])}: "
                         "signature does not verify")
    for i, (participant, nonce, expires_ms, at_ms, *_) in enumerate(rows):
        if at_ms > expires_ms:
            raise ValueError(f"command row {i}: accepted after it expired")
        if not chain.nonce_fresh(str(participant), nonce, at_ms):
            raise ValueError(f"command row {i}: nonce {nonce} of {participant!r} "
                             "was used before (replay)")
        chain.use_nonce(str(participant), nonce, expires_ms, at_ms)


def _check_checkpoint(chain: _Chain, rec: JournalRecord) -> None:
    """A checkpoint covers the record before it, signed by the journal's
    operator (the trusted one, else the signer of its first checkpoint)."""
    b = rec.body
    if set(b) != {"seq", "head", "operator", "signature"}:
        raise ValueError(f"unexpected keys {sorted(b)}")
    if type(b["seq"]) is not int or b["seq"] != rec.seq - 1 or b["head"] != rec.prev:
        raise ValueError(f"checkpoint of record {b['seq']!r} does not match the chain "
                         f"(it must name record {rec.seq - 1} and its hash)")
    signer = public_key(b["operator"], "operator")
    operator = public_key_hex(signer)
    if chain.operator and operator != chain.operator:
        raise ValueError(f"checkpoint signed by operator {operator[:8]}.., not "
                         f"{chain.operator[:8]}.. (the journal's operator)")
    if not isinstance(b["signature"], str) or not verifies(
            signer, checkpoint_message(b["seq"], b["head"]), b["signature"]):
        raise ValueError("checkpoint signature does not verify")
    chain.operator = operator
    chain.checkpoints += 1
    chain.attested = rec.seq


def _account_from_row(row: Sequence[Any]) -> Account:
    aid, kind, unit, allow_negative = row
    return Account(aid, AccountKind(kind), Unit(unit), bool(allow_negative))


def _transfer_from_row(row: Sequence[Any]) -> Transfer:
    tid, debit, credit, amount, code, interval = row
    if not isinstance(amount, int) or not isinstance(interval, int):
        raise ValueError(f"transfer {tid!r}: amount and interval must be integers")
    return Transfer(tid, debit, credit, amount, code, interval)


_COLUMNS = ("id", "debit", "credit", "amount", "code", "interval")


def transfer_batch(body: Mapping[str, Any]) -> TransferBatch:
    """The transfers of a ``transfers`` record's body, either format (not yet
    checked as the ledger checks them: :meth:`TransferBatch.check`); ValueError
    if the body is not one."""
    if "groups" in body:  # written before the columns
        return TransferBatch.from_groups([[_transfer_from_row(r) for r in g]
                                          for g in body["groups"]])
    if set(body) != {*_COLUMNS, "sizes"}:
        raise ValueError(f"unexpected keys {sorted(body)}")
    cols = [body[c] for c in _COLUMNS]
    if not all(isinstance(c, list) for c in cols):
        raise ValueError("columns must be lists")
    for name in ("amount", "interval", "sizes"):
        if not all(type(v) is int for v in body[name]):
            raise ValueError(f"{name} must be integers")
    try:
        return TransferBatch(*(np.array(c, dtype=object) if k not in (3, 5) else
                               np.array(c, dtype=np.int64) for k, c in enumerate(cols)),
                             sizes=np.array(body["sizes"], dtype=np.int64))
    except OverflowError:
        raise ValueError("an integer does not fit 64 bits") from None


def _strings(col: list[str]) -> bytes:
    return b'["' + '","'.join(col).encode() + b'"]' if col else b"[]"


def _integers(col: list[int]) -> bytes:
    return b"[" + ",".join(map(str, col)).encode() + b"]"


def _transfers_body(batch: TransferBatch) -> bytes:
    """The canonical bytes of a checked batch's ``transfers`` body, written
    column by column when no string needs escaping (the same bytes as
    :func:`~transactive.settlement._signing.canonical` of the columns)."""
    ids, debits, credits, amounts, codes, intervals = batch.columns()
    sizes = batch.sizes.tolist()
    if not all(plain("".join(c)) for c in (ids, debits, credits, codes)):
        return canonical({"amount": amounts, "code": codes, "credit": credits,
                          "debit": debits, "id": ids, "interval": intervals, "sizes": sizes})
    return b"".join((b'{"amount":', _integers(amounts), b',"code":', _strings(codes),
                     b',"credit":', _strings(credits), b',"debit":', _strings(debits),
                     b',"id":', _strings(ids), b',"interval":', _integers(intervals),
                     b',"sizes":', _integers(sizes), b"}"))


def _verify_orders(chain: _Chain, interval: int, orders: OrderBatch,
                   signatures: Sequence[bytes], workers: int | None) -> npt.NDArray[np.bool_]:
    keys = chain.keys["participant"]
    return verify_many([keys.get(str(p)) for p in orders.participant.tolist()],
                       order_messages(interval, orders), signatures, workers=workers)


def _lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """Raw lines without their newline, and whether the newline was there."""
    with path.open("rb") as fh:
        for raw in fh:
            if raw.endswith(b"\n"):
                yield raw[:-1], True
            else:
                yield raw, False


def verify_journal(path: str | os.PathLike[str], *, workers: int | None = None,
                   trusted: Ed25519PublicKey | None = None) -> JournalReport:
    """Re-check a journal from its first byte: format, hash chain, record
    contents and every signature (against keys registered earlier in it);
    every checkpoint must be signed by the ``trusted`` operator key (default:
    by the signer of the first, :attr:`JournalReport.operator`).

    Stops at the first bad record and names it (``first_bad``, ``reason``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "journal.jsonl"
    >>> with Journal(path) as j:
    ...     _ = j.append_transfers([])
    >>> verify_journal(path).is_ok
    True
    >>> data = bytearray(path.read_bytes()); data[10] ^= 1; _ = path.write_bytes(data)
    >>> verify_journal(path).first_bad
    1
    """
    file = Path(path)
    if not file.is_file():
        return JournalReport(str(file), 0, GENESIS, 1, "no journal file")
    chain = _Chain("" if trusted is None else public_key_hex(trusted))
    counts: dict[str, int] = {}
    for n, (raw, complete) in enumerate(_lines(file), start=1):
        try:
            if not complete:
                raise ValueError("incomplete last record (no newline; a torn write?)")
            rec = chain.parse(raw)
            _check_content(chain, rec, workers)
        except ValueError as exc:
            return JournalReport(str(file), n - 1, chain.head, n, str(exc),
                                 tuple(sorted(counts.items())), chain.operator,
                                 chain.checkpoints, chain.attested)
        counts[rec.kind] = counts.get(rec.kind, 0) + 1
    return JournalReport(str(file), chain.seq, chain.head, None, "",
                         tuple(sorted(counts.items())), chain.operator, chain.checkpoints,
                         chain.attested)


def read_journal(path: str | os.PathLike[str]) -> Iterator[JournalRecord]:
    """The records of a journal in order (hash chain checked, signatures not);
    raises :class:`SettlementError` at a bad record."""
    chain = _Chain()
    for n, (raw, complete) in enumerate(_lines(Path(path)), start=1):
        try:
            if not complete:
                raise ValueError("incomplete last record (no newline; a torn write?)")
            yield chain.parse(raw)
        except ValueError as exc:
            raise SettlementError(f"journal {path}: record {n} is bad: {exc}") from None


def replay_journal(path: str | os.PathLike[str], ledger: Ledger | None = None, *,
                   after: int = 0, through: int | None = None) -> Ledger:
    """Apply the accounts and transfers records after record ``after`` (and
    up to record ``through``, if given) to a ledger (a new in-memory one by
    default), each with its sequence number as the ledger's cursor, exactly as
    they were first posted. Returns the ledger."""
    target = ledger if ledger is not None else Ledger(":memory:")
    if through is not None and through <= after:
        return target
    for rec in read_journal(path):
        if rec.seq > after:
            _apply_record(path, target, rec)
        if through is not None and rec.seq >= through:
            break  # not read past it: a record cut short may follow
    return target


def _apply_record(path: str | os.PathLike[str], target: Ledger, rec: JournalRecord) -> None:
    """An accounts or transfers record applied to ``target`` (others ignored)."""
    if rec.kind == "accounts":
        target.create_accounts([_account_from_row(r) for r in rec.body["accounts"]],
                               cursor=rec.seq)
    elif rec.kind == "transfers":
        try:
            batch = transfer_batch(rec.body)
        except ValueError as exc:
            raise SettlementError(f"journal {path}: record {rec.seq} is bad: {exc}") from None
        target.post_batches(batch, cursor=rec.seq)


class Journal:
    """The writer of a journal file (one writer at a time: the file is locked).

    Opening an existing journal checks its hash chain; a last line cut short by
    a crash (no newline) is removed, since the ledger never committed what it
    described; any other damage raises :class:`SettlementError`.

    Parameters
    ----------
    path : path
        The journal file (created if missing).
    fsync : bool
        Force every record to disk before ``append_*`` returns (default). With
        ``False`` call :meth:`sync` yourself before committing to the ledger.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> from transactive.settlement._signing import sign_orders
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "a"], side=["buy", "sell"],
    ...                 price=[0.2, 0.1], quantity=[1.0, 2.0])
    >>> sigs = sign_orders(5, ob, {"a": key})
    >>> sigs[1] = sigs[0]                                 # a forged signature
    >>> with Journal(pathlib.Path(tempfile.mkdtemp()) / "j.jsonl") as j:
    ...     _ = j.register_participants({"a": key.public_key()})
    ...     got = j.accept_orders(5, ob, sigs)
    >>> got.accepted.id.tolist(), got.reasons
    ([1], ('signature does not verify',))
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab+")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise SettlementError(f"journal {self.path} is open in another process") from None
        self._chain = _Chain()
        self.truncated_tail = False
        self._syncing: threading.Thread | None = None  # the last sync_later's thread
        try:
            self._load()
        except BaseException:
            self._fh.close()
            raise

    def _load(self) -> None:
        good = 0
        for n, (raw, complete) in enumerate(_lines(self.path), start=1):
            if not complete:
                self._fh.truncate(good)
                os.fsync(self._fh.fileno())
                self.truncated_tail = True
                break
            try:
                self._chain.learn(self._chain.parse(raw))
            except ValueError as exc:
                raise SettlementError(f"journal {self.path}: record {n} is bad: {exc}") from None
            good += len(raw) + 1

    # ----------------------------------------------------------------- state
    @property
    def seq(self) -> int:
        """Number of records (the sequence number of the last one)."""
        return self._chain.seq

    @property
    def head(self) -> str:
        """Hash of the last record."""
        return self._chain.head

    @property
    def at_checkpoint(self) -> bool:
        """Whether the last record is a checkpoint (nothing was written after it)."""
        return self._chain.kind == "checkpoint"

    def close(self) -> None:
        if self._syncing is not None:
            self._syncing.join()  # never close the file under a running fsync
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync(self) -> None:
        """Force the records written so far to disk."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def sync_later(self) -> Callable[[], None]:
        """Start forcing the records written so far to disk on another thread
        and return the call that waits for it (raising what it raised; later
        calls do nothing): work can go on meanwhile, such as a ledger
        transaction that must not commit before its journal records are on disk.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with Journal(pathlib.Path(tempfile.mkdtemp()) / "j.jsonl", fsync=False) as j:
        ...     _ = j.append_transfers([])
        ...     wait = j.sync_later()
        ...     wait()          # the record is on disk
        """
        self._fh.flush()
        fd, failed = self._fh.fileno(), list[BaseException]()

        def work() -> None:
            try:
                os.fsync(fd)
            except BaseException as exc:  # handed to the waiting thread
                failed.append(exc)

        thread = threading.Thread(target=work, name="journal-fsync", daemon=True)
        thread.start()
        self._syncing = thread

        def wait() -> None:
            if thread.is_alive() or failed:
                thread.join()
                if failed:
                    raise failed.pop()

        return wait

    @contextmanager
    def group(self, *, sync: bool = True) -> Iterator[None]:
        """Append several records and force them to disk once, when the block
        ends (with ``sync=False`` the caller does, e.g. with :meth:`sync_later`)."""
        fsync, self._fsync = self._fsync, False
        try:
            yield
        finally:
            self._fsync = fsync
        if sync:
            self.sync()

    # ----------------------------------------------------------------- writing
    def append(self, kind: str, body: Mapping[str, Any]) -> int:
        """Append one record; returns its sequence number. Prefer the typed
        ``append_*`` methods, which check what they journal."""
        if kind not in KINDS or kind == "checkpoint":
            raise InputError("kind", f"must be one of {', '.join(KINDS[:-1])}, got {kind!r} "
                             "(checkpoints: Journal.checkpoint)")
        try:
            body_bytes = canonical(dict(body))
        except (TypeError, ValueError) as exc:
            raise InputError("body", f"cannot be journaled as JSON: {exc}") from None
        return self._append(kind, body_bytes)

    def _append(self, kind: str, body_bytes: bytes) -> int:
        seq, prev = self._chain.seq + 1, self._chain.head
        digest = _hash(prev, _record_bytes(body_bytes, kind, prev, seq))
        self._fh.write(_line(body_bytes, kind, prev, seq, digest))
        if self._fsync:
            self.sync()
        self._chain.seq, self._chain.head, self._chain.kind = seq, digest, kind
        return seq

    def checkpoint(self, key: Ed25519PrivateKey) -> int:
        """Sign the journal so far with the operator's ``key``: append a
        ``checkpoint`` of the last record (see the module docstring); returns
        its sequence number.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "j.jsonl"
        >>> with Journal(path) as j:
        ...     _ = j.append_transfers([])
        ...     _ = j.checkpoint(key)
        >>> report = verify_journal(path, trusted=key.public_key())
        >>> report.is_ok, report.checkpoints, report.attested
        (True, 1, 2)
        """
        seq, head = self.seq, self.head
        return self._append("checkpoint", canonical({
            "head": head, "operator": public_key_hex(key), "seq": seq,
            "signature": key.sign(checkpoint_message(seq, head)).hex()}))

    def _register(self, role: str, keys: Mapping[Any, Ed25519PublicKey | bytes | str]) -> int:
        known = self._chain.keys[role]
        new: list[list[Any]] = []
        for owner, key in keys.items():
            if not isinstance(owner, str | int | np.integer) or isinstance(owner, bool):
                raise InputError("owner", f"must be a label (str or int), got {owner!r}")
            pub = public_key(key, "key")
            old = known.get(str(owner))
            if old is not None and public_key_hex(old) != public_key_hex(pub):
                raise InputError("key", f"{role} {owner!r} already has a different key")
            if old is None:
                new.append([owner.item() if isinstance(owner, np.integer) else owner,
                            public_key_hex(pub)])
        if not new:
            return self.seq
        seq = self.append("keys", {"role": role, "keys": new})
        for owner, key_hex in new:
            known[str(owner)] = public_key(key_hex)
        return seq

    def register_participants(self, keys: Mapping[Any, Ed25519PublicKey | bytes | str]) -> int:
        """Journal the public keys that sign participants' orders."""
        return self._register("participant", keys)

    def register_meters(self, keys: Mapping[str, Ed25519PublicKey | bytes | str]) -> int:
        """Journal the public keys that sign meter readings."""
        return self._register("meter", keys)

    def accept_orders(self, interval: int, orders: OrderBatch, signatures: Sequence[bytes], *,
                      workers: int | None = None) -> OrderAcceptance:
        """Verify each order's signature (by its participant's registered key);
        journal the orders that verify, with their signatures, and return them.

        Orders of participants without a key, or whose signature does not
        verify, are refused (and not journaled).
        """
        if len(signatures) != len(orders):
            raise InputError("signatures", f"expected {len(orders)}, got {len(signatures)}")
        sigs = [bytes(s) for s in signatures]
        ok = _verify_orders(self._chain, int(interval), orders, sigs, workers)
        refused = np.flatnonzero(~ok)
        keys = self._chain.keys["participant"]
        reasons = tuple("no key registered for participant"
                        if str(orders.participant[i]) not in keys
                        else "signature does not verify" for i in refused)
        if ok.all():
            accepted = orders
        else:
            accepted = orders.take(ok)
            sigs = [s for s, good in zip(sigs, ok, strict=True) if good]
        record = None
        if len(accepted):
            frame = accepted.to_frame()
            frame["side"] = accepted.side.astype(np.int64)
            cols = {c: frame[c].tolist() for c in frame.columns}
            record = self.append("orders", {"interval": int(interval), "orders": cols,
                                            "signatures": [s.hex() for s in sigs]})
        return OrderAcceptance(accepted, refused.astype(np.int64), reasons, record)

    def append_readings(self, readings: Sequence[MeterReading]) -> int:
        """Journal meter readings, after checking each signature against the
        meter's registered key and that no nonce repeats."""
        keys = self._chain.keys["meter"]
        ok = verify_many([keys.get(r.meter_id) for r in readings],
                         [r.message() for r in readings], [r.signature for r in readings])
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            raise InputError("readings", "signature does not verify (or unknown meter)", row=row)
        seen: set[tuple[str, int]] = set()
        for row, r in enumerate(readings):
            if r.nonce in self._chain.nonces.get(r.meter_id, ()) or (r.meter_id, r.nonce) in seen:
                raise InputError("readings", f"nonce {r.nonce} of meter {r.meter_id!r} "
                                 "was used before", row=row)
            seen.add((r.meter_id, r.nonce))
        seq = self.append("readings", {"readings": [r.to_row() for r in readings]})
        for meter_id, nonce in seen:
            self._chain.nonces.setdefault(meter_id, set()).add(nonce)
        return seq

    def append_clearing(self, interval: int, clearing: Clearing) -> int:
        """Journal the outcome of one clearing (accepted quantities and payments)."""
        o = clearing.orders
        body: dict[str, Any] = {
            "interval": int(interval),
            "mechanism": clearing.mechanism,
            "clearing_price": (clearing.clearing_price
                               if np.isfinite(clearing.clearing_price) else None),
            "order_id": o.id.tolist(),
            "participant": o.participant.tolist(),
            "side": o.side.astype(np.int64).tolist(),
            "accepted": clearing.accepted.tolist(),
            "payment": clearing.payment.tolist(),
        }
        if o.node is not None:
            body["node"] = o.node.tolist()
        if clearing.node_price is not None:
            body["node_price"] = [p if np.isfinite(p) else None
                                  for p in clearing.node_price.tolist()]
        return self.append("clearing", body)

    def append_commands(self, rows: Sequence[Sequence[Any]]) -> int:
        """Journal commands the live exchange accepted, as rows ``[participant,
        nonce, expires_ms, at_ms, action, payload, signature_hex]``. The caller
        has verified each signature (:func:`verify_journal` re-checks them);
        here a nonce used by an unexpired command of the same participant is
        refused (InputError, nothing written)."""
        seen: set[tuple[str, int]] = set()
        for i, (participant, nonce, expires_ms, at_ms, *_) in enumerate(rows):
            if at_ms > expires_ms:
                raise InputError("commands", "accepted after it expired", row=i)
            if not self.nonce_fresh(participant, nonce, at_ms) or (participant, nonce) in seen:
                raise InputError("nonce", f"nonce {nonce} of {participant!r} was used "
                                 "before (replay)", row=i)
            seen.add((participant, nonce))
        seq = self.append("commands", {"commands": [list(r) for r in rows]})
        for participant, nonce, expires_ms, at_ms, *_ in rows:
            self._chain.use_nonce(str(participant), nonce, expires_ms, at_ms)
        return seq

    def nonce_fresh(self, participant: str, nonce: int, at_ms: int) -> bool:
        """Whether ``participant`` may use ``nonce`` at ``at_ms`` (no unexpired
        journaled command of theirs has it)."""
        return self._chain.nonce_fresh(str(participant), nonce, at_ms)

    def append_events(self, events: Sequence[tuple[str, Mapping[str, Any], int]]) -> int:
        """Journal what the exchange's operator did: ``(action, payload, at_ms)``."""
        return self.append("events", {"events": [[a, dict(p), int(t)] for a, p, t in events]})

    def append_accounts(self, accounts: Iterable[Account]) -> int:
        """Journal accounts about to be created in the ledger (write-ahead)."""
        return self.append("accounts", {"accounts": [list(a.row()) for a in accounts]})

    def append_transfers(self, groups: TransferBatch | Iterable[Iterable[Transfer]]) -> int:
        """Journal linked groups of transfers about to be posted (write-ahead),
        lists of transfers or a :class:`~transactive.settlement.ledger.TransferBatch`,
        checked first as the ledger will check them (InputError, nothing written)."""
        batch = groups if isinstance(groups, TransferBatch) else TransferBatch.from_groups(groups)
        return self._append("transfers", _transfers_body(batch.check()))
