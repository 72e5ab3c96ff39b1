"""The metering oracle: every refusal reason, estimates for missing readings, journaling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.errors import InputError
from transactive.settlement import (
    Journal,
    Ledger,
    MeterReading,
    Oracle,
    OracleConfig,
    Refusal,
    Settlement,
    read_journal,
    sign_reading,
    verify_journal,
)

MIN = 60_000
CONFIG = OracleConfig(origin_ms=1_000_000, interval_ms=15 * MIN, max_age_ms=60 * MIN,
                      max_skew_ms=5_000)


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(np.random.default_rng(seed).bytes(32))


KEYS = {"m1": _key(1), "m2": _key(2), "m3": _key(3)}


def _end(interval: int) -> int:
    return CONFIG.interval_end_ms(interval)


@pytest.fixture
def oracle() -> Oracle:
    o = Oracle(CONFIG)
    o.register("m1", KEYS["m1"].public_key(), participant="alice", max_import_wh=5_000,
               max_export_wh=3_000)
    o.register("m2", KEYS["m2"].public_key(), participant="bob", max_import_wh=5_000)
    o.register("m3", KEYS["m3"].public_key(), participant="carol", max_import_wh=5_000)
    return o


def _reading(meter: str, interval: int, energy_wh: int, nonce: int,
             timestamp_ms: int | None = None) -> MeterReading:
    ts = _end(interval) + 1_000 if timestamp_ms is None else timestamp_ms
    return sign_reading(KEYS[meter], meter, interval, energy_wh, nonce, ts)


def test_interval_timing_is_as_documented() -> None:
    assert _end(0) == 1_000_000 + 15 * MIN
    assert _end(3) == 1_000_000 + 4 * 15 * MIN


def test_good_readings_are_accepted(oracle: Oracle) -> None:
    readings = [_reading("m1", 0, 1200, 1), _reading("m2", 0, -800, 1),
                _reading("m1", 0, -3000, 2, _end(0) + 2_000)]
    verdicts = oracle.submit(readings, now_ms=_end(0) + 10_000)
    assert [v.is_ok for v in verdicts] == [True, True, False]
    assert verdicts[2].reason is Refusal.DUPLICATE


@pytest.mark.parametrize(("make", "now", "reason", "detail"), [
    (lambda: _reading("m1", 0, 100, 1).__class__(
        "m9", 0, 100, 1, _end(0), KEYS["m1"].sign(b"x")), _end(0), Refusal.UNKNOWN_METER,
     "not registered"),
    (lambda: dataclasses.replace(_reading("m1", 0, 100, 1), signature=b""), _end(0),
     Refusal.UNSIGNED, "no signature"),
    (lambda: dataclasses.replace(_reading("m1", 0, 100, 1), energy_wh=99), _end(0),
     Refusal.BAD_SIGNATURE, "does not verify"),
    (lambda: dataclasses.replace(_reading("m2", 0, 100, 1), meter_id="m1"), _end(0),
     Refusal.BAD_SIGNATURE, "does not verify"),
    (lambda: dataclasses.replace(_reading("m1", 0, 100, 1), signature=b"\x00" * 10), _end(0),
     Refusal.BAD_SIGNATURE, "does not verify"),
    (lambda: _reading("m1", 0, 5_001, 1), _end(0), Refusal.OUT_OF_RANGE, "outside [-3000, 5000]"),
    (lambda: _reading("m1", 0, -3_001, 1), _end(0), Refusal.OUT_OF_RANGE, "outside"),
    (lambda: _reading("m1", -1, 10, 1, _end(0)), _end(0), Refusal.OUT_OF_RANGE, "negative"),
    (lambda: _reading("m1", 1, 10, 1, _end(0)), _end(1), Refusal.EARLY,
     "before its interval ended"),
    (lambda: _reading("m1", 0, 10, 1, _end(0) + 20_000), _end(0), Refusal.EARLY, "in the future"),
    (lambda: _reading("m1", 0, 10, 1, _end(0)), _end(0) + 60 * MIN + 1, Refusal.STALE,
     "older than 3600000 ms"),
])
def test_each_refusal_names_its_reason(oracle: Oracle, make: object, now: int,
                                       reason: Refusal, detail: str) -> None:
    reading = make()  # type: ignore[operator]
    verdict = oracle.submit([reading], now_ms=now)[0]
    assert verdict.reason is reason
    assert detail in verdict.detail
    # a refused reading uses up nothing: the genuine reading still goes through
    good = _reading("m1", 0, 10, 1)
    assert oracle.submit([good], now_ms=_end(0) + 5_000)[0].is_ok


def test_nonce_replay_is_refused_even_for_a_new_interval(oracle: Oracle) -> None:
    assert oracle.submit([_reading("m1", 0, 10, 7)], now_ms=_end(0) + 2_000)[0].is_ok
    again = oracle.submit([_reading("m1", 1, 10, 7)], now_ms=_end(1) + 2_000)[0]
    assert again.reason is Refusal.REPLAYED
    # same nonce on another meter is fine
    assert oracle.submit([_reading("m2", 1, 10, 7)], now_ms=_end(1) + 2_000)[0].is_ok


def test_readings_after_close_are_stale(oracle: Oracle) -> None:
    oracle.close_interval(0)
    late = oracle.submit([_reading("m1", 0, 10, 1)], now_ms=_end(0) + 2_000)[0]
    assert late.reason is Refusal.STALE
    assert "already closed" in late.detail
    with pytest.raises(InputError, match="already closed"):
        oracle.close_interval(0)


def test_missing_readings_are_estimated_by_the_documented_rule(oracle: Oracle) -> None:
    oracle.submit([_reading("m1", 0, 1200, 1), _reading("m2", 0, 700, 2)],
                  now_ms=_end(0) + 2_000)
    first = oracle.close_interval(0)
    assert first.energy_wh.tolist() == [1200, 700, 0]
    assert first.method.tolist() == ["metered", "metered", "zero"]
    oracle.submit([_reading("m2", 1, 650, 3)], now_ms=_end(1) + 2_000)
    second = oracle.close_interval(1, schedule_wh={"m1": 999.6})
    assert second.participant.tolist() == ["alice", "bob", "carol"]
    assert second.energy_wh.tolist() == [1000, 650, 0]
    assert second.method.tolist() == ["schedule", "metered", "zero"]
    assert second.estimated.tolist() == [True, False, True]
    third = oracle.close_interval(2)
    assert third.energy_wh.tolist() == [1200, 650, 0]      # last accepted readings
    assert third.method.tolist() == ["last_value", "last_value", "zero"]
    assert third.energy_kwh.tolist() == [1.2, 0.65, 0.0]
    with pytest.raises(InputError, match="unknown meter"):
        oracle.close_interval(3, schedule_wh={"m7": 1.0})


def test_registration_and_input_errors(oracle: Oracle) -> None:
    with pytest.raises(InputError, match="already registered"):
        oracle.register("m1", KEYS["m1"].public_key(), max_import_wh=1)
    with pytest.raises(InputError, match="Ed25519 public key"):
        oracle.register("m4", b"short", max_import_wh=1)
    with pytest.raises(InputError, match="max_import_wh"):
        oracle.register("m4", KEYS["m1"].public_key(), max_import_wh=-1)
    with pytest.raises(InputError, match="energy_wh"):
        oracle.submit([dataclasses.replace(_reading("m1", 0, 1, 1), energy_wh=1.5)], now_ms=0)
    with pytest.raises(InputError, match="interval_ms"):
        OracleConfig(interval_ms=0)


def test_accepted_readings_are_journaled_and_feed_settlement(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal, Ledger(tmp_path / "l.sqlite") as ledger:
        oracle = Oracle(CONFIG, journal=journal)
        for m, p in (("m1", "alice"), ("m2", "bob")):
            oracle.register(m, KEYS[m].public_key(), participant=p, max_import_wh=5_000)
        verdicts = oracle.submit([_reading("m1", 0, 1500, 1), _reading("m2", 0, -400, 1),
                                  _reading("m2", 0, -400, 1)], now_ms=_end(0) + 3_000)
        assert [v.is_ok for v in verdicts] == [True, True, False]
        data = oracle.close_interval(0)
        done = Settlement(ledger, journal).settle_interval(
            0, None, data.participant, data.energy_kwh, retail_price_per_kwh=0.25,
            feed_in_price_per_kwh=0.08)
        assert done.lines.utility_cents.tolist() == [38, -3]   # 37.5 -> 38 (half to even)
        assert ledger.balance("participant:alice:energy") == 1500
    kinds = [r.kind for r in read_journal(path)]
    assert kinds[:3] == ["keys", "keys", "readings"]
    readings = next(r for r in read_journal(path) if r.kind == "readings")
    assert [row[:4] for row in readings.body["readings"]] == [["m1", 0, 1500, 1],
                                                              ["m2", 0, -400, 1]]
    assert verify_journal(path).is_ok
