"""A record no one can rewrite: the operator's key (settlement/operator.py),
the checkpoints it signs in the journal, and what `transactive ledger verify`
makes of a journal rewritten by someone without it (issue 11, part 4)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runfolders import cli, copy_run
from transactive.errors import InputError
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Journal,
    Ledger,
    recover_run,
    replay_journal,
    verify_journal,
    verify_run,
)
from transactive.settlement._signing import (
    checkpoint_message,
    public_key_hex,
    sign_receipt,
    verify_receipt,
)
from transactive.settlement.ledger import SettlementError
from transactive.settlement.operator import (
    CONFIG_DIR_VAR,
    default_key_path,
    operator_key,
    trusted_operator,
)
from transactive.sim import Scenario, simulate

Body = dict[str, Any]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of a small community, settled interval by interval (in this process)."""
    run = tmp_path_factory.mktemp("signed") / "run"
    simulate(Scenario.from_dict({"community": {"households": 4}, "time": {"days": 2}}),
             run_dir=run)
    return run


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / JOURNAL_FILE).read_text().splitlines()]


def _rewrite(run: Path, change: Callable[[int, str, Body], Body | None], *,
             resign: Ed25519PrivateKey | None = None) -> None:
    """What anyone holding the folder can do: change records (``change`` returns a
    record's new body, or None to drop it) and write the journal again with every
    hash recomputed, by the format of the journal's docstring; with ``resign``
    every checkpoint names the new chain and that key signs it."""
    prev, seq, out = "0" * 64, 0, []
    for rec in _records(run):
        body, kind = change(rec["seq"], rec["kind"], rec["body"]), rec["kind"].encode()
        if body is None:
            continue
        seq += 1
        if kind == b"checkpoint" and resign is not None:
            body = {"seq": seq - 1, "head": prev, "operator": public_key_hex(resign),
                    "signature": resign.sign(checkpoint_message(seq - 1, prev)).hex()}
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(bytes.fromhex(prev) + b'{"body":%s,"kind":"%s","prev":"%s",'
                                b'"seq":%d}' % (raw, kind, prev.encode(), seq)).hexdigest()
        out.append(b'{"body":%s,"hash":"%s","kind":"%s","prev":"%s","seq":%d}\n' % (
            raw, digest.encode(), kind, prev.encode(), seq))
        prev = digest
    (run / JOURNAL_FILE).write_bytes(b"".join(out))


def _rebuild_ledger(run: Path) -> None:
    """The ledger made again by replaying the journal, as the attacker would."""
    (run / LEDGER_FILE).unlink()
    with Ledger(run / LEDGER_FILE) as ledger:
        replay_journal(run / JOURNAL_FILE, ledger)


def _first_transfers(records: list[dict[str, Any]]) -> int:
    return next(r["seq"] for r in records if r["kind"] == "transfers")


def _more(body: Body) -> Body:
    return {**body, "amount": [body["amount"][0] + 100, *body["amount"][1:]]}


def test_a_simulated_run_is_attested_by_the_local_operator(signed: Path) -> None:
    report = verify_run(signed)
    assert report.is_ok, str(report)
    check = next(c for c in report.checks if c.name == "operator signature")
    records = _records(signed)
    kinds = [r["kind"] for r in records]
    assert kinds[-1] == "checkpoint"
    assert kinds.count("checkpoint") == 3  # the operator's accounts, then each day
    local = public_key_hex(operator_key())
    assert check.detail == (f"records 1..{len(records)} attested by operator {local[:8]}..; "
                            "3 checkpoints")
    for rec in records:
        if rec["kind"] == "checkpoint":
            assert rec["body"]["seq"] == rec["seq"] - 1
            assert rec["body"]["operator"] == local


