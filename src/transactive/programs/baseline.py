"""Demand-response baselines: the load a household would have drawn on an event
day had there been no event, and how accurate that estimate is.

Layout
------
A meter series is an array ``meter_kwh[d, k, h]``: energy (kWh, load
positive) drawn on day ``d``, interval ``k`` of that day and by household ``h``,
shape ``(D, K, H)``; interval ``k`` covers clock hours ``[k, k + 1) * 24 / K``.
A run's ``(T, H)`` series of ``T = D * K`` intervals starting at midnight is
``meter_kwh.reshape(D, K, H)``. Rows are calendar days: on a day when clocks
change the caller decides which intervals stand for which hour. ``day_type[d]``
says what kind of day ``d`` is (:class:`~transactive.programs.dr.DayType`,
built by :func:`~transactive.programs.dr.day_types` from the weekday of day 0
and a list of holidays). An event runs on its day from ``event_start_hour`` to
``event_end_hour`` (local clock, on the interval grid). All households share
the calendar and the events; every method works on all of them at once.

Methods
-------
``"caiso_10in10"``
    CAISO's 10-in-10 customer load baseline (CAISO Tariff 4.13.4 and Business
    Practice Manual for Metering, "Customer Load Baseline Methodology"; CAISO
    Demand Response User Guide): interval by interval, the average of the 10
    most recent eligible weekdays before a weekday event; for a weekend or
    holiday event the average of the 4 most recent weekend/holiday days
    ("4-in-4"). Eligible: the same kind of day (weekday; or weekend/holiday),
    not an event day, within 45 calendar days before the event day. Day-of
    (load point) adjustment: the baseline is multiplied by the ratio of metered
    to baseline energy in the 3 hours from 4 h to 1 h before the event start
    (the hour just before the event is skipped, as load may already respond to
    the notice), the ratio clipped to ``[1 - cap, 1 + cap]``, ``cap = 0.2``.
``"pjm_high4of5"``
    PJM's Economic Load Response customer baseline load (PJM Manual 11,
    Energy & Ancillary Services Market Operations, section 10, "Customer
    Baseline Load"): of the 5 most recent eligible weekdays before a weekday
    event (45-day look-back, no event days, no holidays), the 4 with the
    highest average load over the event's hours ("High 4 of 5"); for a Saturday
    event the high 2 of the 3 most recent Saturdays, for a Sunday or holiday
    event the high 2 of 3 of Sundays and holidays. The 4 (or 2) days are
    averaged interval by interval, per household (each household keeps its own
    days). Symmetric additive adjustment: the mean per-interval difference
    between metered and baseline load over the 3 hours ending 1 hour before the
    event start is added to every interval, up or down, without a cap. Ties
    for the day left out are broken by keeping the more recent day (our rule).
``"regression"``
    A weather regression per interval of the day and household (as in
    Coughlin et al., "Statistical analysis of baseline load models for
    non-residential buildings", Energy and Buildings 41 (2009) 374-381):
    ``load[d, k] = a_k + b_k * temperature_c[d, k]``, or, with
    ``balance_point_c`` set, ``a_k + c_k * HDD + e_k * CDD`` with
    ``HDD = max(balance - T, 0)`` and ``CDD = max(T - balance, 0)`` (a
    change-point model), fitted by least squares on every earlier non-event day
    of the same kind (weekday; or weekend/holiday), evaluated at the event
    day's temperatures. No day-of adjustment: the weather does that job.
    It needs one day more than it has coefficients.

In every method the baseline of day ``d`` reads only days before ``d`` that
are not event days, and (for the adjustment) day ``d``'s own intervals before
the event. A day without enough eligible history is refused with an
:class:`~transactive.errors.InputError` saying what it lacks (no fall-back
to fewer days, or to event days, is implemented).

The rules are as we read the documents named above; check the current revision
of each before settling real money.

Examples
--------
Ten weekdays at 1 kWh an hour, then an event day that ran at 1.1 kWh an hour
before a 14:00-18:00 event:

>>> from transactive.programs.dr import day_types
>>> days = day_types(first_weekday=0, n_days=15)      # day 0 a Monday
>>> meter = np.ones((15, 24, 1))
>>> meter[14] = 1.1                                    # day 14: a Monday
>>> b = baseline(meter, [14], method="caiso_10in10", day_type=days,
...              event_start_hour=14, event_end_hour=18)
>>> b.shape, round(float(b[0, 15, 0]), 6)              # raised 10 % by the adjustment
((1, 24, 1), 1.1)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.programs.dr import _day_type, _days, _frozen, _hours, _mask

__all__ = ["BaselineErrors", "Method", "baseline", "baseline_errors"]

Array = npt.NDArray[np.float64]
Method = Literal["caiso_10in10", "pjm_high4of5", "regression"]


@dataclass(frozen=True)
class _Rule:
    """One method's day matching, as data (see the module docstring).

    ``group[t]`` is the pool of days a day of type ``t`` draws from; ``pool[g]``
    the number of most recent eligible days of pool ``g`` looked at and
    ``keep[g]`` how many of them (the highest by event-hour load) are averaged.
    ``adjust`` is the day-of adjustment, over the ``adjust_hours`` ending
    ``gap_hours`` before the event start.
    """

    group: tuple[int, int, int, int]
    pool: tuple[int, ...]
    keep: tuple[int, ...]
    lookback_days: int | None
    adjust: Literal["ratio", "additive", "none"]
    group_names: tuple[str, ...]
    adjust_hours: float = 3.0
    gap_hours: float = 1.0


_RULES: dict[str, _Rule] = {
    "caiso_10in10": _Rule(group=(0, 1, 1, 1), pool=(10, 4), keep=(10, 4), lookback_days=45,
                          adjust="ratio", group_names=("weekday", "weekend/holiday")),
    "pjm_high4of5": _Rule(group=(0, 1, 2, 2), pool=(5, 3, 3), keep=(4, 2, 2), lookback_days=45,
                          adjust="additive",
                          group_names=("weekday", "Saturday", "Sunday/holiday")),
    "regression": _Rule(group=(0, 1, 1, 1), pool=(0, 0), keep=(0, 0), lookback_days=None,
                        adjust="none", group_names=("weekday", "weekend/holiday")),
}


def _meter(meter_kwh: Any) -> Array:
    try:
        meter = np.asarray(meter_kwh, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("meter_kwh", "must be an array of numbers") from None
    if meter.ndim != 3 or 0 in meter.shape:
        raise InputError("meter_kwh", "must be (days, intervals per day, households), e.g. "
                                      f"a (T, H) series .reshape(D, K, H); got {meter.shape}")
    if 1440 % meter.shape[1]:
        raise InputError("meter_kwh", f"{meter.shape[1]} intervals per day do not divide a day "
                                      "into whole minutes")
    bad = np.argwhere(~np.isfinite(meter))
    if bad.size:
        d, k, h = (int(i) for i in bad[0])
        raise InputError("meter_kwh", f"must be finite; day {d}, interval {k}, household {h} "
                                      f"holds {meter[d, k, h]!r}")
    return meter


def _temperature(temperature_c: Any, method: str, shape: tuple[int, int]) -> Array | None:
    if method != "regression":
        if temperature_c is not None:
            raise InputError("temperature_c", "is used only by method='regression'")
        return None
    if temperature_c is None:
        raise InputError("temperature_c", f"method='regression' needs the outdoor temperature "
                                          f"of every interval, shape {shape}")
    try:
        temp = np.asarray(temperature_c, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("temperature_c", "must be an array of numbers") from None
    if temp.shape != shape:
        raise InputError("temperature_c", f"must be (days, intervals per day) = {shape}, got "
                                          f"{temp.shape}")
    bad = np.argwhere(~np.isfinite(temp))
    if bad.size:
        raise InputError("temperature_c", f"must be finite; day {bad[0][0]}, interval "
                                          f"{bad[0][1]} is not")
    return temp


@dataclass(frozen=True)
class _Inputs:
    meter: Array
    day_type: npt.NDArray[np.int64]
    is_event: npt.NDArray[np.bool_]
    rule: _Rule
    method: str
    temperature: Array | None


def _inputs(meter_kwh: Any, event_days: Any, method: Any, day_type: Any,
            temperature_c: Any, cap: Any) -> _Inputs:
    if method not in _RULES:
        raise InputError("method", f"must be one of {', '.join(get_args(Method))}, got "
                                   f"{method!r}")
    meter = _meter(meter_kwh)
    n_days, k, _ = meter.shape
    is_event = np.zeros(n_days, dtype=bool)
    is_event[_days("event_days", event_days, n_days)] = True
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 <= cap < 1:
        raise InputError("cap", f"must be a number in [0, 1), got {cap!r}")
    return _Inputs(meter, _day_type(day_type, n_days), is_event, _RULES[method], method,
                   _temperature(temperature_c, method, (n_days, k)))


def _history(x: _Inputs, days: npt.NDArray[np.int64], n_coef: int
             ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Eligible earlier days of each target day, ``(E, D)``, and how many it needs."""
    group = np.asarray(x.rule.group)[x.day_type]
    j = np.arange(x.meter.shape[0])
    eligible = ((group[None, :] == group[days][:, None]) & (j[None, :] < days[:, None])
                & ~x.is_event[None, :])
    if x.rule.lookback_days is not None:
        eligible &= j[None, :] >= days[:, None] - x.rule.lookback_days
    if x.method == "regression":
        need = np.full(days.size, n_coef + 1, dtype=np.int64)
    else:
        need = np.asarray(x.rule.pool, dtype=np.int64)[group[days]]
    return eligible, need


