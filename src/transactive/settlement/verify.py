"""Re-check a run's settlement from scratch (``transactive ledger verify RUN_DIR``).

A run folder holds the ledger as ``settlement.sqlite`` and the journal as
``journal.jsonl`` (:data:`LEDGER_FILE`, :data:`JOURNAL_FILE`).
:func:`verify_run` trusts neither: it re-checks the journal's hash chain and
every signature in it, recomputes the ledger's balances and hash chain from its
transfers (:meth:`~transactive.settlement.ledger.Ledger.check` with
``full=True``: every transfer read, in posting order), checks debits equal
credits per unit and that no account that forbids a negative balance ever had
one, checks the ledger has applied every accounts and transfers record of the
journal, and replays the journal into a fresh ledger whose state hash must
equal the ledger's.

The hash chain proves only that the journal was not changed *by someone who
did not recompute it*. What proves it is the operator's is the "operator
signature" check: every checkpoint record must be signed by the trusted
operator key (given, or the local one: :func:`~transactive.settlement.operator.trusted_operator`)
and name the record before it and its hash, and every record the ledger
applied must lie under a checkpoint. A journal rewritten by someone without
the key (a past record changed, the chain recomputed, the ledger rebuilt by
replay) fails it, as do checkpoints by another key, a checkpoint stripped off
and a journal with no checkpoint at all (unsigned).

It tells an interrupted run from a damaged one: a run stopped while it
settled (killed, a full disk) can leave the journal ahead of the ledger
(records written ahead but not committed) or a last journal record cut short;
records after the last checkpoint, beyond what the ledger applied, are
not yet attested; everything else checking out, the report says INTERRUPTED,
and :func:`recover_run` (``transactive ledger recover RUN_DIR``) signs a
checkpoint of what the journal holds with the operator's key, commits it (a
cut record is dropped: the ledger never committed it) and verifies again.
Anything else that fails (a broken hash chain or signature, a ledger that
does not add up, or one the journal does not reproduce, records the operator
did not attest) is FAILED, and nothing is recovered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transactive.errors import InputError
from transactive.settlement._signing import public_key_hex
from transactive.settlement.journal import (
    Journal,
    JournalReport,
    read_journal,
    replay_journal,
    verify_journal,
)
from transactive.settlement.ledger import Ledger, SettlementError
from transactive.settlement.operator import operator_key, trusted_operator

__all__ = ["JOURNAL_FILE", "LEDGER_FILE", "Check", "VerificationReport", "recover_run",
           "verify_run"]

LEDGER_FILE = "settlement.sqlite"
JOURNAL_FILE = "journal.jsonl"
_ATTESTED = "operator signature"
Trusted = Ed25519PublicKey | str | os.PathLike[str] | None


@dataclass(frozen=True)
class Check:
    """One named check and its outcome."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of :func:`verify_run`; ``str()`` renders it as a table."""

    run_dir: str
    checks: tuple[Check, ...]
    ledger_hash: str = ""
    replay_hash: str = ""
    interrupted: bool = False
    """The run stopped while it settled and nothing else is wrong:
    :func:`recover_run` brings it to a state that verifies."""

    @property
    def is_ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """OK, INTERRUPTED (recoverable) or FAILED."""
        return "OK" if self.is_ok else "INTERRUPTED" if self.interrupted else "FAILED"

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "ok": self.is_ok, "verdict": self.verdict,
                "ledger_hash": self.ledger_hash, "replay_hash": self.replay_hash,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                           for c in self.checks]}

    def __str__(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        verdict = self.verdict
        if self.interrupted:
            verdict += (" (stopped while it settled, nothing else wrong: "
                        f"`transactive ledger recover {self.run_dir}` finishes it)")
        lines = [f"settlement of {self.run_dir}: {verdict}"]
        lines += [f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}"
                  for c in self.checks]
        return "\n".join(lines)


