"""Metering oracle: signed meter readings in, checked energy per interval out.

A meter signs each reading (meter id, interval, ``energy_wh``, nonce,
timestamp) with its Ed25519 key (message format in
:mod:`transactive.settlement._signing`). ``energy_wh`` is the net energy the
meter's participant took from the grid in the interval: import positive,
export negative, integer watt-hours.

:meth:`Oracle.submit` accepts a reading only if every check passes, in this
order, and otherwise names the first that failed (:class:`Refusal`):

1. ``UNKNOWN_METER``: the meter is not registered;
2. ``UNSIGNED``: the signature is empty;
3. ``BAD_SIGNATURE``: the signature does not verify for the meter's key;
4. ``REPLAYED``: the meter already used this nonce;
5. ``DUPLICATE``: the meter already has a reading for this interval;
6. ``OUT_OF_RANGE``: the interval is negative, or ``energy_wh`` exceeds the
   meter's registered import or export limit;
7. ``EARLY``: the reading is dated before its interval ended, or in the future
   (beyond ``max_skew_ms`` after ``now_ms``);
8. ``STALE``: the reading is older than ``max_age_ms``, or its interval was
   already closed.

Missing readings are estimated when an interval is closed
(:meth:`Oracle.close_interval`), by this documented rule: the participant's
submitted schedule for the interval if one is given, else the meter's most
recent accepted reading, else zero. Estimated values are flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transactive.errors import InputError
from transactive.settlement._signing import public_key, reading_message, verify_many

if TYPE_CHECKING:
    from transactive.settlement.journal import Journal

__all__ = [
    "MeterData",
    "MeterReading",
    "Oracle",
    "OracleConfig",
    "Refusal",
    "Verdict",
    "sign_reading",
]


@dataclass(frozen=True)
class MeterReading:
    """One signed reading: net energy (import positive) of one meter in one interval."""

    meter_id: str
    interval: int
    energy_wh: int
    nonce: int
    timestamp_ms: int
    signature: bytes = b""

    def message(self) -> bytes:
        """The bytes the meter signs."""
        return reading_message(self.meter_id, self.interval, self.energy_wh, self.nonce,
                               self.timestamp_ms)

    def to_row(self) -> list[Any]:
        """The reading as a JSON-ready list (signature as hex), as journaled."""
        return [self.meter_id, self.interval, self.energy_wh, self.nonce, self.timestamp_ms,
                self.signature.hex()]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> MeterReading:
        meter_id, interval, energy_wh, nonce, timestamp_ms, sig = row
        return cls(meter_id, interval, energy_wh, nonce, timestamp_ms, bytes.fromhex(sig))


def sign_reading(key: Ed25519PrivateKey, meter_id: str, interval: int, energy_wh: int,
                 nonce: int, timestamp_ms: int) -> MeterReading:
    """A reading signed by the meter's key (what the meter's firmware does).

    Examples
    --------
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> r = sign_reading(key, "m1", 0, 1250, nonce=1, timestamp_ms=900_000)
    >>> len(r.signature)
    64
    """
    msg = reading_message(meter_id, interval, energy_wh, nonce, timestamp_ms)
    return MeterReading(meter_id, interval, energy_wh, nonce, timestamp_ms, key.sign(msg))


class Refusal(StrEnum):
    """Why a reading was refused."""

    UNKNOWN_METER = "unknown_meter"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"
    DUPLICATE = "duplicate"
    OUT_OF_RANGE = "out_of_range"
    EARLY = "early"
    STALE = "stale"


@dataclass(frozen=True)
class Verdict:
    """The oracle's answer to one reading."""

    meter_id: str
    interval: int
    reason: Refusal | None = None
    detail: str = ""

    @property
    def is_ok(self) -> bool:
        """True when the reading was accepted."""
        return self.reason is None


@dataclass(frozen=True)
class OracleConfig:
    """Timing rules of the oracle (all in milliseconds since the epoch).

    Interval ``k`` covers ``[origin_ms + k * interval_ms, origin_ms + (k+1) * interval_ms)``.
    """

    origin_ms: int = 0
    interval_ms: int = 900_000
    max_age_ms: int = 3_600_000
    max_skew_ms: int = 5_000

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise InputError("interval_ms", f"must be > 0, got {self.interval_ms}")
        for name in ("max_age_ms", "max_skew_ms"):
            if getattr(self, name) < 0:
                raise InputError(name, f"must be >= 0, got {getattr(self, name)}")

    def interval_end_ms(self, interval: int) -> int:
        return self.origin_ms + (interval + 1) * self.interval_ms


