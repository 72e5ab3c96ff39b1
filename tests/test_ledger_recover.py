"""A run stopped while it settled is told from a damaged one, and recovered:
`transactive ledger verify` says INTERRUPTED for a journal ahead of the ledger
or a last record cut short, `transactive ledger recover` commits what the
journal holds and the folder verifies; a tampered folder is FAILED and
recover refuses it, changing nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from runfolders import cli, copy_run
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Account,
    AccountKind,
    Journal,
    Unit,
    recover_run,
    verify_run,
)
from transactive.settlement.ledger import SettlementError
from transactive.sim import Scenario, simulate


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("settled") / "run"
    simulate(Scenario.from_dict({"community": {"households": 4}, "time": {"days": 1}}),
             run_dir=run)
    return run


def _digest(run: Path) -> str:
    return hashlib.sha256(b"".join((run / n).read_bytes()
                                   for n in (JOURNAL_FILE, LEDGER_FILE))).hexdigest()


def test_a_journal_ahead_of_the_ledger_is_interrupted_and_recovered(settled, tmp_path):
    run = copy_run(settled, tmp_path / "run")
    with Journal(run / JOURNAL_FILE) as journal:  # written ahead, the commit never came
        journal.append_accounts([Account("late", AccountKind.MARKET, Unit.CENT)])
    report = verify_run(run)
    assert (report.is_ok, report.interrupted, report.verdict) == (False, True, "INTERRUPTED")
    assert "journaled but not committed" in str(report)
    assert "ledger recover" in str(report)
    assert "not yet attested" in str(report)  # the operator has not signed it
    before, after = recover_run(run)
    assert before.verdict == "INTERRUPTED"
    assert after.is_ok, str(after)
    assert verify_run(run).is_ok
    with Journal(run / JOURNAL_FILE) as journal:  # recover signed what it committed
        assert journal.at_checkpoint


def test_a_last_record_cut_short_is_dropped_on_recovery(settled, tmp_path):
    run = copy_run(settled, tmp_path / "run")
    with (run / JOURNAL_FILE).open("ab") as f:
        f.write(b'{"seq": 999, "kind": "transfers", "bo')  # a torn write: no newline
    assert verify_run(run).verdict == "INTERRUPTED"
    _, after = recover_run(run)
    assert after.is_ok, str(after)
    assert (run / JOURNAL_FILE).read_bytes() == (settled / JOURNAL_FILE).read_bytes()


def test_a_tampered_journal_is_failed_and_recover_changes_nothing(settled, tmp_path):
    run = copy_run(settled, tmp_path / "run")
    lines = (run / JOURNAL_FILE).read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"', b"'", 1)  # any change breaks the chain
    (run / JOURNAL_FILE).write_bytes(b"".join(lines))
    report = verify_run(run)
    assert (report.verdict, report.interrupted) == ("FAILED", False)
    digest = _digest(run)
    with pytest.raises(SettlementError, match="damaged, not interrupted"):
        recover_run(run)
    assert _digest(run) == digest


def test_a_sound_run_has_nothing_to_recover(settled, tmp_path):
    run = copy_run(settled, tmp_path / "run")
    digest = _digest(run)
    before, after = recover_run(run)
    assert before.is_ok
    assert after is before
    assert _digest(run) == digest


def test_the_cli_recovers_an_interrupted_run_and_refuses_a_damaged_one(settled, tmp_path):
    run = copy_run(settled, tmp_path / "run")
    with Journal(run / JOURNAL_FILE) as journal:
        journal.append_accounts([Account("late", AccountKind.MARKET, Unit.CENT)])
    proc = cli("ledger", "verify", str(run))
    assert proc.returncode == 1
    assert "INTERRUPTED" in proc.stdout
    proc = cli("ledger", "recover", str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["before"]["verdict"], out["after"]["verdict"]) == ("INTERRUPTED", "OK")
    assert cli("ledger", "verify", str(run)).returncode == 0
    (run / JOURNAL_FILE).write_bytes(b"not a journal\n")
    proc = cli("ledger", "recover", str(run))
    assert proc.returncode == 2  # refused, as bad input is
    assert "damaged, not interrupted" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli("ledger", "recover", str(tmp_path / "nowhere"))
    assert proc.returncode != 0
    assert "the run was not settled" in proc.stderr
