"""The hash-chained, signed journal: acceptance, verification, tampering, replay."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import (
    Journal,
    Ledger,
    Settlement,
    SettlementError,
    order_messages,
    read_journal,
    replay_journal,
    sign_orders,
    sign_reading,
    verify_journal,
)
from transactive.settlement._signing import public_key_hex

PARTICIPANTS = ["p0", "p1", "p2", "p3"]


def _keys(seed: int, names: list[str]) -> dict[str, Ed25519PrivateKey]:
    rng = np.random.default_rng(seed)
    return {n: Ed25519PrivateKey.from_private_bytes(rng.bytes(32)) for n in names}


def _orders(rng: np.random.Generator, interval: int) -> tuple[OrderBatch, Clearing]:
    """A random balanced clearing among PARTICIPANTS (sellers p0, p1; buyers p2, p3)."""
    n = 6
    side = np.array([-1, -1, -1, 1, 1, 1])
    participant = np.array(["p0", "p1", "p0", "p2", "p3", "p2"])
    qty = rng.uniform(0.5, 3.0, n).round(3)
    ob = OrderBatch(id=np.arange(n) + 100 * interval, participant=participant, side=side,
                    price=rng.uniform(0.05, 0.4, n).round(4), quantity=qty)
    sold = qty[side == -1].sum()
    bought = qty[side == 1].sum()
    volume = min(sold, bought)
    accepted = np.where(side == -1, qty * volume / sold, qty * volume / bought)
    price = float(rng.uniform(0.1, 0.3))
    return ob, Clearing.from_allocation("uniform", ob, accepted, np.full(n, price), price)


def _run(path: Path, ledger: Ledger, intervals: int = 4, seed: int = 1) -> Journal:
    """A small but complete journal: keys, signed orders and readings, clearings,
    accounts and transfers."""
    rng = np.random.default_rng(seed)
    keys = _keys(seed, PARTICIPANTS)
    meters = _keys(seed + 1, ["m0", "m1"])
    journal = Journal(path)
    journal.register_participants({p: k.public_key() for p, k in keys.items()})
    journal.register_meters({m: k.public_key() for m, k in meters.items()})
    settlement = Settlement(ledger, journal)
    for k in range(intervals):
        ob, clearing = _orders(rng, k)
        got = journal.accept_orders(k, ob, sign_orders(k, ob, keys))
        assert len(got.accepted) == len(ob)
        journal.append_readings([sign_reading(meters[m], m, k, int(rng.integers(-900, 900)),
                                              nonce=10 * k + i, timestamp_ms=900_000 * (k + 1))
                                 for i, m in enumerate(meters)])
        settlement.settle_interval(k, clearing, PARTICIPANTS, rng.uniform(-2, 2, 4),
                                   retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05,
                                   grid_fee_per_kwh=0.01)
    return journal


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.jsonl"
    with Ledger(tmp_path / "ledger.sqlite") as led:
        _run(path, led).close()
    return path


def test_a_clean_journal_verifies_and_replays_to_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Ledger(tmp_path / "ledger.sqlite") as led:
        journal = _run(path, led)
        journal.close()
        report = verify_journal(path)
        assert report.is_ok, report
        counts = dict(report.counts)
        assert counts == {"keys": 2, "orders": 4, "readings": 4, "clearing": 4,
                          "accounts": 2, "transfers": 4}
        assert report.n_records == sum(counts.values())
        assert report.head == journal.head
        replayed = replay_journal(path)
        assert replayed.state_hash() == led.state_hash()
        assert replayed.balances() == led.balances()
        assert replayed.cursor == led.cursor == report.n_records


def test_records_are_chained_as_documented(journal_path: Path) -> None:
    prev = "0" * 64
    for n, line in enumerate(journal_path.read_bytes().splitlines(), start=1):
        rec = json.loads(line)
        assert rec["seq"] == n
        assert rec["prev"] == prev
        unsigned = json.dumps({k: v for k, v in rec.items() if k != "hash"}, sort_keys=True,
                              separators=(",", ":")).encode()
        assert line == json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
        assert hashlib.sha256(bytes.fromhex(prev) + unsigned).hexdigest() == rec["hash"]
        prev = rec["hash"]


def _line_of(data: bytes, pos: int) -> int:
    """1-based number of the line holding byte ``pos``."""
    return data.count(b"\n", 0, pos) + 1


def test_a_thousand_random_byte_flips_are_all_detected(journal_path: Path,
                                                       tmp_path: Path) -> None:
    """Tamper test: every flip is caught, and the report names its record."""
    data = journal_path.read_bytes()
    rng = np.random.default_rng(2024)
    bad = tmp_path / "tampered.jsonl"
    detected = named = 0
    flips = 1000
    for _ in range(flips):
        pos = int(rng.integers(len(data)))
        mutated = bytearray(data)
        mutated[pos] ^= int(rng.integers(1, 256))
        bad.write_bytes(mutated)
        report = verify_journal(bad, workers=1)
        detected += not report.is_ok
        named += report.first_bad == _line_of(data, pos)
    assert detected == flips
    assert named == flips


def test_cut_reordered_and_inserted_records_are_detected(journal_path: Path,
                                                         tmp_path: Path) -> None:
    lines = journal_path.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    cases = {
        "drop": lines[:5] + lines[6:],
        "swap": [*lines[:5], lines[6], lines[5], *lines[7:]],
        "duplicate": [*lines[:5], lines[4], *lines[5:]],
        "torn": [*lines[:-1], lines[-1][:-10]],
    }
    expected = {"drop": 6, "swap": 6, "duplicate": 6, "torn": len(lines)}
    for name, content in cases.items():
        bad.write_bytes(b"".join(content))
        report = verify_journal(bad)
        assert report.first_bad == expected[name], (name, report)
    bad.write_bytes(b"".join(lines[:-3]))          # a cut at a record boundary is a prefix
    assert verify_journal(bad).is_ok


def _forge(path: Path, kind: str, body: dict[str, object]) -> None:
    """Append a record with a valid hash chain but chosen content (a rogue writer)."""
    last = json.loads(path.read_bytes().splitlines()[-1])
    seq, prev = last["seq"] + 1, last["hash"]
    unsigned = {"body": body, "kind": kind, "prev": prev, "seq": seq}
    canon = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    unsigned["hash"] = hashlib.sha256(bytes.fromhex(prev) + canon).hexdigest()
    with path.open("ab") as fh:
        fh.write(json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode() + b"\n")


def test_forged_signatures_and_replayed_nonces_are_detected(journal_path: Path) -> None:
    n = verify_journal(journal_path).n_records
    keys = _keys(1, PARTICIPANTS)
    ob = OrderBatch(id=[1, 2], participant=["p0", "p1"], side=["sell", "buy"],
                    price=[0.1, 0.2], quantity=[1.0, 1.0])
    sigs = sign_orders(9, ob, keys)
    frame = ob.to_frame()
    frame["side"] = ob.side.astype(int)
    cols = {c: frame[c].tolist() for c in frame.columns}
    good = json.loads(json.dumps({"interval": 9, "orders": cols,
                                  "signatures": [s.hex() for s in sigs]}))
    _forge(journal_path, "orders", good)
    assert verify_journal(journal_path).is_ok
    good["orders"]["quantity"][1] = 5.0              # the signed order said 1.0
    _forge(journal_path, "orders", good)
    report = verify_journal(journal_path)
    assert (report.first_bad, report.reason) == (n + 2, "order row 1: signature does not verify")

    meter = _keys(2, ["m0"])["m0"]
    path2 = journal_path.with_name("j2.jsonl")
    path2.write_bytes(b"".join(journal_path.read_bytes().splitlines(keepends=True)[:n]))
    replayed = sign_reading(meter, "m0", 0, 5, nonce=0, timestamp_ms=1)  # nonce 0 was used
    _forge(path2, "readings", {"readings": [replayed.to_row()]})
    assert "nonce 0 of meter 'm0' was used before" in verify_journal(path2).reason


def test_signed_order_bytes_are_the_documented_canonical_json() -> None:
    ob = OrderBatch(id=["o1", "o2"], participant=['qu"ote', "ümlaut"], side=["buy", "sell"],
                    price=[0.1 + 0.2, -1e-7], quantity=[3.0, 123456.789])
    expected = [json.dumps(["transactive.order.v1", 4, i, p, s, pr, q], separators=(",", ":"))
                .encode() for i, p, s, pr, q in (("o1", 'qu"ote', 1, 0.1 + 0.2, 3.0),
                                                 ("o2", "ümlaut", -1, -1e-7, 123456.789))]
    assert order_messages(4, ob) == expected


def test_orders_are_verified_before_acceptance(tmp_path: Path) -> None:
    keys = _keys(3, ["a", "b"])
    ob = OrderBatch(id=[1, 2, 3, 4], participant=["a", "b", "a", "stranger"],
                    side=["buy", "sell", "sell", "buy"], price=[0.3, 0.1, 0.2, 0.3],
                    quantity=[1.0, 2.0, 3.0, 1.0])
    sigs = [*sign_orders(0, ob.take([0, 1, 2]), keys), bytes(64)]
    sigs[2] = sign_orders(1, ob.take([2]), keys)[0]  # signed for another interval
    with Journal(tmp_path / "j.jsonl") as journal:
        journal.register_participants({p: k.public_key() for p, k in keys.items()})
        got = journal.accept_orders(0, ob, sigs)
    assert got.accepted.id.tolist() == [1, 2]
    assert got.refused_rows.tolist() == [2, 3]
    assert got.reasons == ("signature does not verify", "no key registered for participant")
    records = list(read_journal(tmp_path / "j.jsonl"))
    assert [r.kind for r in records] == ["keys", "orders"]
    assert records[1].body["orders"]["id"] == [1, 2]
    assert verify_journal(tmp_path / "j.jsonl").is_ok


def test_readings_are_verified_before_they_are_journaled(tmp_path: Path) -> None:
    meter = _keys(4, ["m"])["m"]
    with Journal(tmp_path / "j.jsonl") as journal:
        journal.register_meters({"m": meter.public_key()})
        r = sign_reading(meter, "m", 0, 100, nonce=1, timestamp_ms=1)
        journal.append_readings([r])
        with pytest.raises(InputError, match="nonce 1 of meter 'm' was used before"):
            journal.append_readings([sign_reading(meter, "m", 1, 100, nonce=1, timestamp_ms=2)])
        forged = sign_reading(meter, "m", 0, 100, nonce=2, timestamp_ms=1)
        with pytest.raises(InputError, match="signature does not verify"):
            journal.append_readings([forged.__class__(**{**forged.__dict__, "energy_wh": 1})])
        assert journal.seq == 2


def test_keys_cannot_be_silently_replaced(tmp_path: Path) -> None:
    a, b = _keys(5, ["a", "b"]).values()
    with Journal(tmp_path / "j.jsonl") as journal:
        journal.register_participants({"x": a.public_key()})
        assert journal.register_participants({"x": public_key_hex(a)}) == 1  # same key: no-op
        with pytest.raises(InputError, match="already has a different key"):
            journal.register_participants({"x": b.public_key()})
    _forge(tmp_path / "j.jsonl", "keys", {"role": "participant",
                                         "keys": [["x", public_key_hex(b)]]})
    assert verify_journal(tmp_path / "j.jsonl").reason == (
        "participant 'x' already has a different key")


def test_reopening_truncates_a_torn_tail_and_refuses_other_damage(journal_path: Path) -> None:
    data = journal_path.read_bytes()
    n = data.count(b"\n")
    journal_path.write_bytes(data + b'{"body":{"gro')       # a crash mid-write
    with Journal(journal_path) as journal:
        assert journal.truncated_tail
        assert journal.seq == n
        journal.append_transfers([])
    assert verify_journal(journal_path).is_ok
    damaged = bytearray(journal_path.read_bytes())
    damaged[50] ^= 0x01
    journal_path.write_bytes(damaged)
    with pytest.raises(SettlementError, match="record 1 is bad"):
        Journal(journal_path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl"), pytest.raises(SettlementError, match="another process"):
        Journal(tmp_path / "j.jsonl")


def test_bad_appends_are_input_errors(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl") as journal:
        with pytest.raises(InputError, match="kind"):
            journal.append("gossip", {})
        with pytest.raises(InputError, match="body"):
            journal.append("clearing", {"x": float("nan")})
        with pytest.raises(InputError, match="signatures"):
            journal.accept_orders(0, OrderBatch(id=[1], participant=["a"], side=["buy"],
                                                price=[1.0], quantity=[1.0]), [])
        assert journal.seq == 0
    assert not verify_journal(tmp_path / "missing.jsonl").is_ok
