"""Retail tariffs: the utility's prices, the status quo a P2P market competes with.

The utility is the supplier and buyer of last resort: a household imports at
the retail price and exports at the feed-in price. In a P2P market these are a
buyer's outside option (so its ceiling) and a seller's (so its floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.timeline import Timeline

__all__ = ["Tariff"]


@dataclass(frozen=True)
class Tariff:
    """A retail tariff with a flat feed-in price.

    ``kind="flat"``: ``energy_price_per_kwh`` at all times.
    ``kind="tou"`` (time of use): ``peak_price_per_kwh`` on weekdays from
    ``peak_start_hour`` to ``peak_end_hour`` (local clock), otherwise
    ``energy_price_per_kwh``.

    Examples
    --------
    >>> import pandas as pd
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
            if not np.isfinite(getattr(self, name)):
                raise InputError(f"tariff.{name}", "must be a finite number")
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

    def retail_price_per_kwh(self, timeline: Timeline) -> npt.NDArray[np.float64]:
        """Retail (import) price of every interval."""
        price = np.full(timeline.periods, self.energy_price_per_kwh, dtype=np.float64)
        if self.kind == "tou":
            hour = timeline.hour_of_day
            weekday = np.asarray(timeline.index.dayofweek < 5)
            peak = weekday & (hour >= self.peak_start_hour) & (hour < self.peak_end_hour)
            price[peak] = self.peak_price_per_kwh
        return price

    def feed_in_price_per_kwh_series(self, timeline: Timeline) -> npt.NDArray[np.float64]:
        """Feed-in (export) price of every interval."""
        return np.full(timeline.periods, self.feed_in_price_per_kwh, dtype=np.float64)
