"""The interval grid of a simulation: tz-aware start, fixed step, n intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError

__all__ = ["Timeline"]


@dataclass(frozen=True)
class Timeline:
    """``periods`` intervals of ``step_minutes`` each, from ``start`` (tz-aware).

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96 * 7)
    >>> tl.dt_h, tl.periods_per_day, tl.days
    (0.25, 96, 7.0)
    """

    start: pd.Timestamp
    periods: int
    step_minutes: int = 15

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.start) if isinstance(self.start, (str, datetime)) else self.start
        if start.tzinfo is None:
            raise InputError("start", "must carry a time zone, e.g. '2026-06-01T00:00+02:00'")
        if self.periods < 1:
            raise InputError("periods", "must be >= 1")
        if self.step_minutes < 1 or 1440 % self.step_minutes:
            raise InputError("step_minutes", "must be >= 1 and divide a day (1440 minutes)")
        object.__setattr__(self, "start", start)

    @property
    def dt_h(self) -> float:
        """Interval length in hours."""
        return self.step_minutes / 60.0

    @property
    def periods_per_day(self) -> int:
        return 1440 // self.step_minutes

    @property
    def days(self) -> float:
        return self.periods / self.periods_per_day

    @property
    def index(self) -> pd.DatetimeIndex:
        """Start time of every interval."""
        return pd.date_range(self.start, periods=self.periods, freq=f"{self.step_minutes}min")

    @property
    def hour_of_day(self) -> npt.NDArray[np.float64]:
        """Local clock hour at the middle of each interval, in [0, 24)."""
        idx = self.index + pd.Timedelta(minutes=self.step_minutes / 2)
        return np.asarray(idx.hour + idx.minute / 60.0, dtype=np.float64)

    @property
    def start_hour(self) -> float:
        """Local clock hour at which the first interval starts, in [0, 24)."""
        first = pd.Timestamp(self.index[0])
        return first.hour + first.minute / 60.0 + first.second / 3600.0

    @property
    def day_of_year(self) -> npt.NDArray[np.int64]:
        """Day of year (1..366) of each interval."""
        return np.asarray(self.index.day_of_year, dtype=np.int64)

    @property
    def day(self) -> npt.NDArray[np.int64]:
        """Index of the simulated day (0-based) of each interval."""
        return np.arange(self.periods, dtype=np.int64) // self.periods_per_day
