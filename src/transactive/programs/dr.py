"""Demand-response events and their settlement: the calendar, event windows,
negawatts, their payment and the rebound.

Days and events
---------------
Series are laid out by day as in :mod:`transactive.programs.baseline`:
``x[d, k, h]`` on day ``d``, interval ``k`` of the day (clock hours
``[k, k + 1) * 24 / K``), household ``h``. :class:`DayType` tells weekdays,
Saturdays, Sundays and holidays apart (:func:`day_types` from the weekday of
day 0); :func:`event_windows` marks the intervals of an event given by clock
hours.

Settlement
----------
The inputs are the event days' rows of that layout: ``meter_kwh[e, k, h]`` and
``baseline_kwh[e, k, h]`` (e.g. :func:`~transactive.programs.baseline.baseline`)
on event day ``e``, interval ``k``, household ``h``, and ``event_mask[e, k]``
the intervals under an event (e.g. :func:`event_windows`). An event is a run of
consecutive event intervals within one day; a day may hold several.

Rules
-----
reduction  ``baseline - metered`` in each event interval, kWh. With
           ``floor="interval"`` (default) each interval's reduction is floored
           at zero, so consuming above the baseline in one interval does not
           cancel a reduction in another (the household is paid for what it
           cut, and its overshoots are left to its retail bill). With
           ``floor="event"`` an event counts only if its net reduction over
           all its intervals is positive, and then every interval of it counts,
           negative ones included. Which floor a program uses is the
           program's rule; neither is taken from a cited document.
payment    the counted reduction of each interval times ``price_per_kwh`` of
           that interval, currency.
rebound    the load above the baseline, ``max(metered - baseline, 0)``, in the
           intervals of the ``rebound_hours`` after each event's end that are
           not themselves under an event, on the same day (a rebound window
           is cut at midnight), kWh. Not charged here: a program that charges
           it can price it.

Examples
--------
One household, hourly intervals; an event from 17:00 to 19:00, one hour of
rebound measured after it:

>>> meter = np.full((1, 24, 1), 2.0)
>>> meter[0, 17:19, 0] = [0.5, 1.0]      # cut by 1.5 and 1.0 kWh
>>> meter[0, 19, 0] = 2.8                # the rebound: 0.8 kWh above the baseline
>>> baseline_kwh = np.full((1, 24, 1), 2.0)
>>> event = np.zeros((1, 24), dtype=bool)
>>> event[0, 17:19] = True
>>> settled = negawatts(meter, baseline_kwh, event, 0.5, rebound_hours=1)
>>> settled.reduction_kwh.tolist(), settled.payment.tolist(), settled.rebound_kwh.round(6).tolist()
([2.5], [1.25], [0.8])
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError

__all__ = ["DayType", "Negawatts", "day_types", "event_windows", "negawatts"]

Array = npt.NDArray[np.float64]

class DayType(IntEnum):
    """The kind of a calendar day, as the baseline rules tell days apart."""

    WEEKDAY = 0
    SATURDAY = 1
    SUNDAY = 2
    HOLIDAY = 3


def day_types(first_weekday: int, n_days: int, holidays: npt.ArrayLike = ()
              ) -> npt.NDArray[np.int64]:
    """The :class:`DayType` of each of ``n_days`` consecutive days.

    ``first_weekday`` is the day of the week of day 0 (0 = Monday ... 6 =
    Sunday, as ``pandas.Timestamp.day_of_week``); ``holidays`` are day indices.

    Examples
    --------
    >>> day_types(first_weekday=4, n_days=4, holidays=[3]).tolist()  # Fri, Sat, Sun, Mon
    [0, 1, 2, 3]
    """
    if isinstance(first_weekday, bool) or not isinstance(first_weekday, int | np.integer) \
            or not 0 <= first_weekday <= 6:
        raise InputError("first_weekday", f"must be an integer 0 (Monday) to 6, got "
                                          f"{first_weekday!r}")
    if isinstance(n_days, bool) or not isinstance(n_days, int | np.integer) or n_days < 1:
        raise InputError("n_days", f"must be an integer >= 1, got {n_days!r}")
    weekday = (first_weekday + np.arange(n_days)) % 7
    out = np.where(weekday == 5, DayType.SATURDAY,
                   np.where(weekday == 6, DayType.SUNDAY, DayType.WEEKDAY)).astype(np.int64)
    out[_days("holidays", holidays, n_days)] = DayType.HOLIDAY
    return out


def event_windows(event_start_hour: npt.ArrayLike, event_end_hour: npt.ArrayLike,
                  intervals_per_day: int, n_days: int = 1) -> npt.NDArray[np.bool_]:
    """``(n_days, intervals_per_day)`` mask of the intervals inside each day's event.

    Start and end are clock hours on the interval grid, one for all days or one
    per day; the event covers ``[start, end)``.

    Examples
    --------
    >>> event_windows(15, 21, intervals_per_day=8).astype(int).tolist()  # 3-hour intervals
    [[0, 0, 0, 0, 0, 1, 1, 0]]
    >>> event_windows(16, 21, intervals_per_day=8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transactive.errors.InputError: field 'event_start_hour': must be on the 3-hour interval grid...
    """
    start, end = _hours(event_start_hour, event_end_hour, intervals_per_day, n_days)
    return _mask(start, end, intervals_per_day)


def _days(field: str, values: Any, n_days: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(field, f"must be a 1-d array of day indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InputError(field, f"must hold integer day indices, got type {arr.dtype}")
    bad = np.flatnonzero((arr < 0) | (arr >= n_days))
    if bad.size:
        raise InputError(field, f"day {arr[bad[0]]} is outside the series (0 to {n_days - 1})",
                         row=int(bad[0]))
    return np.unique(arr.astype(np.int64))


def _hours(start: Any, end: Any, k: int, n: int) -> tuple[Array, Array]:
    step = 24.0 / k
    out = []
    for field, value in (("event_start_hour", start), ("event_end_hour", end)):
        try:
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
        except (TypeError, ValueError):
            raise InputError(field, f"must be one clock hour or one per day ({n})") from None
        grid = arr / step
        bad = np.flatnonzero(~np.isfinite(arr) | (np.abs(grid - np.round(grid)) > 1e-9))
        if bad.size:
            raise InputError(field, f"must be on the {step:g}-hour interval grid, got "
                                    f"{float(arr[bad[0]])!r}")
        out.append(arr)
    bad = np.flatnonzero((out[0] < 0) | (out[0] >= out[1]) | (out[1] > 24))
    if bad.size:
        raise InputError("event_end_hour", f"need 0 <= event_start_hour < event_end_hour <= 24, "
                                           f"got {out[0][bad[0]]:g} to {out[1][bad[0]]:g}")
    return out[0], out[1]


def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr.flags.writeable = False
    return arr


def _mask(start: Array, end: Array, k: int) -> npt.NDArray[np.bool_]:
    """``(n, k)``: the intervals wholly inside ``[start, end)`` hours of each day."""
    step = 24.0 / k
    clock = np.arange(k) * step
    return (clock >= start[:, None] - 1e-9) & (clock + step <= end[:, None] + 1e-9)


def _day_type(day_type: Any, n_days: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(day_type)
    if arr.shape != (n_days,) or arr.dtype.kind not in "iu":
        raise InputError("day_type", f"must be one DayType per day ({n_days} integers; see "
                                     f"day_types), got shape {arr.shape} of {arr.dtype}")
    bad = np.flatnonzero((arr < 0) | (arr > max(DayType)))
    if bad.size:
        raise InputError("day_type", f"{arr[bad[0]]} is not a DayType (0 to {max(DayType)})",
                         row=int(bad[0]))
    return arr.astype(np.int64)



@dataclass(frozen=True, eq=False)
class Negawatts:
    """The settlement of the events (module docstring for the rules); read-only arrays.

    ``reduction_kwh``, ``payment`` (currency) and ``rebound_kwh`` are per
    household, ``(H,)``; ``event_reduction_kwh`` is ``(N, H)``, the counted
    reduction of each of the ``N`` events in time order, which lies on
    ``event_day[n]`` (row of the inputs) from interval ``event_first[n]``.
    """

    reduction_kwh: Array
    payment: Array
    rebound_kwh: Array
    event_day: npt.NDArray[np.int64]
    event_first: npt.NDArray[np.int64]
    event_reduction_kwh: Array

    @property
    def total_reduction_kwh(self) -> float:
        """Reduction of all households, kWh."""
        return float(self.reduction_kwh.sum())

    @property
    def total_payment(self) -> float:
        """Payment to all households, currency."""
        return float(self.payment.sum())

    @property
    def total_rebound_kwh(self) -> float:
        """Rebound of all households, kWh."""
        return float(self.rebound_kwh.sum())


def _energy(field: str, values: Any) -> Array:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(field, "must be an array of numbers") from None
    if arr.ndim != 3:
        raise InputError(field, f"must be (event days, intervals per day, households), got "
                                f"shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        e, k, h = (int(i) for i in bad[0])
        raise InputError(field, f"must be finite; day {e}, interval {k}, household {h} is not")
    return arr


def negawatts(meter_kwh: npt.ArrayLike, baseline_kwh: npt.ArrayLike,
              event_mask: npt.ArrayLike, price_per_kwh: npt.ArrayLike, *,
              rebound_hours: float = 2.0,
              floor: Literal["interval", "event"] = "interval") -> Negawatts:
    """Reduction, payment and rebound of each household over the events.

    Parameters
    ----------
    meter_kwh, baseline_kwh : array of float, shape (E, K, H)
        Metered and baseline energy of the event days, kWh.
    event_mask : array of bool, shape (E, K)
        The intervals under an event.
    price_per_kwh : float or array of float, shape (E, K)
        Price paid per kWh of reduction (>= 0), currency.
    rebound_hours : float
        Hours after each event in which the rebound is measured (>= 0, a whole
        number of intervals).
    floor : {"interval", "event"}
        Where reductions are floored at zero (module docstring).

    Returns
    -------
    Negawatts

    Raises
    ------
    InputError
        Naming the field: shapes that differ, non-finite values, a negative
        price, ``rebound_hours`` off the interval grid, an unknown ``floor``.
    """
    meter = _energy("meter_kwh", meter_kwh)
    base = _energy("baseline_kwh", baseline_kwh)
    if base.shape != meter.shape:
        raise InputError("baseline_kwh", f"must have the shape of meter_kwh {meter.shape}, "
                                         f"got {base.shape}")
    n_days, n_intervals, n_households = meter.shape
    event = np.asarray(event_mask)
    if event.shape != (n_days, n_intervals) or event.dtype != np.bool_:
        raise InputError("event_mask", f"must be a boolean array (event days, intervals per "
                                       f"day) = {(n_days, n_intervals)}, got {event.shape} of "
                                       f"{event.dtype}")
    try:
        price = np.broadcast_to(np.asarray(price_per_kwh, dtype=np.float64),
                                (n_days, n_intervals))
    except (TypeError, ValueError):
        raise InputError("price_per_kwh", f"must be one price or one per interval "
                                          f"{(n_days, n_intervals)}") from None
    if not np.all(np.isfinite(price)) or np.any(price < 0):
        raise InputError("price_per_kwh", "must be finite and >= 0")
    if floor not in ("interval", "event"):
        raise InputError("floor", f"must be 'interval' or 'event', got {floor!r}")
    try:
        steps = float(rebound_hours) * n_intervals / 24.0
    except (TypeError, ValueError):
        steps = np.nan
    if not np.isfinite(steps) or steps < 0 or abs(steps - round(steps)) > 1e-9:
        raise InputError("rebound_hours", f"must be >= 0 and a whole number of "
                                          f"{24 / n_intervals:g}-hour intervals, got "
                                          f"{rebound_hours!r}")

    # events: runs of event intervals within a day, in time order
    before = np.zeros_like(event)
    before[:, 1:] = event[:, :-1]
    after = np.zeros_like(event)
    after[:, :-1] = event[:, 1:]
    first = np.argwhere(event & ~before)
    last = np.argwhere(event & ~after)
    flat_first = first[:, 0] * n_intervals + first[:, 1]
    flat_last = last[:, 0] * n_intervals + last[:, 1]
    cut = ((base - meter) * event[:, :, None]).reshape(-1, n_households)
    running = np.vstack([np.zeros((1, n_households)), np.cumsum(cut, axis=0)])
    net = running[flat_last + 1] - running[flat_first]  # (N, H)
    if floor == "interval":
        counted = np.maximum(cut, 0.0)
        running = np.vstack([np.zeros((1, n_households)), np.cumsum(counted, axis=0)])
        per_event = running[flat_last + 1] - running[flat_first]
    else:
        paying = net > 0
        run = np.cumsum((event & ~before).ravel()) - 1  # event number of each interval
        inside = event.ravel()
        counted = np.zeros_like(cut)
        counted[inside] = cut[inside] * paying[run[inside]]
        per_event = np.where(paying, net, 0.0)

    # rebound: the `steps` intervals after the last end of an event, same day
    clock = np.broadcast_to(np.arange(n_intervals), event.shape)
    last_end = np.maximum.accumulate(np.where(event & ~after, clock, -1), axis=1)
    rebound = ~event & (last_end >= 0) & (clock - last_end <= round(steps))
    above = np.maximum(meter - base, 0.0) * rebound[:, :, None]
    return Negawatts(reduction_kwh=_frozen(counted.sum(axis=0)),
                     payment=_frozen((counted * price.reshape(-1, 1)).sum(axis=0)),
                     rebound_kwh=_frozen(above.sum(axis=(0, 1))),
                     event_day=_frozen(first[:, 0].astype(np.int64)),
                     event_first=_frozen(first[:, 1].astype(np.int64)),
                     event_reduction_kwh=_frozen(per_event))