def test_a_run_settled_by_day_beside_the_simulation_is_signed_every_day(tmp_path: Path) -> None:
    run = tmp_path / "run"
    simulate(Scenario.from_dict({"community": {"households": 6}, "time": {"days": 3},
                                 "settlement": {"granularity": "day"}}), run_dir=run)
    kinds = [r["kind"] for r in _records(run)]
    assert kinds.count("checkpoint") == 4
    assert kinds[-1] == "checkpoint"
    assert verify_run(run).is_ok


def test_a_rewritten_journal_is_failed(signed: Path, tmp_path: Path) -> None:
    """The attack of the issue: an amount of a past transfers record changed, every
    hash after it recomputed and the ledger rebuilt by replay. The hash chain and
    the ledger agree; the checkpoints after the change do not."""
    run = copy_run(signed, tmp_path / "run")
    at = _first_transfers(_records(run))
    _rewrite(run, lambda seq, kind, body: _more(body) if seq == at else body)
    _rebuild_ledger(run)
    report = verify_run(run)
    assert report.verdict == "FAILED"
    assert "does not match the chain" in next(c.detail for c in report.checks
                                              if c.name == "journal")
    digest = hashlib.sha256((run / JOURNAL_FILE).read_bytes()).hexdigest()
    with pytest.raises(SettlementError, match="damaged, not interrupted"):
        recover_run(run)
    assert hashlib.sha256((run / JOURNAL_FILE).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("drop", ["after the change", "all"])
def test_a_rewritten_journal_without_its_checkpoints_is_failed(signed: Path, tmp_path: Path,
                                                              drop: str) -> None:
    """Dropping the checkpoints that no longer match does not help: the ledger
    then holds records no checkpoint covers (or the journal is unsigned)."""
    run = copy_run(signed, tmp_path / "run")
    at = _first_transfers(_records(run))

    def change(seq: int, kind: str, body: Body) -> Body | None:
        if kind == "checkpoint" and (drop == "all" or seq > at):
            return None
        return _more(body) if seq == at else body

    _rewrite(run, change)
    _rebuild_ledger(run)
    report = verify_run(run)
    assert (report.verdict, report.interrupted) == ("FAILED", False)
    assert [c.name for c in report.checks if not c.ok] == ["operator signature"]
    detail = report.checks[1].detail
    assert ("unsigned" in detail) if drop == "all" else ("applied to the ledger but not "
                                                         "attested" in detail)
    with pytest.raises(SettlementError, match="damaged, not interrupted"):
        recover_run(run)


def test_checkpoints_by_another_key_are_failed(signed: Path, tmp_path: Path) -> None:
    """Every checkpoint signed again, properly, by a key that is not the operator's."""
    run = copy_run(signed, tmp_path / "run")
    other = Ed25519PrivateKey.generate()
    _rewrite(run, lambda seq, kind, body: body, resign=other)
    assert verify_journal(run / JOURNAL_FILE).is_ok  # sound, but by whom?
    assert not verify_journal(run / JOURNAL_FILE, trusted=operator_key().public_key()).is_ok
    report = verify_run(run)
    assert report.verdict == "FAILED"
    assert [c.name for c in report.checks if not c.ok] == ["operator signature"]
    assert "not the trusted" in report.checks[1].detail
    assert verify_run(run, trusted=other.public_key()).is_ok


def test_a_checkpoint_signed_by_two_keys_is_a_bad_record(signed: Path, tmp_path: Path) -> None:
    run = copy_run(signed, tmp_path / "run")
    other = Ed25519PrivateKey.generate()
    last = _records(run)[-1]["seq"]

    def resign_last(seq: int, kind: str, body: Body) -> Body:
        if seq != last:
            return body
        sig = other.sign(checkpoint_message(body["seq"], body["head"])).hex()
        return {**body, "operator": public_key_hex(other), "signature": sig}

    _rewrite(run, resign_last)
    report = verify_journal(run / JOURNAL_FILE)
    assert report.first_bad == last
    assert "the journal's operator" in report.reason
    assert verify_run(run).verdict == "FAILED"


def test_a_forged_checkpoint_signature_is_a_bad_record(signed: Path, tmp_path: Path) -> None:
    run = copy_run(signed, tmp_path / "run")
    last = _records(run)[-1]["seq"]
    _rewrite(run, lambda seq, kind, body: {**body, "signature": "00" * 64} if seq == last
             else body)
    report = verify_journal(run / JOURNAL_FILE)
    assert (report.first_bad, report.reason) == (last, "checkpoint signature does not verify")
    assert verify_run(run).verdict == "FAILED"


def test_a_stripped_off_checkpoint_fails(signed: Path, tmp_path: Path) -> None:
    """The last checkpoint cut off: the ledger has applied a record the journal no
    longer holds; with the ledger rebuilt by replay, it holds records no
    checkpoint covers. Neither is an interrupted run."""
    run = copy_run(signed, tmp_path / "run")
    lines = (run / JOURNAL_FILE).read_bytes().splitlines(keepends=True)
    assert b'"kind":"checkpoint"' in lines[-1]
    (run / JOURNAL_FILE).write_bytes(b"".join(lines[:-1]))
    report = verify_run(run)
    assert (report.verdict, report.interrupted) == ("FAILED", False)
    assert not next(c for c in report.checks if c.name == "operator signature").ok
    _rebuild_ledger(run)
    report = verify_run(run)
    assert (report.verdict, report.interrupted) == ("FAILED", False)
    assert [c.name for c in report.checks if not c.ok] == ["operator signature"]
    with pytest.raises(SettlementError, match="damaged, not interrupted"):
        recover_run(run)


def test_records_after_the_last_checkpoint_are_interrupted_and_recover_signs_them(
        signed: Path, tmp_path: Path) -> None:
    run = copy_run(signed, tmp_path / "run")
    with Journal(run / JOURNAL_FILE) as journal:  # a run stopped before it signed
        journal.append_events([("gate closed", {"interval": 3}, 1)])
        n = journal.seq
    report = verify_run(run)
    assert report.verdict == "INTERRUPTED"
    assert [c.name for c in report.checks if not c.ok] == ["operator signature"]
    assert f"records {n}..{n} not yet attested" in report.checks[1].detail
    other = Ed25519PrivateKey.generate()
    digest = hashlib.sha256((run / JOURNAL_FILE).read_bytes()).hexdigest()
    with pytest.raises(SettlementError, match="is not the trusted operator"):
        recover_run(run, operator_key().public_key(), key=other)  # only it attests
    assert hashlib.sha256((run / JOURNAL_FILE).read_bytes()).hexdigest() == digest
    _, after = recover_run(run)
    assert after.is_ok, str(after)
    last = _records(run)[-1]
    assert (last["kind"], last["seq"], last["body"]["seq"]) == ("checkpoint", n + 1, n)


def test_an_unsigned_run_fails(tmp_path: Path) -> None:
    from transactive.settlement import Settlement

    with Journal(tmp_path / JOURNAL_FILE) as j, Ledger(tmp_path / LEDGER_FILE) as led:
        Settlement(led, j).settle_interval(0, None, ["a"], [1.5], retail_price_per_kwh=0.3,
                                           feed_in_price_per_kwh=0.05)
    report = verify_run(tmp_path)
    assert (report.verdict, report.interrupted) == ("FAILED", False)
    assert report.checks[1].detail.startswith("unsigned: no checkpoint in the journal")


def test_ledger_verify_with_a_wrong_operator_key_fails_on_one_line(signed: Path,
                                                                   tmp_path: Path) -> None:
    wrong = public_key_hex(Ed25519PrivateKey.generate())
    proc = cli("ledger", "verify", str(signed), "--operator", wrong)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"settlement of {signed}: FAILED\n")
    failed = [line for line in proc.stdout.splitlines() if line.startswith("  FAIL")]
    assert len(failed) == 1
    assert "operator signature" in failed[0]
    proc = cli("ledger", "verify", str(signed), "--operator", wrong, "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert [(c["name"], c["detail"]) for c in out["checks"] if not c["ok"]] == [
        ("operator signature", f"signed by operator {public_key_hex(operator_key())[:8]}.., "
                               f"not the trusted {wrong[:8]}..")]
    key_file = tmp_path / "operator.pub"
    key_file.write_text(public_key_hex(operator_key()) + "\n")
    assert cli("ledger", "verify", str(signed), "--operator", str(key_file)).returncode == 0
    proc = cli("ledger", "verify", str(signed), "--operator", "nonsense")
    assert proc.returncode == 2
    assert "neither 64 hex digits nor a file holding them" in proc.stderr