def _refuse_short(x: _Inputs, days: npt.NDArray[np.int64], eligible: npt.NDArray[np.bool_],
                  need: npt.NDArray[np.int64]) -> None:
    have = eligible.sum(axis=1)
    short = np.flatnonzero(have < need)
    if short.size:
        i = short[0]
        name = x.rule.group_names[x.rule.group[x.day_type[days[i]]]]
        window = (f"in the {x.rule.lookback_days} days " if x.rule.lookback_days else "")
        raise InputError("event_days", f"day {days[i]}: the {x.method} baseline needs "
                                       f"{need[i]} eligible {name} days (earlier, not event "
                                       f"days) {window}before it, found {have[i]}")


def _features(temperature: Array, balance_point_c: float | None) -> Array:
    """Regression design ``(D, K, p)``: ``[1, T]`` or ``[1, HDD, CDD]``."""
    one = np.ones_like(temperature)
    if balance_point_c is None:
        return np.stack([one, temperature], axis=-1)
    return np.stack([one, np.maximum(balance_point_c - temperature, 0.0),
                     np.maximum(temperature - balance_point_c, 0.0)], axis=-1)


_CHUNK_DAYS = 32  # target days per pass: bounds the (days, K, H) temporaries


def _adjust_window(rule: _Rule, days: npt.NDArray[np.int64], start: Array,
                   n_intervals: int) -> Array:
    """``(E, K)`` 0/1 weights of the day-of adjustment window, checked."""
    first = start - rule.gap_hours - rule.adjust_hours
    if np.any(first < -1e-9):
        i = int(np.argmax(first < -1e-9))
        raise InputError("event_start_hour", f"day {days[i]}: the day-of adjustment needs the "
                                             f"{rule.adjust_hours:g} hours ending "
                                             f"{rule.gap_hours:g} h before the event, from "
                                             f"{first[i]:g} h; the event must start at or after "
                                             f"{rule.gap_hours + rule.adjust_hours:g} h")
    window = _mask(first, start - rule.gap_hours, n_intervals).astype(np.float64)
    if np.any(window.sum(axis=1) == 0):
        raise InputError("meter_kwh", f"intervals of {24 / n_intervals:g} h are too long for "
                                      f"the {rule.adjust_hours:g}-hour adjustment window")
    return window