def verify_run(run_dir: str | os.PathLike[str], trusted: Trusted = None) -> VerificationReport:
    """Re-check the ledger and journal of a run folder from scratch, its
    checkpoints against the ``trusted`` operator key (a key, 64 hex digits or
    a file holding them; default: the local operator key's public half, see
    :func:`~transactive.settlement.operator.trusted_operator`).

    Examples
    --------
    >>> import tempfile
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> from transactive.settlement import Journal, Settlement
    >>> key = Ed25519PrivateKey.generate()          # the operator's (operator_key())
    >>> run = Path(tempfile.mkdtemp())
    >>> with Journal(run / JOURNAL_FILE) as j, Ledger(run / LEDGER_FILE) as led:
    ...     s = Settlement(led, j, operator=key)
    ...     _ = s.settle_interval(0, None, ["a"], [1.5], retail_price_per_kwh=0.3,
    ...                           feed_in_price_per_kwh=0.05)
    >>> report = verify_run(run, trusted=key.public_key())
    >>> report.is_ok, [c.name for c in report.checks]  # doctest: +NORMALIZE_WHITESPACE
    (True, ['journal', 'operator signature', 'ledger integrity',
            'ledger applied the journal', 'replay'])
    >>> verify_run(run, trusted=Ed25519PrivateKey.generate().public_key()).verdict
    'FAILED'
    """
    operator = public_key_hex(trusted_operator(trusted))
    root = Path(run_dir)
    journal_path, ledger_path = root / JOURNAL_FILE, root / LEDGER_FILE
    checks: list[Check] = []
    jr = verify_journal(journal_path)
    # a last record cut short (no newline) is a write the ledger never committed
    torn = not jr.is_ok and jr.reason.startswith("incomplete last record")
    checks.append(Check("journal", jr.is_ok, str(jr).split(": ", 1)[1]))
    try:
        ledger = Ledger(ledger_path, create=False)
    except InputError as exc:
        checks.append(_attestation(jr, torn, operator, jr.n_records)[0])
        checks.append(Check("ledger integrity", False, exc.problem))
        return VerificationReport(str(root), tuple(checks))
    with ledger:
        integrity = ledger.check(full=True)
        totals = ", ".join(f"{u}: {v}" for u, v in sorted(integrity.totals.items()))
        detail = (f"{integrity.n_transfers} transfers, {integrity.n_accounts} accounts, "
                  f"debits = credits ({totals or 'nothing moved'})" if integrity.is_ok
                  else "; ".join(integrity.problems[:3]))
        checks.append(Check("ledger integrity", integrity.is_ok, detail))
        ledger_hash, cursor = integrity.state_hash, ledger.cursor
    attested, unattested_tail = _attestation(jr, torn, operator, cursor)
    checks.insert(1, attested)
    if not jr.is_ok and not (torn and jr.first_bad is not None and jr.first_bad > cursor):
        checks.append(Check("ledger applied the journal", False, "skipped: journal is bad"))
        checks.append(Check("replay", False, "skipped: journal is bad"))
        return VerificationReport(str(root), tuple(checks), ledger_hash)
    n_records = jr.n_records if jr.is_ok else (jr.first_bad or 1) - 1  # the sound ones
    try:
        pending = _journaled_after(journal_path, cursor, torn)
        replayed = replay_journal(journal_path, through=cursor if pending else n_records)
        replay_hash = replayed.state_hash()
        replayed.close()
    except (SettlementError, InputError) as exc:
        checks.append(Check("replay", False, str(exc)))
        return VerificationReport(str(root), tuple(checks), ledger_hash)
    checks.append(Check(
        "ledger applied the journal", cursor <= n_records and not pending,
        f"through record {cursor} of {n_records}" if not pending else
        f"records {pending[0]}..{pending[-1]} journaled but not committed"))
    same = replay_hash == ledger_hash
    checks.append(Check("replay", same, f"state hash {ledger_hash[:16]}... "
                        + (("reproduced" if not pending else
                            f"reproduced by the journal through record {cursor}") if same
                           else f"!= replayed {replay_hash[:16]}...")))
    interrupted = ((torn or bool(pending) or unattested_tail) and integrity.is_ok and same
                   and cursor <= n_records and (attested.ok or unattested_tail))
    return VerificationReport(str(root), tuple(checks), ledger_hash, replay_hash, interrupted)