@dataclass(frozen=True)
class _Meter:
    key: Ed25519PublicKey
    participant: Any
    max_import_wh: int
    max_export_wh: int


@dataclass(frozen=True)
class MeterData:
    """The energy of every meter in one closed interval, readings or estimates.

    ``method`` is ``"metered"``, ``"schedule"``, ``"last_value"`` or ``"zero"``;
    ``estimated`` is ``method != "metered"``.
    """

    interval: int
    meter_id: npt.NDArray[np.str_]
    participant: npt.NDArray[Any]
    energy_wh: npt.NDArray[np.int64]
    method: npt.NDArray[np.str_]
    estimated: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimated", self.method != "metered")

    @property
    def energy_kwh(self) -> npt.NDArray[np.float64]:
        return self.energy_wh / 1000.0


class Oracle:
    """Checks signed meter readings and closes intervals with flagged estimates.

    Parameters
    ----------
    config : OracleConfig
        Interval timing, the oldest acceptable reading and the clock skew allowed.
    journal : Journal, optional
        If given, registered meter keys and every accepted reading are journaled.

    Examples
    --------
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> oracle = Oracle(OracleConfig(interval_ms=900_000))
    >>> oracle.register("m1", key.public_key(), participant="alice", max_import_wh=10_000)
    >>> r = sign_reading(key, "m1", 0, 1250, nonce=7, timestamp_ms=900_500)
    >>> oracle.submit([r], now_ms=901_000)[0].is_ok
    True
    >>> oracle.submit([r], now_ms=901_000)[0].reason       # the same nonce again
    <Refusal.REPLAYED: 'replayed'>
    >>> data = oracle.close_interval(0)
    >>> data.energy_wh.tolist(), data.estimated.tolist()
    ([1250], [False])
    >>> oracle.close_interval(1).method.tolist()           # no reading: last value
    ['last_value']
    """

    def __init__(self, config: OracleConfig | None = None, *,
                 journal: Journal | None = None) -> None:
        self.config = config or OracleConfig()
        self._journal = journal
        self._meters: dict[str, _Meter] = {}
        self._nonces: dict[str, set[int]] = {}
        self._readings: dict[int, dict[str, int]] = {}  # open intervals: meter -> energy_wh
        self._last: dict[str, int] = {}
        self._last_interval: dict[str, int] = {}
        self._closed: set[int] = set()

    def register(self, meter_id: str, key: Ed25519PublicKey | bytes | str, *,
                 participant: Any = None, max_import_wh: int,
                 max_export_wh: int | None = None) -> None:
        """Register a meter: its public key, its participant (default: the meter id)
        and its limits in Wh per interval (export limit defaults to the import limit)."""
        if not isinstance(meter_id, str) or not meter_id:
            raise InputError("meter_id", f"must be a non-empty string, got {meter_id!r}")
        if meter_id in self._meters:
            raise InputError("meter_id", f"meter {meter_id!r} is already registered")
        pub = public_key(key, "key")
        export = max_import_wh if max_export_wh is None else max_export_wh
        for name, value in (("max_import_wh", max_import_wh), ("max_export_wh", export)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise InputError(name, f"must be an integer >= 0, got {value!r}")
        if self._journal is not None:
            self._journal.register_meters({meter_id: pub})
        self._meters[meter_id] = _Meter(pub, meter_id if participant is None else participant,
                                        int(max_import_wh), int(export))
        self._nonces[meter_id] = set()

    @property
    def meter_ids(self) -> list[str]:
        return list(self._meters)

    def submit(self, readings: Sequence[MeterReading], *, now_ms: int) -> list[Verdict]:
        """Check readings (in order) and accept those that pass; one verdict each."""
        for row, r in enumerate(readings):
            if not isinstance(r, MeterReading):
                raise InputError("readings", f"expected a MeterReading, got {r!r}", row=row)
            for name in ("interval", "energy_wh", "nonce", "timestamp_ms"):
                value = getattr(r, name)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InputError(name, f"must be an integer, got {value!r}", row=row)
        meters = [self._meters.get(r.meter_id) for r in readings]
        valid = verify_many([m.key if m else None for m in meters],
                            [r.message() for r in readings],
                            [bytes(r.signature) for r in readings])
        verdicts, accepted = [], []
        for r, meter, ok in zip(readings, meters, valid, strict=True):
            reason, detail = self._check(r, meter, bool(ok), now_ms)
            verdicts.append(Verdict(r.meter_id, r.interval, reason, detail))
            if reason is None:
                self._nonces[r.meter_id].add(r.nonce)
                self._readings.setdefault(r.interval, {})[r.meter_id] = r.energy_wh
                if r.interval >= self._last_interval.get(r.meter_id, -1):
                    self._last[r.meter_id] = r.energy_wh
                    self._last_interval[r.meter_id] = r.interval
                accepted.append(r)
        if self._journal is not None and accepted:
            self._journal.append_readings(accepted)
        return verdicts

    def _check(self, r: MeterReading, meter: _Meter | None, signed_ok: bool,
               now_ms: int) -> tuple[Refusal | None, str]:
        cfg = self.config
        if meter is None:
            return Refusal.UNKNOWN_METER, f"meter {r.meter_id!r} is not registered"
        if not r.signature:
            return Refusal.UNSIGNED, "the reading carries no signature"
        if not signed_ok:
            return Refusal.BAD_SIGNATURE, "the signature does not verify for this meter"
        if r.nonce in self._nonces[r.meter_id]:
            return Refusal.REPLAYED, f"nonce {r.nonce} was already used by this meter"
        if r.meter_id in self._readings.get(r.interval, {}):
            return Refusal.DUPLICATE, f"the meter already has a reading for interval {r.interval}"
        if r.interval < 0:
            return Refusal.OUT_OF_RANGE, f"interval {r.interval} is negative"
        if not -meter.max_export_wh <= r.energy_wh <= meter.max_import_wh:
            return Refusal.OUT_OF_RANGE, (f"energy_wh {r.energy_wh} outside "
                                          f"[-{meter.max_export_wh}, {meter.max_import_wh}]")
        end = cfg.interval_end_ms(r.interval)
        if r.timestamp_ms < end - cfg.max_skew_ms:
            return Refusal.EARLY, f"dated {r.timestamp_ms}, before its interval ended at {end}"
        if r.timestamp_ms > now_ms + cfg.max_skew_ms:
            return Refusal.EARLY, f"dated {r.timestamp_ms}, in the future (now {now_ms})"
        if now_ms - r.timestamp_ms > cfg.max_age_ms:
            return Refusal.STALE, (f"{now_ms - r.timestamp_ms} ms old, "
                                   f"older than {cfg.max_age_ms} ms")
        if r.interval in self._closed:
            return Refusal.STALE, f"interval {r.interval} is already closed"
        return None, ""

    def close_interval(self, interval: int, *,
                       schedule_wh: Mapping[str, float] | None = None) -> MeterData:
        """Close an interval: every registered meter's energy, estimating the missing.

        ``schedule_wh`` maps meter ids to the energy their participant
        scheduled (e.g. their accepted market position plus planned utility
        exchange); a missing reading takes it (rounded to Wh), else the meter's
        last accepted value, else zero. Later readings for the interval are STALE.
        """
        if interval in self._closed:
            raise InputError("interval", f"interval {interval} is already closed")
        schedule = dict(schedule_wh or {})
        unknown = sorted(set(schedule) - set(self._meters))
        if unknown:
            raise InputError("schedule_wh", f"unknown meter {unknown[0]!r}")
        got = self._readings.pop(interval, {})
        ids, energy, method = [], [], []
        for meter_id in self._meters:
            ids.append(meter_id)
            if meter_id in got:
                energy.append(got[meter_id])
                method.append("metered")
            elif meter_id in schedule and np.isfinite(schedule[meter_id]):
                energy.append(round(schedule[meter_id]))
                method.append("schedule")
            elif meter_id in self._last:
                energy.append(self._last[meter_id])
                method.append("last_value")
            else:
                energy.append(0)
                method.append("zero")
        self._closed.add(interval)
        return MeterData(
            interval=interval,
            meter_id=np.array(ids, dtype=str),
            participant=np.array([self._meters[m].participant for m in ids]),
            energy_wh=np.array(energy, dtype=np.int64),
            method=np.array(method, dtype=str),
        )