def _rows(x: _Inputs, days: npt.NDArray[np.int64], event: npt.NDArray[np.bool_],
          start: Array, *, adjust: bool, cap: float, balance_point_c: float | None
          ) -> Iterator[tuple[slice, Array]]:
    """The baselines of ``days`` whose events cover ``event`` ``(E, K)``, in
    passes of at most ``_CHUNK_DAYS`` days: ``(rows, (len(rows), K, H))``."""
    meter, rule = x.meter, x.rule
    n_days, n_intervals, n_households = meter.shape
    features = (None if x.temperature is None
                else _features(x.temperature, balance_point_c))
    eligible, need = _history(x, days, 0 if features is None else features.shape[-1])
    _refuse_short(x, days, eligible, need)
    adjusting = adjust and rule.adjust != "none"
    window = _adjust_window(rule, days, start, n_intervals) if adjusting else None
    flat = meter.reshape(n_days, -1)
    if features is not None:
        n_coef = features.shape[-1]
        products = (features[:, :, :, None] * meter[:, :, None, :]).reshape(n_days, -1)
    for lo in range(0, days.size, _CHUNK_DAYS):
        rows = slice(lo, lo + _CHUNK_DAYS)
        d, ok, n = days[rows], eligible[rows], need[rows]
        if features is not None:  # least squares over the eligible days
            w = ok.astype(np.float64)
            xtx = np.einsum("ed,dkp,dkq->ekpq", w, features, features)
            xty = (w @ products).reshape(d.size, n_intervals, n_coef, n_households)
            coef = np.linalg.pinv(xtx, hermitian=True) @ xty
            yield rows, np.einsum("ekp,ekph->ekh", features[d], coef)
            continue
        # the `n` most recent eligible days, then per household the `keep` of them
        # with the highest event-hour load (ties: the older day is left out)
        recent = np.cumsum(ok[:, ::-1], axis=1)[:, ::-1]
        pool = ok & (recent <= n[:, None])
        keep = np.asarray(rule.keep, dtype=np.int64)[np.asarray(rule.group)[x.day_type[d]]]
        if np.array_equal(keep, n):  # all of them (CAISO)
            base = ((pool / n[:, None]) @ flat).reshape(d.size, n_intervals, n_households)
        else:
            width = int(n.max())
            pick = np.argsort(~pool, axis=1, kind="stable")[:, :width]  # oldest first
            valid = np.arange(width)[None, :] < n[:, None]
            hours = event[rows] / event[rows].sum(axis=1, keepdims=True)
            load = np.stack([np.einsum("ek,ekh->eh", hours, meter[pick[:, p]])
                             for p in range(width)], axis=1)
            order = np.argsort(np.where(valid[:, :, None], load, np.inf), axis=1,
                               kind="stable")
            rank = np.argsort(order, axis=1, kind="stable")
            weight = (valid[:, :, None] & (rank >= (n - keep)[:, None, None])) \
                / keep[:, None, None]
            base = sum((weight[:, p, None, :] * meter[pick[:, p]] for p in range(width)),
                       start=np.zeros((d.size, n_intervals, n_households)))
        if window is None:
            yield rows, base
            continue
        metered = np.einsum("ek,ekh->eh", window[rows], meter[d])
        expected = np.einsum("ek,ekh->eh", window[rows], base)
        if rule.adjust == "additive":
            shift = (metered - expected) / window[rows].sum(axis=1)[:, None]
            yield rows, base + shift[:, None, :]
            continue
        positive = expected > 0
        ratio = np.where(positive, metered / np.where(positive, expected, 1.0), 1.0)
        yield rows, base * np.clip(ratio, 1.0 - cap, 1.0 + cap)[:, None, :]


