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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transactive.errors import InputError
from transactive.settlement.journal import read_journal, replay_journal, verify_journal
from transactive.settlement.ledger import Ledger, SettlementError

__all__ = ["JOURNAL_FILE", "LEDGER_FILE", "Check", "VerificationReport", "verify_run"]

LEDGER_FILE = "settlement.sqlite"
JOURNAL_FILE = "journal.jsonl"


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

    @property
    def is_ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "ok": self.is_ok, "ledger_hash": self.ledger_hash,
                "replay_hash": self.replay_hash,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                           for c in self.checks]}

    def __str__(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [f"settlement of {self.run_dir}: {'OK' if self.is_ok else 'FAILED'}"]
        lines += [f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}"
                  for c in self.checks]
        return "\n".join(lines)


def verify_run(run_dir: str | os.PathLike[str]) -> VerificationReport:
    """Re-check the ledger and journal of a run folder from scratch.

    Examples
    --------
    >>> import tempfile
    >>> from transactive.settlement import Journal, Settlement
    >>> run = Path(tempfile.mkdtemp())
    >>> with Journal(run / JOURNAL_FILE) as j, Ledger(run / LEDGER_FILE) as led:
    ...     s = Settlement(led, j)
    ...     _ = s.settle_interval(0, None, ["a"], [1.5], retail_price_per_kwh=0.3,
    ...                           feed_in_price_per_kwh=0.05)
    >>> report = verify_run(run)
    >>> report.is_ok, [c.name for c in report.checks]
    (True, ['journal', 'ledger integrity', 'ledger applied the journal', 'replay'])
    """
    root = Path(run_dir)
    journal_path, ledger_path = root / JOURNAL_FILE, root / LEDGER_FILE
    checks: list[Check] = []
    jr = verify_journal(journal_path)
    checks.append(Check("journal", jr.is_ok, str(jr).split(": ", 1)[1]))
    try:
        ledger = Ledger(ledger_path, create=False)
    except InputError as exc:
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
    if not jr.is_ok:
        checks.append(Check("ledger applied the journal", False, "skipped: journal is bad"))
        checks.append(Check("replay", False, "skipped: journal is bad"))
        return VerificationReport(str(root), tuple(checks), ledger_hash)
    try:
        pending = [r.seq for r in read_journal(journal_path)
                   if r.kind in ("accounts", "transfers") and r.seq > cursor]
        replayed = replay_journal(journal_path)
        replay_hash = replayed.state_hash()
        replayed.close()
    except (SettlementError, InputError) as exc:
        checks.append(Check("replay", False, str(exc)))
        return VerificationReport(str(root), tuple(checks), ledger_hash)
    checks.append(Check(
        "ledger applied the journal", cursor <= jr.n_records and not pending,
        f"through record {cursor} of {jr.n_records}" if not pending else
        f"records {pending[0]}.. not committed (reopen the run's settlement to recover)"))
    same = replay_hash == ledger_hash
    checks.append(Check("replay", same, f"state hash {ledger_hash[:16]}... "
                        + ("reproduced" if same else f"!= replayed {replay_hash[:16]}...")))
    return VerificationReport(str(root), tuple(checks), ledger_hash, replay_hash)
