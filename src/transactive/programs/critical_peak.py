"""Critical-peak pricing: a base tariff, and a critical price on event days.

A :class:`CriticalPeakTariff` charges its base tariff (flat or time of use,
:class:`~transactive.programs.tariffs.Tariff`) except in the event hours of
event days, when it charges the critical price. Event days are called the day
before, by a fixed rule (:meth:`CriticalPeakTariff.events`) on a forecast:
the day-ahead price (:class:`PriceTrigger`) or the outdoor temperature
(:class:`TemperatureTrigger`). The tariff can tell, for each interval, whether
an event is announced for tomorrow, so that a device can plan.

The shape follows the critical-peak programmes of utilities: critical days
"announced the day before, on the basis of forecast market conditions" (MIT,
*The Future of the Electric Grid*, 2011, glossary); Xcel Energy's Peak Plus
Plan (Boulder SmartGridCity) called 13 to 15 events a year, on weekdays only,
2 to 8 p.m., with 24 hours' notice, at 51 US cents per kWh, several times its
base price. The defaults (at most 15 events a year, 17-20 h, the notice at
14 h after the noon day-ahead auction, 0.80 per kWh) follow that pattern on
the evening peak of a European day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.agents.weather import outdoor_temperature_c
from transactive.errors import InputError
from transactive.programs.tariffs import (
    BoolArray,
    FloatArray,
    Tariff,
    _check_timeline,
    _check_wholesale,
    _finite,
    _hours,
)
from transactive.programs.wholesale import Seed, WholesalePrices
from transactive.timeline import Timeline

__all__ = ["CriticalPeakEvents", "CriticalPeakTariff", "PriceTrigger", "TemperatureTrigger"]


@dataclass(frozen=True)
class PriceTrigger:
    """Call an event for a day whose wholesale (day-ahead) price, averaged over
    the event hours, is at least ``threshold_per_kwh``. The day-ahead auction
    closes at noon the day before (SDAC), so the price is known in time."""

    wholesale: WholesalePrices
    threshold_per_kwh: float

    def __post_init__(self) -> None:
        _check_wholesale(self.wholesale)
        _finite("threshold_per_kwh", self.threshold_per_kwh)

    def signal(self, timeline: Timeline) -> FloatArray:
        return self.wholesale.price_per_kwh(timeline)

    def hits(self, event_hours_mean: FloatArray) -> BoolArray:
        out: BoolArray = event_hours_mean >= self.threshold_per_kwh
        return out


@dataclass(frozen=True, eq=False)
class TemperatureTrigger:
    """Call an event for a day whose outdoor temperature averaged over the
    event hours is at or above ``threshold_c`` (``hot=True``: a summer-peaking
    system) or at or below it (``hot=False``: winter-peaking).

    The forecast is taken as the outcome (a perfect day-ahead forecast): the
    series ``temperature_c`` given (one value per interval of the timeline the
    tariff is used on, e.g. the weather the community's heat pumps see), or
    else the seeded series of
    :func:`~transactive.agents.weather.outdoor_temperature_c` at the site.
    Exactly one of ``seed`` and ``temperature_c`` is given.
    """

    threshold_c: float
    hot: bool = True
    seed: Seed | None = None
    temperature_c: FloatArray | None = None
    latitude_deg: float = 48.0
    longitude_deg: float = 11.0

    def __post_init__(self) -> None:
        _finite("threshold_c", self.threshold_c)
        if (self.seed is None) == (self.temperature_c is None):
            raise InputError("temperature_c", "give either a seed or a temperature series")
        if self.temperature_c is not None:
            series = np.array(self.temperature_c, dtype=np.float64)  # a copy we freeze
            if series.ndim != 1 or not np.isfinite(series).all():
                raise InputError("temperature_c", "must be a 1-d array of finite numbers")
            series.flags.writeable = False
            object.__setattr__(self, "temperature_c", series)

    def signal(self, timeline: Timeline) -> FloatArray:
        if self.temperature_c is not None:
            if self.temperature_c.shape[0] != timeline.periods:
                raise InputError("temperature_c", f"has {self.temperature_c.shape[0]} values, "
                                 f"the timeline {timeline.periods} intervals")
            return self.temperature_c
        return outdoor_temperature_c(timeline, np.random.default_rng(self.seed),
                                     latitude_deg=self.latitude_deg,
                                     longitude_deg=self.longitude_deg)

    def hits(self, event_hours_mean: FloatArray) -> BoolArray:
        out: BoolArray = (event_hours_mean >= self.threshold_c if self.hot
                          else event_hours_mean <= self.threshold_c)
        return out


@dataclass(frozen=True, eq=False)
class CriticalPeakEvents:
    """The events of a critical-peak tariff on a timeline (arrays of shape ``(T,)``).

    ``event_day``: the interval lies on an event day. ``active``: the critical
    price applies (event hours of an event day). ``announced``: an event is
    announced for tomorrow (from the notice hour of the day before an event
    day to its end). ``dates``: the event days (local dates).
    """

    event_day: BoolArray
    active: BoolArray
    announced: BoolArray
    dates: npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class CriticalPeakTariff:
    """Critical-peak pricing: ``base`` (a flat or tou :class:`Tariff`) with
    ``critical_price_per_kwh`` from ``event_start_hour`` to ``event_end_hour``
    (local clock) on event days. Feed-in is the base tariff's.

    The event rule, applied day by day the day before: a day is an event day
    when (1) it is a weekday (Monday to Friday), (2) the ``trigger`` fires on
    its forecast (:class:`PriceTrigger` or :class:`TemperatureTrigger`: the
    forecast averaged over the day's event hours), (3) the timeline covers all
    of its event hours, and (4) fewer than ``max_events_per_year`` events were
    called in its calendar year so far (counted from the timeline's start).
    The event is announced at ``notice_hour`` (local) the day before.

    Examples
    --------
    >>> from transactive.programs.wholesale import SyntheticDayAhead
    >>> base = Tariff("flat", 0.28, feed_in_price_per_kwh=0.08)
    >>> cpp = CriticalPeakTariff(base, 0.80, PriceTrigger(SyntheticDayAhead(1), 0.10),
    ...                          max_events_per_year=2)
    >>> tl = Timeline(pd.Timestamp("2026-01-05", tz="Europe/Berlin"), periods=96 * 14)
    >>> ev = cpp.events(tl)
    >>> len(ev.dates) <= 2, bool((cpp.retail_price_per_kwh(tl)[ev.active] == 0.80).all())
    (True, True)
    """

    base: Tariff
    critical_price_per_kwh: float
    trigger: PriceTrigger | TemperatureTrigger
    event_start_hour: float = 17.0
    event_end_hour: float = 20.0
    max_events_per_year: int = 15
    notice_hour: float = 14.0

    def __post_init__(self) -> None:
        if not isinstance(self.base, Tariff):
            raise InputError("base", "must be a flat or tou Tariff, got "
                             f"{type(self.base).__name__}")
        if _finite("critical_price_per_kwh", self.critical_price_per_kwh) <= \
                self.base.highest_price_per_kwh:
            raise InputError("critical_price_per_kwh", "must be above the base tariff's "
                             f"highest price ({self.base.highest_price_per_kwh:g})")
        if not isinstance(self.trigger, PriceTrigger | TemperatureTrigger):
            raise InputError("trigger", "must be a PriceTrigger or a TemperatureTrigger, got "
                             f"{type(self.trigger).__name__}")
        _hours("event_start_hour", self.event_start_hour, "event_end_hour", self.event_end_hour)
        if not 0 <= _finite("notice_hour", self.notice_hour) < 24:
            raise InputError("notice_hour", f"must be within [0, 24), got {self.notice_hour!r}")
        count = self.max_events_per_year
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or \
                not 0 <= count <= 366:
            raise InputError("max_events_per_year",
                             f"must be an integer in [0, 366], got {count!r}")

    @property
    def kind(self) -> Literal["cpp"]:
        return "cpp"

    def events(self, timeline: Timeline) -> CriticalPeakEvents:
        """The event days, event hours and announcements on ``timeline``."""
        _check_timeline(timeline)
        local = timeline.index.tz_localize(None)
        first = local[0].normalize()
        day = np.asarray((local.normalize() - first).days, dtype=np.int64)
        n_days = int(day[-1]) + 1
        dates = pd.date_range(first, periods=n_days, freq="D")
        hour = timeline.hour_of_day
        in_hours = (hour >= self.event_start_hour) & (hour < self.event_end_hour)
        full_day_hours = (np.arange(timeline.periods_per_day) + 0.5) * timeline.dt_h
        needed = int(((full_day_hours >= self.event_start_hour)
                      & (full_day_hours < self.event_end_hour)).sum())

        signal = self.trigger.signal(timeline)
        count = np.bincount(day[in_hours], minlength=n_days)
        total = np.bincount(day[in_hours], weights=signal[in_hours], minlength=n_days)
        covered = (count >= needed) & (count > 0)
        mean = np.divide(total, count, out=np.full(n_days, np.nan), where=count > 0)
        candidate = covered & np.asarray(dates.day_of_week < 5) & self.trigger.hits(mean)

        # At most max_events_per_year per calendar year, first come first served.
        called = np.cumsum(candidate)
        year = np.asarray(dates.year)
        new_year = np.r_[True, year[1:] != year[:-1]]
        before_year = np.maximum.accumulate(np.where(new_year, called - candidate, 0))
        event = candidate & (called - before_year <= self.max_events_per_year)

        event_day = event[day]
        tomorrow = np.r_[event[1:], False]
        announced = tomorrow[day] & (hour >= self.notice_hour)
        return CriticalPeakEvents(event_day=event_day, active=event_day & in_hours,
                                  announced=announced,
                                  dates=np.asarray(dates[event].values, dtype="datetime64[D]"))

    def retail_price_per_kwh(self, timeline: Timeline) -> FloatArray:
        """The base tariff's price, the critical price in event hours of event days."""
        price = self.base.retail_price_per_kwh(timeline)
        price[self.events(timeline).active] = self.critical_price_per_kwh
        return price

    def feed_in_price_per_kwh_series(self, timeline: Timeline) -> FloatArray:
        """The base tariff's feed-in price."""
        return self.base.feed_in_price_per_kwh_series(timeline)