def _attestation(jr: JournalReport, torn: bool, operator: str, cursor: int
                 ) -> tuple[Check, bool]:
    """The "operator signature" check of a journal whose checkpoints should be
    by ``operator`` (hex), and whether all it misses is a tail of records
    after the ledger's ``cursor`` (a run stopped before it signed them)."""
    if not jr.is_ok and not torn:
        return Check(_ATTESTED, False, "skipped: journal is bad"), False
    who = f"operator {operator[:8]}.."
    if not jr.checkpoints:
        return Check(_ATTESTED, False, f"unsigned: no checkpoint in the journal ({who} "
                     "trusted)"), False
    if jr.operator != operator:
        return Check(_ATTESTED, False, f"signed by operator {jr.operator[:8]}.., not the "
                     f"trusted {operator[:8]}.."), False
    n = jr.n_records
    detail = f"records 1..{jr.attested} attested by {who}; {jr.checkpoints} checkpoints"
    if jr.attested == n:
        return Check(_ATTESTED, True, detail), False
    if jr.attested < cursor:
        return Check(_ATTESTED, False, f"{detail}; records {jr.attested + 1}.."
                     f"{min(cursor, n)} applied to the ledger but not attested"), False
    return Check(_ATTESTED, False, f"{detail}; records {jr.attested + 1}..{n} not yet "
                 "attested"), True


def _journaled_after(path: Path, cursor: int, torn: bool) -> list[int]:
    """The sequence numbers of the journal's accounts and transfers records
    after record ``cursor`` (the ledger's), but a last one cut short (``torn``)."""
    pending = []
    try:
        for rec in read_journal(path):
            if rec.seq > cursor and rec.kind in ("accounts", "transfers"):
                pending.append(rec.seq)
    except SettlementError:
        if not torn:
            raise
    return pending


def recover_run(run_dir: str | os.PathLike[str], trusted: Trusted = None, *,
                key: Ed25519PrivateKey | None = None
                ) -> tuple[VerificationReport, VerificationReport]:
    """Finish the settlement of a run folder that was interrupted while it
    settled (see the module's docstring): drop a journal record cut short,
    sign a checkpoint of the records after the last one with the operator's
    ``key`` (default: the local one, :func:`~transactive.settlement.operator.operator_key`),
    commit the records the journal holds beyond the ledger, and verify again
    (against ``trusted``, default ``key``'s public half; see :func:`verify_run`).
    Returns the reports before and after; a folder that verifies is left as it
    is, and one that is damaged otherwise is refused
    (:class:`~transactive.settlement.ledger.SettlementError`), unchanged, as
    is one that ``key`` may not sign (not the trusted operator's).

    Examples
    --------
    >>> import tempfile
    >>> from transactive.settlement import Account, AccountKind, Settlement, Unit
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.generate()
    >>> run = Path(tempfile.mkdtemp())
    >>> with Journal(run / JOURNAL_FILE) as j, Ledger(run / LEDGER_FILE) as led:
    ...     s = Settlement(led, j, operator=key)
    ...     _ = s.settle_interval(0, None, ["a"], [1.5], retail_price_per_kwh=0.3,
    ...                           feed_in_price_per_kwh=0.05)
    ...     _ = j.append_accounts([Account("extra", AccountKind.MARKET, Unit.CENT)])
    >>> verify_run(run, key.public_key()).verdict   # journaled, never committed nor signed
    'INTERRUPTED'
    >>> before, after = recover_run(run, key=key)
    >>> after.verdict
    'OK'
    """
    root = Path(run_dir)
    operator = trusted_operator(key.public_key() if trusted is None and key is not None
                                else trusted)
    before = verify_run(root, operator)
    if before.is_ok:
        return before, before
    if not before.interrupted:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in before.checks if not c.ok)
        raise SettlementError(f"{root} is damaged, not interrupted ({failed}): nothing "
                              "recovered")
    signer = None
    if not next(c.ok for c in before.checks if c.name == _ATTESTED):
        signer = key if key is not None else operator_key()
        if public_key_hex(signer) != public_key_hex(operator):
            raise SettlementError(f"the operator key {public_key_hex(signer)[:8]}.. is not the "
                                  f"trusted operator {public_key_hex(operator)[:8]}..: only "
                                  "the trusted operator can attest the records: nothing "
                                  "recovered")
    # opening the journal drops a last record cut short; the records after the
    # last checkpoint are signed before the ledger takes the records after its
    # cursor, each committed with its sequence number
    with Journal(root / JOURNAL_FILE) as journal, \
            Ledger(root / LEDGER_FILE, create=False) as ledger:
        if signer is not None and not journal.at_checkpoint:
            journal.checkpoint(signer)
        replay_journal(journal.path, ledger, after=ledger.cursor)
    return before, verify_run(root, operator)