def test_ledger_key_prints_the_local_public_key_and_its_file() -> None:
    proc = cli("ledger", "key", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {"public_key": public_key_hex(operator_key()), "path": str(default_key_path())}


# ------------------------------------------------------------------ the key itself
def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "config" / "transactive" / "operator.key"
    key = operator_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    data = path.read_bytes()
    assert public_key_hex(operator_key(path)) == public_key_hex(key)
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["operator.key"]  # no temporary left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    operator_key(path)
    path.chmod(0o644)
    with pytest.raises(InputError, match=r"can be read or written by others \(mode 0644\)") \
            as err:
        operator_key(path)
    assert str(path) in str(err.value)


def test_a_file_without_an_ed25519_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    path.write_bytes(b"not a key\n")
    path.chmod(0o600)
    with pytest.raises(InputError, match="does not hold an Ed25519 private key"):
        operator_key(path)


def test_the_default_key_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_DIR_VAR, str(tmp_path / "a"))
    assert default_key_path() == tmp_path / "a" / "operator.key"
    monkeypatch.delenv(CONFIG_DIR_VAR)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_path() == tmp_path / "xdg" / "transactive" / "operator.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_path() == tmp_path / "home" / ".config" / "transactive" / "operator.key"


def test_trusted_operator_from_hex_a_file_or_the_local_key(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    hex_key = public_key_hex(key)
    assert public_key_hex(trusted_operator(hex_key)) == hex_key
    (tmp_path / "pub").write_text(f"{hex_key}\n")
    assert public_key_hex(trusted_operator(tmp_path / "pub")) == hex_key
    (tmp_path / "bad").write_text("zz\n")
    with pytest.raises(InputError, match="does not hold an operator public key"):
        trusted_operator(tmp_path / "bad")
    local = public_key_hex(operator_key())  # made if this runs first
    assert public_key_hex(trusted_operator()) == local
    monkeypatch.setenv(CONFIG_DIR_VAR, str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no trusted operator key: give the operator's public"):
        trusted_operator()
    assert not (tmp_path / "empty").exists()  # a verifier makes no key


# ------------------------------------------------------------------ receipts
def test_receipts_verify_and_a_changed_receipt_does_not() -> None:
    key = operator_key()
    body = {"order_id": "o-17", "participant": "h3", "interval": 96, "received_ms": 1_700_000}
    sig = sign_receipt(key, body)
    assert verify_receipt(key.public_key(), body, sig)
    assert verify_receipt(key.public_key(), dict(reversed(body.items())), sig)  # key order
    assert not verify_receipt(key.public_key(), {**body, "interval": 97}, sig)
    assert not verify_receipt(Ed25519PrivateKey.generate().public_key(), body, sig)
    assert not verify_receipt(key.public_key(), body, sig[:-2])
    assert not verify_receipt(key.public_key(), body, "not hex")
    with pytest.raises(InputError, match="body"):
        sign_receipt(key, {"price": float("nan")})


def test_a_settlement_signs_only_a_journal_with_a_private_key(tmp_path: Path) -> None:
    from transactive.settlement import Settlement

    with pytest.raises(InputError, match="give the journal"):
        Settlement(Ledger(":memory:"), operator=operator_key())
    with Journal(tmp_path / JOURNAL_FILE) as j, pytest.raises(InputError, match="private key"):
        Settlement(Ledger(":memory:"), j, operator=operator_key().public_key())  # type: ignore[arg-type]
