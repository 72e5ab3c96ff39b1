"""The journal's records of the live exchange: signed commands (no replay) and operator events."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.errors import InputError
from transactive.settlement import Journal
from transactive.settlement._signing import command_message
from transactive.settlement.journal import verify_journal


def _row(key, participant, nonce, at_ms, expires_ms=10_000, payload=None):
    payload = payload or {"id": f"o{nonce}", "side": "buy"}
    sig = key.sign(command_message(participant, nonce, expires_ms, "submit", payload)).hex()
    return [participant, nonce, expires_ms, at_ms, "submit", payload, sig]


def test_commands_and_events_verify_and_a_replay_is_refused(tmp_path):
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.register_participants({"a": key.public_key()})
        j.append_commands([_row(key, "a", 1, 100), _row(key, "a", 2, 100)])
        j.append_events([("gate", {"interval": 0}, 200)])
        with pytest.raises(InputError, match="nonce 1 of 'a' was used before"):
            j.append_commands([_row(key, "a", 1, 300)])
        with pytest.raises(InputError, match="expired"):
            j.append_commands([_row(key, "a", 3, 20_000)])
        # once the first command expired its nonce may come back
        j.append_commands([_row(key, "a", 1, 10_001, expires_ms=20_000)])
    report = verify_journal(path)
    assert report.is_ok, report
    assert dict(report.counts) == {"commands": 2, "events": 1, "keys": 1}
    # reopened: the nonces are known again
    with Journal(path) as j, pytest.raises(InputError, match="used before"):
        j.append_commands([_row(key, "a", 2, 101)])


def test_a_forged_or_replayed_command_fails_verification(tmp_path):
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged, replayed = tmp_path / "f.jsonl", tmp_path / "r.jsonl"
    with Journal(forged) as j:
        j.register_participants({"a": key.public_key()})
        j.append_commands([_row(other, "a", 1, 100)])  # the writer did not verify
    assert "signature does not verify" in verify_journal(forged).reason
    with Journal(replayed) as j:
        j.register_participants({"a": key.public_key()})
        row = _row(key, "a", 1, 100)
        j.append("commands", {"commands": [row]})
        j.append("commands", {"commands": [row]})  # around append_commands' check
    report = verify_journal(replayed)
    assert report.first_bad == 3
    assert "replay" in report.reason