def baseline(meter_kwh: npt.ArrayLike, event_days: npt.ArrayLike, *, method: Method,
             day_type: npt.ArrayLike, event_start_hour: npt.ArrayLike,
             event_end_hour: npt.ArrayLike, days: npt.ArrayLike | None = None,
             temperature_c: npt.ArrayLike | None = None, balance_point_c: float | None = None,
             adjust: bool = True, cap: float = 0.2) -> Array:
    """Baseline load of each event day (or of any ``days``), per interval and household.

    Parameters
    ----------
    meter_kwh : array of float, shape (D, K, H)
        Metered energy per day, interval of the day and household, kWh.
    event_days : array of int
        The days with an event: never used as history.
    method : {"caiso_10in10", "pjm_high4of5", "regression"}
        The rule (module docstring).
    day_type : array of int, shape (D,)
        The :class:`~transactive.programs.dr.DayType` of each day (see
        :func:`~transactive.programs.dr.day_types`).
    event_start_hour, event_end_hour : float or array of float
        The event's clock hours on each day of ``days`` (one for all, or one
        per day), on the interval grid. They set the adjustment window, PJM's
        selection hours and, with :func:`~transactive.programs.dr.event_windows`,
        what is settled.
    days : array of int, optional
        The days to compute baselines for, each treated as an event day
        (default: ``event_days``); sorted, without repeats.
    temperature_c : array of float, shape (D, K), optional
        Outdoor temperature of every interval; needed by ``"regression"`` only.
    balance_point_c : float, optional
        ``"regression"`` on heating and cooling degrees about this temperature
        instead of on the temperature.
    adjust : bool
        Apply the method's day-of adjustment (default True; ``"regression"``
        has none).
    cap : float
        CAISO's adjustment cap: the ratio is clipped to ``[1 - cap, 1 + cap]``.

    Returns
    -------
    array of float, shape (len(days), K, H)
        kWh per interval, whole days (the adjustment applies to every interval).

    Raises
    ------
    InputError
        Naming the field: shapes, non-finite values, days outside the series,
        an unknown method, event hours off the grid or too early for the
        adjustment window, a day without enough eligible history (how many
        days of which kind it needs and how many it has).
    """
    x = _inputs(meter_kwh, event_days, method, day_type, temperature_c, cap)
    targets = np.flatnonzero(x.is_event) if days is None else _days("days", days,
                                                                    x.meter.shape[0])
    start, end = _hours(event_start_hour, event_end_hour, x.meter.shape[1], targets.size)
    if balance_point_c is not None and not np.isfinite(balance_point_c):
        raise InputError("balance_point_c", f"must be a finite temperature, got "
                                            f"{balance_point_c!r}")
    out = np.empty((targets.size, *x.meter.shape[1:]))
    for rows, base in _rows(x, targets, _mask(start, end, x.meter.shape[1]), start,
                            adjust=adjust, cap=float(cap), balance_point_c=balance_point_c):
        out[rows] = base
    return out


