"""Retail tariffs: the utility's prices, the status quo a P2P market competes with.

The utility is the supplier and buyer of last resort: a household imports at
the retail price and exports at the feed-in price. In a P2P market these are a
buyer's outside option (so its ceiling) and a seller's (so its floor).

Every tariff keeps one contract (:class:`RetailTariff`): a ``kind`` and, for
a :class:`~transactive.timeline.Timeline`, ``retail_price_per_kwh(timeline)``
and ``feed_in_price_per_kwh_series(timeline)``, each a float64 array of shape
``(T,)`` in currency per kWh, the feed-in price never above the retail price
(else importing to export would be free money). The kinds:

``flat`` and ``tou`` (:class:`Tariff`)
    One retail price, or a higher one in weekday peak hours (time of use).
``rtp`` (:class:`RealTimeTariff`)
    Real-time pricing: retail = the wholesale day-ahead price + a fixed adder
    per kWh (network charges, levies, taxes, the supplier's margin); feed-in =
    the wholesale price, raised to a floor if one is set, never above retail.
    The wholesale series is synthetic (seeded) or read from a file
    (:mod:`transactive.programs.wholesale`).
``cpp`` (:class:`~transactive.programs.critical_peak.CriticalPeakTariff`)
    Critical-peak pricing: a flat or time-of-use base tariff, and a critical
    price in the event hours of event days, called the day before by a
    documented rule (in :mod:`transactive.programs.critical_peak`).

Tariffs whose prices depend on a draw hold a seed, not a generator, so that
the retail and the feed-in series of one timeline are drawn alike.
:func:`bills_under` prices each household's imports and exports under several
tariffs side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError
from transactive.programs.wholesale import WholesalePrices
from transactive.timeline import Timeline

__all__ = ["RealTimeTariff", "RetailTariff", "Tariff", "bills_under"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@runtime_checkable
class RetailTariff(Protocol):
    """The contract of every tariff (see the module docstring)."""

    @property
    def kind(self) -> str: ...

    def retail_price_per_kwh(self, timeline: Timeline) -> FloatArray: ...

    def feed_in_price_per_kwh_series(self, timeline: Timeline) -> FloatArray: ...


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(name, f"must be a number, got {value!r}")
    if not np.isfinite(value):
        raise InputError(name, f"must be a finite number, got {value!r}")
    return float(value)


def _hours(start_name: str, start: Any, end_name: str, end: Any) -> None:
    if not 0 <= _finite(start_name, start) < _finite(end_name, end) <= 24:
        raise InputError(end_name, f"need 0 <= {start_name} < {end_name} <= 24, "
                         f"got {start!r} and {end!r}")


def _check_timeline(timeline: Any) -> None:
    if not isinstance(timeline, Timeline):
        raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")


@dataclass(frozen=True)
class Tariff:
    """A retail tariff with a flat feed-in price.

    ``kind="flat"``: ``energy_price_per_kwh`` at all times.
    ``kind="tou"`` (time of use): ``peak_price_per_kwh`` on weekdays from
    ``peak_start_hour`` to ``peak_end_hour`` (local clock), otherwise
    ``energy_price_per_kwh``.

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-06-01", tz="UTC"), periods=96)  # a Monday
    >>> t = Tariff("tou", 0.25, feed_in_price_per_kwh=0.08, peak_price_per_kwh=0.40)
    >>> p = t.retail_price_per_kwh(tl)
    >>> float(p[0]), float(p[18 * 4])
    (0.25, 0.4)
    """

    kind: Literal["flat", "tou"]
    energy_price_per_kwh: float
    feed_in_price_per_kwh: float
    peak_price_per_kwh: float | None = None
    peak_start_hour: float = 17.0
    peak_end_hour: float = 21.0

    def __post_init__(self) -> None:
        if self.kind not in ("flat", "tou"):
            raise InputError("tariff.kind", f"must be 'flat' or 'tou', got {self.kind!r}")
        for name in ("energy_price_per_kwh", "feed_in_price_per_kwh"):
            _finite(f"tariff.{name}", getattr(self, name))
        if self.kind == "tou":
            if self.peak_price_per_kwh is None or not np.isfinite(self.peak_price_per_kwh):
                raise InputError("tariff.peak_price_per_kwh", "is required for a 'tou' tariff")
            if not 0 <= self.peak_start_hour < self.peak_end_hour <= 24:
                raise InputError("tariff.peak_end_hour",
                                 "need 0 <= peak_start_hour < peak_end_hour <= 24")
        if self.feed_in_price_per_kwh > min(self.energy_price_per_kwh,
                                            self.peak_price_per_kwh or np.inf):
            raise InputError("tariff.feed_in_price_per_kwh",
                             "must not exceed the retail price (else arbitrage is free)")

    @property
    def highest_price_per_kwh(self) -> float:
        """The highest retail price the tariff ever charges."""
        if self.kind == "tou" and self.peak_price_per_kwh is not None:
            return max(self.energy_price_per_kwh, self.peak_price_per_kwh)
        return self.energy_price_per_kwh

    def retail_price_per_kwh(self, timeline: Timeline) -> FloatArray:
        """Retail (import) price of every interval."""
        price = np.full(timeline.periods, self.energy_price_per_kwh, dtype=np.float64)
        if self.kind == "tou":
            hour = timeline.hour_of_day
            weekday = np.asarray(timeline.index.day_of_week < 5)
            peak = weekday & (hour >= self.peak_start_hour) & (hour < self.peak_end_hour)
            price[peak] = self.peak_price_per_kwh
        return price

    def feed_in_price_per_kwh_series(self, timeline: Timeline) -> FloatArray:
        """Feed-in (export) price of every interval."""
        return np.full(timeline.periods, self.feed_in_price_per_kwh, dtype=np.float64)


def _check_wholesale(wholesale: Any) -> None:
    if not isinstance(wholesale, WholesalePrices):
        raise InputError("wholesale", "must have a price_per_kwh(timeline) method, got "
                         f"{type(wholesale).__name__}")


@dataclass(frozen=True)
class RealTimeTariff:
    """Real-time pricing: retail = wholesale + ``adder_per_kwh``; feed-in =
    wholesale, raised to ``feed_in_floor_per_kwh`` (``None``: no floor) and
    never above retail.

    ``adder_per_kwh`` must be >= 0, so that exporting never pays more than
    importing costs.

    Examples
    --------
    >>> from transactive.programs.wholesale import read_day_ahead_csv
    >>> import io
    >>> text = "start,price_per_mwh\\n2026-01-05T00:00Z,90\\n2026-01-05T01:00Z,-20\\n"
    >>> rtp = RealTimeTariff(read_day_ahead_csv(io.StringIO(text)), adder_per_kwh=0.20)
    >>> tl = Timeline(pd.Timestamp("2026-01-05", tz="UTC"), periods=2, step_minutes=60)
    >>> rtp.retail_price_per_kwh(tl).round(3).tolist()
    [0.29, 0.18]
    >>> rtp.feed_in_price_per_kwh_series(tl).round(3).tolist()  # the floor of 0
    [0.09, 0.0]
    """

    wholesale: WholesalePrices
    adder_per_kwh: float
    feed_in_floor_per_kwh: float | None = 0.0

    def __post_init__(self) -> None:
        _check_wholesale(self.wholesale)
        if _finite("adder_per_kwh", self.adder_per_kwh) < 0:
            raise InputError("adder_per_kwh", "must be >= 0 (else feed-in, the wholesale "
                             "price, would exceed retail and arbitrage is free)")
        if self.feed_in_floor_per_kwh is not None:
            _finite("feed_in_floor_per_kwh", self.feed_in_floor_per_kwh)

    @property
    def kind(self) -> Literal["rtp"]:
        return "rtp"

    def retail_price_per_kwh(self, timeline: Timeline) -> FloatArray:
        """Wholesale price + adder, every interval."""
        _check_timeline(timeline)
        return self.wholesale.price_per_kwh(timeline) + self.adder_per_kwh

    def feed_in_price_per_kwh_series(self, timeline: Timeline) -> FloatArray:
        """Wholesale price (at least the floor, at most retail), every interval."""
        _check_timeline(timeline)
        wholesale = self.wholesale.price_per_kwh(timeline)
        if self.feed_in_floor_per_kwh is None:
            return wholesale
        floored: FloatArray = np.minimum(np.maximum(wholesale, self.feed_in_floor_per_kwh),
                                         wholesale + self.adder_per_kwh)
        return floored


def _energy(name: str, value: Any, periods: int) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be an array of numbers") from None
    if arr.ndim != 2 or arr.shape[0] != periods:
        raise InputError(name, f"must have shape (intervals={periods}, households), "
                         f"got {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        t, h = (int(i) for i in bad[0])
        raise InputError(name, f"must be finite and >= 0, got {arr[t, h]!r} "
                         f"(interval {t}, household {h})", row=t)
    return arr


def bills_under(tariffs: Mapping[str, RetailTariff], import_kwh: npt.ArrayLike,
                export_kwh: npt.ArrayLike, timeline: Timeline) -> pd.DataFrame:
    """Each household's bill under each tariff: its imports at the retail
    price less its exports at the feed-in price, summed over the intervals.

    Parameters
    ----------
    tariffs : mapping of name to tariff
        The tariffs to compare (any :class:`RetailTariff`), at least one.
    import_kwh, export_kwh : array of float, shape (T, n)
        Energy each household takes from and gives to the utility per interval
        (finite, >= 0).
    timeline : Timeline
        The intervals (``T = timeline.periods``).

    Returns
    -------
    pandas.DataFrame
        One row per household (index ``household``, 0..n-1), one column per
        tariff in the order given; money in the tariffs' currency, positive =
        the household pays.

    Examples
    --------
    Two hours (17 h off-peak, 18 h peak), two households; the first imports
    2 kWh in each hour, the second exports 3 kWh in the second:

    >>> tl = Timeline(pd.Timestamp("2026-06-01 17:00", tz="UTC"), periods=2, step_minutes=60)
    >>> flat = Tariff("flat", 0.30, feed_in_price_per_kwh=0.08)
    >>> tou = Tariff("tou", 0.20, feed_in_price_per_kwh=0.05, peak_price_per_kwh=0.50,
    ...              peak_start_hour=18.0, peak_end_hour=19.0)
    >>> bills = bills_under({"flat": flat, "tou": tou}, [[2.0, 0.0], [2.0, 0.0]],
    ...                     [[0.0, 0.0], [0.0, 3.0]], tl)
    >>> bills.columns.tolist(), bills.round(4).to_numpy().tolist()
    (['flat', 'tou'], [[1.2, 1.4], [-0.24, -0.15]])
    """
    _check_timeline(timeline)
    if not isinstance(tariffs, Mapping) or not tariffs:
        raise InputError("tariffs", "must be a non-empty mapping of name to tariff")
    for name, tariff in tariffs.items():
        if not isinstance(name, str) or not isinstance(tariff, RetailTariff):
            raise InputError("tariffs", f"{name!r} must name a tariff (with kind, "
                             "retail_price_per_kwh and feed_in_price_per_kwh_series)")
    imports = _energy("import_kwh", import_kwh, timeline.periods)
    exports = _energy("export_kwh", export_kwh, timeline.periods)
    if imports.shape != exports.shape:
        raise InputError("export_kwh", f"must have the shape of import_kwh {imports.shape}, "
                         f"got {exports.shape}")
    bills = {name: tariff.retail_price_per_kwh(timeline) @ imports
             - tariff.feed_in_price_per_kwh_series(timeline) @ exports
             for name, tariff in tariffs.items()}
    frame = pd.DataFrame(bills, index=pd.RangeIndex(imports.shape[1], name="household"))
    return frame
