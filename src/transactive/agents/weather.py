"""Outdoor air temperature: a seeded series for a site and a timeline.

:func:`outdoor_temperature_c` returns the air temperature (°C, 2 m) at the
middle of each interval of a :class:`~transactive.timeline.Timeline`. Every
random draw comes from the ``rng`` passed in, in a fixed order (daily
anomalies, daily ranges, intra-day noise), so the same seed gives the same
series.

Model
-----
Each (solar) day ``d`` has a mean, a range and from them a minimum and a
maximum; a diurnal curve joins them; a little noise goes on top.

*Seasonal cycle.* The climatological daily mean is
``mean - amplitude * cos(2 pi (doy - coldest_doy) / 365.25)``. The defaults
are central European: the DWD area means of Germany for 1991-2020 (January
0.9, July 18.3 °C; annual 9.3 °C) have a first harmonic (fitted here to the
twelve monthly means) of 8.8 K with its minimum on 16 January; the annual
mean of the DWD station München-Stadt
(48.16° N, the default site of :mod:`~transactive.agents.profiles`) is 9.7 °C
(1981-2010, Statistisches Amt München, *Münchner Statistik* 1/2021).
Away from 48.16° the annual mean follows the meridional gradient of the
zonal-mean temperature, ``T2 P2(sin lat)`` with ``T2 = -28 K`` (the Legendre
fit of the observed Northern-Hemisphere zonal means used in energy-balance
models, North, Cahalan & Coakley 1981, *Rev. Geophys. Space Phys.* 19,
91-121), and the amplitude scales with ``sin |lat|`` (the annual swing of
insolation); south of the equator the cycle is shifted by half a year. These
latitude rules know no coast, mountain or ocean current: for a real site pass
its own ``annual_mean_c`` and ``annual_amplitude_k``.

*Persistence.* The daily mean departs from the climatology by an AR(1)
anomaly over days, ``x[d] = phi x[d-1] + e[d]``, stationary, with a standard
deviation that moves from ``daily_sd_k[0]`` at the coldest day to
``daily_sd_k[1]`` half a year later (winter weather varies more). The
defaults (``phi = 0.8``; 3.5 and 2.5 K) are our assumptions of the order seen
in central-European daily series, not a fit.

*Diurnal cycle.* The day's range (maximum minus minimum) moves from
``diurnal_range_k[0]`` in winter to ``diurnal_range_k[1]`` in summer (about 6
and 10 K in Munich: mean daily maxima and minima 2 / -4 °C in January and
23 / 13 °C in July and August, München Wiki, *Klima in München*, after the
DWD), times a mean-one lognormal factor per day (clear days swing more than
overcast ones). The curve is the model of Parton & Logan (1981, *Agric.
Meteorol.* 23, 205-216) for air at 1.5 m: from the minimum at ``c = -0.17``
h after sunrise a sine rises to the maximum ``a = 1.86`` h after solar noon
and falls to sunset; through the night the temperature decays exponentially
(``b = 2.2``) towards the next morning's minimum (here rescaled so that it
reaches that minimum exactly, with no jump). Sunrise and sunset come from
the day length at the site (declination after Cooper 1969), in local solar
time (longitude, no equation of time). The minimum and maximum are set so
that the curve's mean over the day is the day's mean.

*Noise.* An AR(1) process down the intervals, standard deviation
``noise_sd_k`` (0.3 K) and correlation time 1.5 h.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive._ar1 import ar1
from transactive.errors import InputError
from transactive.timeline import Timeline

__all__ = ["annual_cycle_c", "outdoor_temperature_c"]

FloatArray = npt.NDArray[np.float64]

DAYS_PER_YEAR = 365.25
# Seasonal cycle of the reference site and the latitude rules (module docstring).
_REF_LATITUDE_DEG = 48.16  # DWD station München-Stadt
_REF_MEAN_C = 9.7  # München-Stadt, 1981-2010
_REF_AMPLITUDE_K = 8.8  # first harmonic of the DWD area means of Germany, 1991-2020
_REF_COLDEST_DOY = 16.0
_ZONAL_T2_K = -28.0  # North, Cahalan & Coakley (1981)
# Parton & Logan (1981), air temperature at 150 cm.
_PL_A_H, _PL_B, _PL_C_H = 1.86, 2.2, -0.17
_RANGE_SIGMA = 0.25  # spread (log) of the daily range around its seasonal value
_NOISE_TAU_H = 1.5
_MAX_ABS_LATITUDE_DEG = 66.0  # a sunrise and a sunset every day


def _p2(x: Any) -> Any:
    """Second Legendre polynomial."""
    return 0.5 * (3.0 * np.square(x) - 1.0)


def annual_cycle_c(latitude_deg: float = 48.0) -> tuple[float, float, float]:
    """The default seasonal cycle at a latitude: annual mean (°C), amplitude
    (K) and the day of year of the coldest day (see the module docstring).

    Examples
    --------
    >>> mean, amplitude, coldest = annual_cycle_c(48.16)
    >>> round(mean, 2), round(amplitude, 2), coldest
    (9.7, 8.8, 16.0)
    >>> annual_cycle_c(60.0)[0] < annual_cycle_c(45.0)[0]  # colder to the north
    True
    """
    _check_latitude(latitude_deg)
    sin_lat = np.sin(np.radians(abs(latitude_deg)))
    sin_ref = np.sin(np.radians(_REF_LATITUDE_DEG))
    mean = _REF_MEAN_C + _ZONAL_T2_K * (_p2(sin_lat) - _p2(sin_ref))
    amplitude = _REF_AMPLITUDE_K * sin_lat / sin_ref
    coldest = _REF_COLDEST_DOY + (DAYS_PER_YEAR / 2 if latitude_deg < 0 else 0.0)
    return float(mean), float(amplitude), coldest


def _check_latitude(latitude_deg: Any) -> None:
    if not (isinstance(latitude_deg, int | float | np.number) and np.isfinite(latitude_deg)
            and abs(float(latitude_deg)) <= _MAX_ABS_LATITUDE_DEG):
        raise InputError("latitude_deg", f"must be within [-66, 66] (a sunrise and a sunset "
                                         f"every day), got {latitude_deg!r}")


def _number(name: str, value: Any, low: float, high: float, *, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(name, f"must be a number, got {value!r}")
    number = float(value)
    inside = low <= number < high if high_open else low <= number <= high
    if not (np.isfinite(number) and inside):
        bracket = ")" if high_open else "]"
        raise InputError(name, f"must be within [{low:g}, {high:g}{bracket}, got {value!r}")
    return number


def _pair(name: str, value: Any, high: float) -> tuple[float, float]:
    try:
        winter, summer = value
    except (TypeError, ValueError):
        raise InputError(name, f"must be a (winter, summer) pair, got {value!r}") from None
    return _number(name, winter, 0.0, high), _number(name, summer, 0.0, high)


def _parton_logan(hour: FloatArray, day: npt.NDArray[np.int64], day_length_h: FloatArray,
                  t_min: FloatArray, t_max: FloatArray) -> FloatArray:
    """The diurnal curve at solar ``hour`` of solar ``day`` (an index into the
    daily arrays, which reach one day before and after every ``day``)."""
    rise = 12.0 - day_length_h / 2.0
    sunset = 12.0 + day_length_h / 2.0
    lowest = rise + _PL_C_H  # hour of the minimum
    stretch = day_length_h + 2.0 * _PL_A_H
    t_sunset = t_min + (t_max - t_min) * np.sin(np.pi * (sunset - lowest) / stretch)
    # Night k runs from sunset of day k to the minimum of day k + 1.
    night_h = np.empty_like(day_length_h)
    night_h[:-1] = 24.0 - sunset[:-1] + lowest[1:]
    night_h[-1] = 24.0 - sunset[-1] + lowest[-1]

    out = np.empty_like(hour)
    early = hour < lowest[day]  # before the minimum: the night of the day before
    late = hour > sunset[day]
    daytime = ~(early | late)
    k = day[daytime]
    out[daytime] = t_min[k] + (t_max[k] - t_min[k]) * np.sin(
        np.pi * (hour[daytime] - lowest[k]) / stretch[k])
    for mask, since_sunset, k in (
        (late, hour[late] - sunset[day[late]], day[late]),
        (early, hour[early] + 24.0 - sunset[day[early] - 1], day[early] - 1),
    ):
        decay = (np.exp(-_PL_B * since_sunset / night_h[k]) - np.exp(-_PL_B)) / (1 - np.exp(-_PL_B))
        out[mask] = t_min[k + 1] + (t_sunset[k] - t_min[k + 1]) * decay
    return out


def _mean_shape(day_length_h: FloatArray) -> FloatArray:
    """Mean over 24 h of the curve for a minimum of 0 and a maximum of 1 (days
    of equal length)."""
    stretch = day_length_h + 2.0 * _PL_A_H
    rise_to_set = day_length_h - _PL_C_H  # from the minimum to sunset
    day_part = stretch / np.pi * (1.0 - np.cos(np.pi * rise_to_set / stretch))
    at_sunset = np.sin(np.pi * rise_to_set / stretch)
    e = np.exp(-_PL_B)
    night_mean = ((1.0 - e) / _PL_B - e) / (1.0 - e)
    mean: FloatArray = (day_part + at_sunset * (24.0 - rise_to_set) * night_mean) / 24.0
    return mean


def outdoor_temperature_c(
    timeline: Timeline,
    rng: np.random.Generator,
    *,
    latitude_deg: float = 48.0,
    longitude_deg: float = 11.0,
    annual_mean_c: float | None = None,
    annual_amplitude_k: float | None = None,
    coldest_day_of_year: float | None = None,
    diurnal_range_k: tuple[float, float] = (6.0, 10.0),
    daily_sd_k: tuple[float, float] = (3.5, 2.5),
    daily_persistence: float = 0.8,
    noise_sd_k: float = 0.3,
) -> FloatArray:
    """Outdoor air temperature (°C) at the middle of each interval, shape ``(T,)``.

    Parameters
    ----------
    timeline : Timeline
        The interval grid.
    rng : numpy.random.Generator
        The source of every random draw.
    latitude_deg, longitude_deg : float
        The site (north and east positive); ``|latitude_deg| <= 66``.
    annual_mean_c, annual_amplitude_k, coldest_day_of_year : float, optional
        The seasonal cycle; unset, each follows from the latitude
        (:func:`annual_cycle_c`).
    diurnal_range_k : (float, float)
        Mean daily maximum minus minimum in winter and in summer, K.
    daily_sd_k : (float, float)
        Standard deviation of the daily mean's anomaly in winter and summer, K.
    daily_persistence : float
        Day-to-day correlation of the anomaly, in [0, 1).
    noise_sd_k : float
        Standard deviation of the intra-day noise, K.

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-07-01", tz="Europe/Berlin"), periods=24 * 7,
    ...               step_minutes=60)
    >>> t = outdoor_temperature_c(tl, np.random.default_rng(1))
    >>> t.shape, bool(5 < t.mean() < 30)
    ((168,), True)
    >>> by_hour = t.reshape(7, 24).mean(axis=0)  # the week's mean day
    >>> bool(by_hour[14] > by_hour[5])            # afternoon above dawn
    True
    """
    if not isinstance(timeline, Timeline):
        raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")
    _check_latitude(latitude_deg)
    _number("longitude_deg", longitude_deg, -180.0, 180.0)
    default_mean, default_amplitude, default_coldest = annual_cycle_c(float(latitude_deg))
    mean = default_mean if annual_mean_c is None else _number(
        "annual_mean_c", annual_mean_c, -60.0, 60.0)
    amplitude = default_amplitude if annual_amplitude_k is None else _number(
        "annual_amplitude_k", annual_amplitude_k, 0.0, 40.0)
    coldest = default_coldest if coldest_day_of_year is None else _number(
        "coldest_day_of_year", coldest_day_of_year, 1.0, 366.0)
    range_k = _pair("diurnal_range_k", diurnal_range_k, 40.0)
    sd_k = _pair("daily_sd_k", daily_sd_k, 20.0)
    phi = _number("daily_persistence", daily_persistence, 0.0, 1.0, high_open=True)
    noise_sd = _number("noise_sd_k", noise_sd_k, 0.0, 10.0)

    # Local solar time of each interval's middle, and its solar day.
    mid = timeline.index.tz_convert("UTC") + pd.Timedelta(minutes=timeline.step_minutes / 2)
    solar_h = np.asarray(mid.asi8, dtype=np.float64) / 3.6e12 + float(longitude_deg) / 15.0
    solar_day = np.floor(solar_h / 24.0).astype(np.int64)
    hour = solar_h - 24.0 * solar_day
    first = int(solar_day[0]) - 1  # one day either side for the nights
    n_days = int(solar_day[-1]) - first + 2
    day = solar_day - first

    # Daily climatology.
    dates = pd.to_datetime(np.arange(first, first + n_days), unit="D")
    doy = np.asarray(dates.day_of_year, dtype=np.float64)
    season = np.cos(2 * np.pi * (doy - coldest) / DAYS_PER_YEAR)  # 1 at the coldest day
    summer = 0.5 * (1.0 - season)
    normal = mean - amplitude * season
    declination = np.radians(23.45) * np.sin(2 * np.pi * (284.0 + doy) / 365.0)
    cos_half_day = -np.tan(np.radians(float(latitude_deg))) * np.tan(declination)
    day_length_h = np.degrees(np.arccos(np.clip(cos_half_day, -1.0, 1.0))) * 2.0 / 15.0

    # Random streams, in a fixed order: anomalies, ranges, intra-day noise.
    sd = sd_k[0] + (sd_k[1] - sd_k[0]) * summer
    shock = rng.standard_normal(n_days) * sd
    shock[1:] *= np.sqrt(1.0 - phi * phi)
    anomaly = ar1(shock, phi)
    day_range = (range_k[0] + (range_k[1] - range_k[0]) * summer) * np.exp(
        _RANGE_SIGMA * rng.standard_normal(n_days) - _RANGE_SIGMA**2 / 2)
    t_min = normal + anomaly - day_range * _mean_shape(day_length_h)
    out = _parton_logan(hour, day, day_length_h, t_min, t_min + day_range)

    step_phi = float(np.exp(-timeline.dt_h / _NOISE_TAU_H))
    noise = rng.standard_normal(timeline.periods) * noise_sd
    noise[1:] *= np.sqrt(1.0 - step_phi * step_phi)
    out += ar1(noise, step_phi)
    return out