@dataclass(frozen=True, eq=False)
class BaselineErrors:
    """Accuracy of a baseline on days without events, over the event hours.

    ``error = baseline - metered`` in each event-hour interval of each test
    day. ``bias_pct = 100 * mean(error) / mean(metered)`` (positive: the
    baseline overstates the load, so it would overpay) and ``cv_rmse_pct =
    100 * sqrt(mean(error**2)) / mean(metered)`` (CV(RMSE), relative RMSE), per
    household (``(H,)``, NaN for a household with no load in those hours) and
    ``overall``, pooled over every household, day and interval. These are the
    figures of baseline accuracy studies such as Bode & Ciccone, "California
    ISO Baseline Accuracy Assessment" (Nexant, 2017).
    """

    days: npt.NDArray[np.int64]
    bias_pct: Array
    cv_rmse_pct: Array
    overall_bias_pct: float
    overall_cv_rmse_pct: float


def baseline_errors(meter_kwh: npt.ArrayLike, event_days: npt.ArrayLike, *, method: Method,
                    day_type: npt.ArrayLike, event_start_hour: float, event_end_hour: float,
                    temperature_c: npt.ArrayLike | None = None,
                    balance_point_c: float | None = None, adjust: bool = True,
                    cap: float = 0.2) -> BaselineErrors:
    """Bias and CV(RMSE) of a baseline method, tested on days without events.

    Every day that is not an event day and has enough eligible history is
    treated as if it had an event from ``event_start_hour`` to
    ``event_end_hour``: its baseline (:func:`baseline`, same arguments) is
    compared with what was metered in those hours (:class:`BaselineErrors`).
    Days lacking history are skipped; if none is left, :class:`InputError`.

    Examples
    --------
    A flat load is its own baseline (weekdays from the 11th, weekend days from
    the 5th on have enough history):

    >>> from transactive.programs.dr import day_types
    >>> meter = np.full((30, 24, 2), 0.5)
    >>> errors = baseline_errors(meter, [], method="caiso_10in10",
    ...                          day_type=day_types(0, 30), event_start_hour=16,
    ...                          event_end_hour=20)
    >>> errors.days.tolist(), errors.bias_pct.tolist(), errors.overall_cv_rmse_pct
    ([14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29], [0.0, 0.0], 0.0)
    """
    x = _inputs(meter_kwh, event_days, method, day_type, temperature_c, cap)
    n_intervals = x.meter.shape[1]
    start, end = _hours(event_start_hour, event_end_hour, n_intervals, 1)
    n_coef = 0 if x.temperature is None else (2 if balance_point_c is None else 3)
    candidates = np.flatnonzero(~x.is_event)
    eligible, need = _history(x, candidates, n_coef)
    tested = candidates[eligible.sum(axis=1) >= need]
    if tested.size == 0:
        raise InputError("meter_kwh", f"no day without an event has enough history to test the "
                                      f"{method} baseline on (it needs {need.max(initial=0)} "
                                      f"eligible earlier days)")
    event = np.broadcast_to(_mask(start, end, n_intervals), (tested.size, n_intervals))
    hours = event[0]
    n_households = x.meter.shape[2]
    error_sum, square_sum, metered_sum = (np.zeros(n_households) for _ in range(3))
    for rows, base in _rows(x, tested, event, np.broadcast_to(start, (tested.size,)),
                            adjust=adjust, cap=float(cap), balance_point_c=balance_point_c):
        metered = x.meter[tested[rows]][:, hours, :]
        error = base[:, hours, :] - metered
        error_sum += error.sum(axis=(0, 1))
        square_sum += (error**2).sum(axis=(0, 1))
        metered_sum += metered.sum(axis=(0, 1))
    count = tested.size * int(hours.sum())
    ok = metered_sum != 0
    scale = np.where(ok, 100.0 / np.where(ok, metered_sum / count, 1.0), np.nan)
    total = float(metered_sum.sum()) / (count * n_households)
    overall = 100.0 / total if total != 0 else np.nan
    return BaselineErrors(
        days=_frozen(tested), bias_pct=_frozen(error_sum / count * scale),
        cv_rmse_pct=_frozen(np.sqrt(square_sum / count) * scale),
        overall_bias_pct=float(error_sum.sum() / (count * n_households) * overall),
        overall_cv_rmse_pct=float(np.sqrt(square_sum.sum() / (count * n_households)) * overall))
