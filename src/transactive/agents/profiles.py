"""Synthetic household load and rooftop PV profiles: seeded, vectorised, float32.

Both functions return arrays of shape ``(T, H)`` (intervals of a
:class:`~transactive.timeline.Timeline` by households) in kW, the mean power
of each interval. Every random draw comes from the ``rng`` passed in, in a
fixed order, so the same seed gives byte-identical arrays.

Load model
----------
The daily shape follows the structure of the German standard load profile for
households, H0 (BDEW/VDEW): a night base, a morning and a larger evening peak,
weekday/Saturday/Sunday shapes, and a seasonal factor given by the BDEW
dynamisation polynomial

    F(d) = -3.92e-10 d^4 + 3.20e-7 d^3 - 7.02e-5 d^2 + 2.10e-3 d + 1.24

of the day of year ``d`` (about 1.24 in winter, 0.80 in midsummer). The shape
is a sum of periodic (von Mises) bumps, each with a daily mean of exactly one,
so every household's expected annual energy is known in closed form and its
profile is scaled to ``annual_kwh`` before any noise is drawn. Each household
gets its own base share, peak times, peak sizes and seasonal swing; on top come
a mean-one AR(1) noise factor and short appliance bursts (1-3 kW for up to a
quarter of an hour) whose expected energy is part of the budget.

PV model
--------
Sun position, clear sky and transposition come from pvlib (Holmgren, Hansen &
Mikofski 2018, *J. Open Source Softw.* 3(29), 884; Anderson et al. 2023,
8(92), 5994); the weather is our own seeded process.

* Sun position at the middle of each interval by pvlib's ``'ephemeris'``
  method: within 0.01 degrees of NREL's SPA (Reda & Andreas 2004) in
  elevation over a year at 48 degrees north, about ten times faster than
  ``'nrel_numpy'`` for a year of 15-minute intervals.
* Clear-sky global horizontal irradiance (GHI) by the Haurwitz model as given
  by Reno, Hansen & Stein (SAND2012-2389), ``1098 cos z exp(-0.059 / cos z)``
  W/m², through :meth:`pvlib.location.Location.get_clearsky`: it needs only
  the sun, no turbidity data (pvlib's Ineichen model would read Linke
  turbidities from a file). Within 2 % of pvlib's simplified Solis with its
  default atmosphere over a year at Munich.
* All-sky GHI: the clear-sky value times a clear-sky index from a seeded
  weather process (a Markov chain of clear / partly cloudy / overcast days
  shared by the community, with seasonal odds tuned to a central-European
  climate, plus intraday cloud noise), split into beam and diffuse by the
  Erbs, Klein & Duffie (1982) correlation (:func:`pvlib.irradiance.erbs`).
* Plane-of-array irradiance by :func:`pvlib.irradiance.get_total_irradiance`
  with the Hay & Davies (1980) sky model (isotropic diffuse plus a
  circumsolar part that follows the beam, which the isotropic model of Liu &
  Jordan puts on every plane alike) and ground reflection at an albedo of
  0.2, once per distinct (tilt, azimuth) plane.
* AC power: a performance ratio, a linear module temperature coefficient at
  a cell temperature of ambient plus a NOCT-style heating by the
  plane-of-array irradiance, a small per-household performance spread and
  daily local weather, and inverter clipping at the rated capacity.

Orientation. Unless given, each household's array faces the equator (south in
the northern hemisphere) give or take a normal spread of 45 degrees, clipped at
110 degrees either side, with a tilt uniform over 15-45 degrees, both on a
5-degree lattice. The German PV registry (Marktstammdatenregister), as
analysed by Fraunhofer ISE ("Photovoltaikzubau in Deutschland in Zahlen",
2021), has 61 % (2000) to 42 % (2019) of new systems facing south, a growing
share facing east, west or east-west (about a fifth by 2019), and 54-63 % at
tilts of 20-40 degrees with a growing share below 20; the normal spread is our
assumption within those shares (it puts 38 % within 22.5 degrees of south and
13 % beyond 67.5).

Yield. The default community at 48 degrees north yields about 1,070 kWh per
kWp a year on average over seeds (1,010-1,160 for single seeds: the drawn
weather's year-to-year spread). Measured rooftop systems in Germany gave 816 (Baltic coast, 2017)
to 1,049 kWh/kWp (Bavaria, 2018) over 2012-2018 (te Heesen, Herbort & Rumpler
2019, *Solar Energy* 194, 128-135), and over 1,100 kWh/kWp in Bavaria in 2019
(the same group's yield study for 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import i0e

from transactive.errors import InputError
from transactive.timeline import Timeline

__all__ = ["load_profiles", "pv_profiles", "solar_elevation_deg"]

F32 = np.float32
HOURS_PER_YEAR = 8760.0

# ---------------------------------------------------------------- load shape
# Bumps of the daily load shape: (centre h, width h, daily mean) for weekday,
# Saturday and Sunday. Daily means are shares of an average weekday (= 1).
_BASE_SHARE = 0.38
_MORNING = ((6.9, 1.1, 0.10), (8.6, 1.6, 0.10), (9.2, 1.8, 0.09))
_MIDDAY = ((12.6, 1.3, 0.05), (12.5, 1.4, 0.10), (12.6, 1.3, 0.13))
_DAYTIME = ((15.5, 4.5, 0.22), (15.5, 4.5, 0.26), (15.5, 4.5, 0.26))
_EVENING_WINTER_H, _EVENING_SUMMER_H, _EVENING_WIDTH_H, _EVENING_SHARE = 18.6, 20.3, 1.9, 0.25
_NOISE_SIGMA, _NOISE_TAU_H = 0.2, 0.75  # AR(1) factor: std and correlation time
_BURST_KW = (1.0, 3.0)  # appliance bursts: power range, at most 15 minutes each
_BURST_MAX_H = 0.25
_BURST_SHARE = (0.05, 0.20)  # share of annual energy in bursts, per household
_BDEW_DYNAMISATION = (-3.92e-10, 3.20e-7, -7.02e-5, 2.10e-3, 1.24)

# ---------------------------------------------------------------- PV model
_SOLAR_POSITION_METHOD = "ephemeris"
_CLEAR_SKY_MODEL = "haurwitz"
_SKY_MODEL = "haydavies"
_STC_W_M2 = 1000.0
_PERFORMANCE_RATIO = 0.86  # inverter, wiring, mismatch, soiling, reflection
_TEMP_COEFF_PER_K = -0.004
_CELL_HEATING_K_PER_W_M2 = 0.03  # (NOCT 45 degC - 20 degC) / 800 W/m2
_GROUND_ALBEDO = 0.2
_TILT_DEG = (15.0, 45.0)
_AZIMUTH_SD_DEG, _AZIMUTH_MAX_DEG = 45.0, 110.0  # spread around the equator-facing direction
_DEFAULT_LATTICE_DEG = 5.0
_BLOCK_ELEMENTS = 1 << 17  # intervals x planes per pvlib call: stays in cache
# Weather: day states clear / partly cloudy / overcast.
_STATE_ODDS_WINTER = (0.18, 0.37, 0.45)
_STATE_ODDS_SUMMER = (0.42, 0.42, 0.16)
_STATE_PERSISTENCE = 0.5  # chance a day keeps yesterday's state outright
_STATE_KC = ((0.90, 1.00), (0.45, 0.80), (0.15, 0.40))  # daily clear-sky index range
_STATE_KC_NOISE = (0.03, 0.20, 0.06)  # intraday std of the clear-sky index
_CLOUD_TAU_H = 0.5


# ---------------------------------------------------------------- inputs
def _check_common(timeline: Any, rng: Any) -> None:
    if not isinstance(timeline, Timeline):
        raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")


def household_values(name: str, values: Any) -> npt.NDArray[np.float64]:
    """``values`` as a 1-d float64 array of finite numbers >= 0, one per household.

    Raises :class:`InputError` naming ``name`` (and the first bad row).
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be an array of numbers") from None
    if arr.ndim != 1:
        raise InputError(name, f"must be a 1-d array over households, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        row = int(bad[0])
        raise InputError(name, f"must be finite and >= 0, got {arr[row]!r}", row=row)
    return arr


class _Calendar:
    """Local-clock facts of a timeline: calendar day of each interval and its type."""

    def __init__(self, timeline: Timeline) -> None:
        local = timeline.index.tz_localize(None)
        first = local[0].normalize()
        self.day: npt.NDArray[np.int64] = np.asarray(
            (local.normalize() - first).days, dtype=np.int64)
        dates = pd.date_range(first, periods=int(self.day[-1]) + 1, freq="D")
        self.day_of_year: npt.NDArray[np.float64] = np.asarray(dates.day_of_year, dtype=np.float64)
        self.day_type = _day_type_of(dates)
        self.hour = timeline.hour_of_day
        self.year = int(first.year)


def _day_type_of(dates: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """0 = Monday-Friday, 1 = Saturday, 2 = Sunday."""
    return np.asarray(np.clip(np.asarray(dates.day_of_week) - 4, 0, 2), dtype=np.int64)


def _von_mises(hour: npt.NDArray[Any], centre_h: Any, width_h: Any) -> npt.NDArray[np.float64]:
    """A periodic bump over the day with a daily mean of exactly one.

    ``width_h`` is the standard deviation (hours) of the equivalent normal bump.
    """
    kappa = 1.0 / (np.asarray(width_h, dtype=np.float64) * 2 * np.pi / 24.0) ** 2
    angle = (np.asarray(hour) - centre_h) * (2 * np.pi / 24.0)
    out: npt.NDArray[np.float64] = np.exp(kappa * (np.cos(angle) - 1.0)) / i0e(kappa)
    return out


def _summer_weight(day_of_year: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """0 at the winter solstice, 1 at the summer solstice (northern hemisphere)."""
    return 0.5 * (1.0 - np.cos(2 * np.pi * (np.asarray(day_of_year) + 10.0) / 365.25))


def _bdew_dynamisation(day_of_year: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return np.asarray(np.polyval(_BDEW_DYNAMISATION, day_of_year), dtype=np.float64)


def _ar1_inplace(x: npt.NDArray[Any], phi: float) -> None:
    """Run ``x[t] = phi * x[t-1] + x[t]`` down axis 0, in place.

    A two-level blocked scan: about ``3 sqrt(T)`` vectorised steps instead of
    ``T``, each over a whole slab of the array.
    """
    n = x.shape[0]
    width = max(1, int(np.sqrt(n)))
    blocks = n // width
    head = x[: blocks * width].reshape(blocks, width, *x.shape[1:])
    a = x.dtype.type(phi)
    for p in range(1, width):
        head[:, p] += a * head[:, p - 1]
    if blocks > 1:
        decay = (a ** np.arange(1, width + 1, dtype=x.dtype)).reshape(width, *([1] * (x.ndim - 1)))
        for k in range(1, blocks):
            head[k] += decay * head[k - 1, -1]
    for t in range(blocks * width, n):
        x[t] += a * x[t - 1]


def _ar1_noise(
    rng: np.random.Generator, shape: tuple[int, ...], phi: float, sigma: float
) -> npt.NDArray[np.float32]:
    """A stationary AR(1) process with mean 0 and std ``sigma`` down axis 0.

    Innovations are uniform (cheap to draw), scaled to the right variance.
    """
    x = rng.random(shape, dtype=F32)
    x -= F32(0.5)
    x *= F32(sigma * np.sqrt(12.0 * (1.0 - phi * phi)))
    x[0] *= F32(1.0 / np.sqrt(max(1.0 - phi * phi, 1e-12)))
    _ar1_inplace(x, phi)
    return x


# ---------------------------------------------------------------- load
def _shape_tables(
    hours: npt.NDArray[np.float64], traits: dict[str, npt.NDArray[np.float64]]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Daily load shapes before the seasonal factor, one column per household.

    Returns the winter and the summer table, rows ``day_type * len(hours) + i``
    for clock hour ``hours[i]`` (they differ in the time of the evening peak),
    and the exact daily mean of each day type, shape ``(3, H)``.
    """
    hh = hours[:, None]
    tables = []
    daily_mean = np.empty((3, traits["base"].shape[0]))
    for evening_h in (_EVENING_WINTER_H, _EVENING_SUMMER_H):
        evening = _EVENING_SHARE * traits["evening"] * _von_mises(
            hh, evening_h + traits["shift_evening"], _EVENING_WIDTH_H)
        blocks = []
        for kind in range(3):
            (cm, wm, am), (cd, wd, ad), (cdt, wdt, adt) = (
                _MORNING[kind], _MIDDAY[kind], _DAYTIME[kind])
            blocks.append(
                traits["base"]
                + am * traits["morning"] * _von_mises(hh, cm + traits["shift_morning"], wm)
                + ad * traits["midday"] * _von_mises(hh, cd + traits["shift_midday"], wd)
                + adt * traits["daytime"] * _von_mises(hh, cdt, wdt)
                + evening
            )
            daily_mean[kind] = (traits["base"] + am * traits["morning"]
                                + ad * traits["midday"] + adt * traits["daytime"]
                                + _EVENING_SHARE * traits["evening"])
        tables.append(np.concatenate(blocks).astype(F32))
    return tables[0], tables[1], daily_mean


def load_profiles(
    timeline: Timeline, annual_kwh: npt.ArrayLike, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Household base load in kW, shape ``(T, H)``, float32.

    Each household's expected mean power over the calendar year in which the
    timeline starts is ``annual_kwh / 8760``; a simulated full year lands
    within about one percent of it (the noise is random). Shorter timelines
    carry their season: a winter week uses more than a summer week.

    Parameters
    ----------
    timeline : Timeline
        The interval grid; loads follow the local clock of its time zone.
    annual_kwh : array of float, shape (H,)
        Annual consumption of each household, >= 0.
    rng : numpy.random.Generator
        The source of every random draw.

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-01-05", tz="Europe/Berlin"), periods=96)
    >>> kw = load_profiles(tl, np.array([3500.0, 0.0]), np.random.default_rng(1))
    >>> kw.shape, kw.dtype, bool((kw >= 0).all()), float(kw[:, 1].max())
    ((96, 2), dtype('float32'), True, 0.0)
    >>> bool(kw[72:84, 0].mean() > kw[8:20, 0].mean())  # 18-21 h above 2-5 h
    True
    """
    _check_common(timeline, rng)
    annual = household_values("annual_kwh", annual_kwh)
    n_hh = annual.shape[0]
    cal = _Calendar(timeline)
    dt_h = timeline.dt_h

    # Per-household character: base share, peak sizes and times, seasonal swing.
    def spread(sigma: float) -> npt.NDArray[np.float64]:
        return np.exp(sigma * rng.standard_normal(n_hh) - sigma * sigma / 2)

    traits = {"base": _BASE_SHARE * spread(0.3)}
    traits.update({name: spread(0.35) for name in ("morning", "midday", "daytime", "evening")})
    traits["shift_morning"] = np.clip(rng.normal(0.0, 0.5, n_hh), -1.5, 1.5)
    traits["shift_midday"] = np.clip(rng.normal(0.0, 0.4, n_hh), -1.0, 1.0)
    traits["shift_evening"] = np.clip(rng.normal(0.0, 0.6, n_hh), -2.0, 2.0)
    season_gain = rng.uniform(0.5, 1.5, n_hh)
    burst_share = rng.uniform(*_BURST_SHARE, n_hh)

    hours, hour_row = np.unique(cal.hour, return_inverse=True)
    winter_table, summer_table, daily_mean = _shape_tables(hours, traits)

    # Seasonal factor per calendar day and household, and the expected annual
    # mean of the shape over the reference (calendar) year.
    def season(doy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 1.0 + season_gain * (_bdew_dynamisation(doy)[:, None] - 1.0)

    ref_days = pd.date_range(f"{cal.year}-01-01", f"{cal.year}-12-31", freq="D")
    ref_season = season(np.asarray(ref_days.day_of_year, dtype=np.float64))
    ref_type = _day_type_of(ref_days)
    shape_mean = (ref_season * daily_mean[ref_type]).mean(axis=0)

    # Appliance bursts: chance per interval q_h * awake(hour), power uniform.
    burst_frac = min(dt_h, _BURST_MAX_H) / dt_h  # share of the interval a burst lasts
    burst_mean_kw = 0.5 * sum(_BURST_KW) * burst_frac
    day_hours = (np.arange(timeline.periods_per_day) + 0.5) * dt_h
    awake_mean = float(_awake(day_hours).mean())
    mean_kw = annual / HOURS_PER_YEAR
    burst_chance = np.minimum(1.0, burst_share * mean_kw / (burst_mean_kw * awake_mean))
    burst_kw = burst_chance * awake_mean * burst_mean_kw
    scale = (mean_kw - burst_kw) / shape_mean

    day_season = season(cal.day_of_year) * scale
    summer_w = _summer_weight(cal.day_of_year)[:, None]
    winter_part = ((1.0 - summer_w) * day_season).astype(F32)
    summer_part = (summer_w * day_season).astype(F32)
    row = cal.day_type[cal.day] * hours.size + hour_row

    # Random streams, in a fixed order: AR(1) noise, then bursts.
    phi = float(np.exp(-dt_h / _NOISE_TAU_H))
    noise = _ar1_noise(rng, (timeline.periods, n_hh), phi, _NOISE_SIGMA)
    noise += F32(1.0)
    np.maximum(noise, F32(0.0), out=noise)

    # Expected shape, one calendar day (a contiguous block of rows) at a time.
    out = np.empty((timeline.periods, n_hh), dtype=F32)
    starts = np.flatnonzero(np.diff(cal.day, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], timeline.periods], strict=True):
        day, rows, block = cal.day[start], row[start:stop], out[start:stop]
        np.take(winter_table, rows, axis=0, out=block)
        block *= winter_part[day]
        block += summer_part[day] * summer_table[rows]
    out *= noise

    # Bursts: a hit when u < chance_h * awake_t, i.e. u / chance_h < awake_t;
    # given a hit, u / (chance_h * awake_t) is uniform on [0, 1) and sets the power.
    u = noise  # reuse the buffer
    rng.random(out=u, dtype=F32)
    u *= np.divide(1.0, burst_chance, out=np.zeros(n_hh), where=burst_chance > 0).astype(F32)
    awake = _awake(cal.hour).astype(F32)[:, None]
    hit = u < awake
    if not (burst_chance > 0).all():
        hit &= burst_chance > 0
    u /= awake
    u *= F32((_BURST_KW[1] - _BURST_KW[0]) * burst_frac)
    u += F32(_BURST_KW[0] * burst_frac)
    np.add(out, u, out=out, where=hit)
    return out


def _awake(hour: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Relative chance of appliance use by clock hour: low at night, 1 by day."""
    rise = 1.0 / (1.0 + np.exp(-(np.asarray(hour) - 6.5) / 0.5))
    fall = 1.0 / (1.0 + np.exp((np.asarray(hour) - 23.0) / 0.5))
    return 0.1 + 0.9 * rise * fall


# ---------------------------------------------------------------- solar geometry
def _check_site(latitude_deg: float, longitude_deg: float) -> None:
    if not (np.isfinite(latitude_deg) and -90.0 <= latitude_deg <= 90.0):
        raise InputError("latitude_deg", f"must be within [-90, 90], got {latitude_deg!r}")
    if not (np.isfinite(longitude_deg) and -180.0 <= longitude_deg <= 180.0):
        raise InputError("longitude_deg", f"must be within [-180, 180], got {longitude_deg!r}")


def _pvlib() -> Any:
    """pvlib, imported on first use: importing it takes about 0.7 s (h5py,
    requests, parts of SciPy), which a process that never draws PV (the CLI's
    other commands, a battery fleet) should not pay."""
    import pvlib

    return pvlib


def _sun_position(
    timeline: Timeline, latitude_deg: float, longitude_deg: float
) -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    """The middle of each interval and pvlib's sun position then (degrees:
    ``zenith``, ``apparent_zenith``, ``elevation``, ``azimuth``, ...)."""
    mid = timeline.index + pd.Timedelta(minutes=timeline.step_minutes / 2)
    position = _pvlib().solarposition.get_solarposition(
        mid, latitude_deg, longitude_deg, method=_SOLAR_POSITION_METHOD)
    return mid, position


def solar_elevation_deg(
    timeline: Timeline, *, latitude_deg: float = 48.0, longitude_deg: float = 11.0
) -> npt.NDArray[np.float64]:
    """Geometric sun elevation (degrees, no refraction) at the middle of each interval.

    From :func:`pvlib.solarposition.get_solarposition` (method ``'ephemeris'``).

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-06-21 13:00", tz="Europe/Berlin"), 1, 60)
    >>> round(float(solar_elevation_deg(tl, latitude_deg=48.0, longitude_deg=11.0)[0]), 1)
    65.3
    """
    if not isinstance(timeline, Timeline):
        raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")
    _check_site(latitude_deg, longitude_deg)
    _, position = _sun_position(timeline, latitude_deg, longitude_deg)
    return np.array(position["elevation"], dtype=np.float64)  # a writable copy


def _clear_sky_index(
    cal: _Calendar, dt_h: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """The community's clear-sky index per interval: a Markov chain of day
    states with seasonal odds, a daily level within the state's range, and
    intraday AR(1) cloud noise."""
    n_days = (cal.day_of_year.shape[0],)
    w = _summer_weight(cal.day_of_year)[:, None]
    odds = (1 - w) * np.asarray(_STATE_ODDS_WINTER) + w * np.asarray(_STATE_ODDS_SUMMER)
    fresh = (rng.random(n_days)[:, None] > np.cumsum(odds, axis=1)[:, :-1]).sum(axis=1)
    renew = rng.random(n_days) >= _STATE_PERSISTENCE
    renew[0] = True
    last = np.maximum.accumulate(np.where(renew, np.arange(n_days[0]), 0))
    state = fresh[last]
    lo, hi = np.asarray(_STATE_KC).T
    level = lo[state] + (hi - lo)[state] * rng.random(n_days)
    phi = float(np.exp(-dt_h / _CLOUD_TAU_H))
    wiggle = _ar1_noise(rng, (cal.day.shape[0],), phi, 1.0).astype(np.float64)
    kc = level[cal.day] + np.asarray(_STATE_KC_NOISE)[state][cal.day] * wiggle
    return np.clip(kc, 0.02, 1.2)


def _all_sky(
    mid: pd.DatetimeIndex, sun: pd.DataFrame, kc: npt.NDArray[np.float64],
    latitude_deg: float, longitude_deg: float,
) -> dict[str, npt.NDArray[np.float64]]:
    """Horizontal irradiance (W/m²) and sun angles (degrees) of daylit intervals.

    Clear-sky GHI from pvlib (Haurwitz, on the refracted zenith as pvlib
    gives it) times the clear-sky index ``kc``, split into beam (``dni``) and
    diffuse (``dhi``) by Erbs on the true zenith, the one the transposition
    uses too, so a horizontal plane receives exactly ``ghi``; ``dni_extra``
    is the extraterrestrial irradiance (Spencer) that Hay-Davies needs.
    """
    # Haurwitz uses no altitude; it is given so that pvlib does not look one up.
    site = _pvlib().location.Location(latitude_deg, longitude_deg, altitude=0.0)
    clear = site.get_clearsky(mid, model=_CLEAR_SKY_MODEL, solar_position=sun)
    ghi = kc * np.asarray(clear["ghi"], dtype=np.float64)
    doy = np.asarray(mid.day_of_year, dtype=np.float64)
    split = _pvlib().irradiance.erbs(ghi, np.asarray(sun["zenith"], dtype=np.float64), doy)
    return {
        "ghi": ghi,
        "dni": np.asarray(split["dni"], dtype=np.float64),
        "dhi": np.asarray(split["dhi"], dtype=np.float64),
        "dni_extra": np.asarray(_pvlib().irradiance.get_extra_radiation(doy), dtype=np.float64),
        "zenith": np.asarray(sun["zenith"], dtype=np.float64),
        "azimuth": np.asarray(sun["azimuth"], dtype=np.float64),
    }


def _plane_kw_per_kwp(
    tilt_deg: npt.NDArray[np.float64], azimuth_deg: npt.NDArray[np.float64],
    sky: dict[str, npt.NDArray[np.float64]], t_ambient_c: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """AC output (kW per kWp) of each plane, shape ``(T, P)``, before the
    household's spread, local weather and clipping.

    Plane-of-array irradiance from :func:`pvlib.irradiance.get_total_irradiance`
    (Hay-Davies sky, ground albedo 0.2), broadcast over intervals x planes in
    float32 and in blocks of rows that stay in cache; then the performance
    ratio and the temperature coefficient at a cell temperature of ambient plus
    a NOCT-style heating by the plane-of-array irradiance.
    """
    n_t, n_p = sky["ghi"].shape[0], tilt_deg.shape[0]
    out = np.empty((n_t, n_p), dtype=F32)
    surface_tilt = tilt_deg.astype(F32)[None, :]
    surface_azimuth = azimuth_deg.astype(F32)[None, :]
    column = {name: values.astype(F32)[:, None] for name, values in sky.items()}
    t_ambient = t_ambient_c.astype(F32)[:, None]
    gain = F32(_PERFORMANCE_RATIO / _STC_W_M2)
    rows = max(1, _BLOCK_ELEMENTS // max(n_p, 1))
    for start in range(0, n_t, rows):
        part = slice(start, start + rows)
        poa = _pvlib().irradiance.get_total_irradiance(
            surface_tilt, surface_azimuth, column["zenith"][part], column["azimuth"][part],
            column["dni"][part], column["ghi"][part], column["dhi"][part],
            dni_extra=column["dni_extra"][part], albedo=_GROUND_ALBEDO, model=_SKY_MODEL,
        )["poa_global"]
        t_cell = t_ambient[part] + F32(_CELL_HEATING_K_PER_W_M2) * poa
        derate = F32(1.0) + F32(_TEMP_COEFF_PER_K) * (t_cell - F32(25.0))
        np.multiply(poa * gain, derate, out=out[part])
    return out


# ---------------------------------------------------------------- PV
def _orientation(
    name: str, values: Any, n_hh: int, high: float
) -> npt.NDArray[np.float64] | None:
    """A caller's tilt or azimuth: a number for all or one per household, in [0, high]."""
    if values is None:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be a number or an array of numbers") from None
    if arr.ndim == 0:
        arr = np.full(n_hh, float(arr))
    if arr.shape != (n_hh,):
        raise InputError(name, f"must be a number or one per household ({n_hh}), "
                               f"got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0) | (arr > high))
    if bad.size:
        row = int(bad[0])
        raise InputError(name, f"must be within [0, {high:g}] degrees, got {arr[row]!r}", row=row)
    return arr


def _default_orientation(
    rng: np.random.Generator, n_hh: int, latitude_deg: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seeded tilt and azimuth (degrees, pvlib's convention), on a 5-degree lattice."""
    step = _DEFAULT_LATTICE_DEG
    tilt = rng.uniform(*_TILT_DEG, n_hh)
    offset = np.clip(rng.normal(0.0, _AZIMUTH_SD_DEG, n_hh), -_AZIMUTH_MAX_DEG, _AZIMUTH_MAX_DEG)
    facing = 180.0 if latitude_deg >= 0 else 0.0  # the equator
    return step * np.round(tilt / step), (facing + step * np.round(offset / step)) % 360.0


def pv_profiles(
    timeline: Timeline,
    capacity_kw: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    latitude_deg: float = 48.0,
    longitude_deg: float = 11.0,
    tilt_deg: npt.ArrayLike | None = None,
    azimuth_deg: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """Rooftop PV AC output in kW, shape ``(T, H)``, float32.

    Each household's array has its own tilt and azimuth (drawn around the
    equator-facing direction unless given); the weather is shared by the
    community. Output is zero while the sun is below the horizon and where
    ``capacity_kw`` is 0, and never above ``capacity_kw`` (the inverter's
    rating). At 48 degrees north a year yields about 1,070 kWh per kWp.
    Irradiance is taken at the middle of each interval, which suits steps of
    up to an hour.

    Parameters
    ----------
    timeline : Timeline
        The interval grid (its time zone fixes the clock; the sun follows UTC).
    capacity_kw : array of float, shape (H,)
        Rated power of each household's system, >= 0 (0 = no PV).
    rng : numpy.random.Generator
        The source of every random draw. The draws are the same whether or
        not ``tilt_deg`` and ``azimuth_deg`` are given, so passing the
        default orientation back reproduces the default output exactly.
    latitude_deg, longitude_deg : float
        The site (north and east positive).
    tilt_deg : float or array of float, shape (H,), optional
        Tilt from horizontal, in [0, 90] degrees. Default: uniform over
        15-45 degrees, rounded to 5 degrees.
    azimuth_deg : float or array of float, shape (H,), optional
        Direction the array faces, degrees clockwise from north (pvlib's
        convention: 90 east, 180 south, 270 west), in [0, 360]. Default: the
        equator-facing direction plus a normal spread of 45 degrees, clipped
        at 110 degrees either side and rounded to 5 degrees.

    Orientations are rounded to whole degrees; the plane-of-array irradiance
    is computed once per distinct (tilt, azimuth), so the time grows with the
    number of distinct planes (at most a few hundred for the defaults).

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2026-06-21", tz="Europe/Berlin"), periods=96)
    >>> kw = pv_profiles(tl, np.array([5.0, 0.0]), np.random.default_rng(1))
    >>> kw.shape, kw.dtype, float(kw[:16].max()), float(kw[:, 1].max())
    ((96, 2), dtype('float32'), 0.0, 0.0)
    >>> bool(0 < kw[:, 0].max() <= 5.0)
    True
    >>> east, west = pv_profiles(tl, np.array([5.0, 5.0]), np.random.default_rng(1),
    ...                          tilt_deg=30.0, azimuth_deg=[90.0, 270.0]).T
    >>> bool(east[:48].sum() > west[:48].sum() and east[48:].sum() < west[48:].sum())
    True
    """
    _check_common(timeline, rng)
    capacity = household_values("capacity_kw", capacity_kw)
    _check_site(latitude_deg, longitude_deg)
    n_hh = capacity.shape[0]
    tilt_given = _orientation("tilt_deg", tilt_deg, n_hh, 90.0)
    azimuth_given = _orientation("azimuth_deg", azimuth_deg, n_hh, 360.0)
    cal = _Calendar(timeline)

    # Random draws in a fixed order, whatever the caller gives: orientation,
    # performance spread, local weather, then the community's weather.
    tilt, azimuth = _default_orientation(rng, n_hh, latitude_deg)
    performance = np.clip(rng.normal(1.0, 0.04, n_hh), 0.85, 1.10)
    local_weather = np.exp(rng.normal(0.0, 0.04, (cal.day_of_year.shape[0], n_hh)))
    kc = _clear_sky_index(cal, timeline.dt_h, rng)
    if tilt_given is not None:
        tilt = tilt_given
    if azimuth_given is not None:
        azimuth = azimuth_given

    out = np.zeros((timeline.periods, n_hh), dtype=F32)
    mid, sun = _sun_position(timeline, latitude_deg, longitude_deg)
    up = np.flatnonzero(np.asarray(sun["elevation"]) > 0)
    has = capacity > 0
    if not (up.size and has.any()):
        return out
    sky = _all_sky(mid[up], sun.iloc[up], kc[up], latitude_deg, longitude_deg)
    t_ambient = (9.0 - 10.0 * np.cos(2 * np.pi * (cal.day_of_year[cal.day[up]] - 15.0) / 365.0)
                 + 4.0 * np.cos(2 * np.pi * (cal.hour[up] - 15.0) / 24.0))

    # One plane per distinct (tilt, azimuth) in whole degrees among PV owners.
    key = np.round(tilt[has]) * 1000.0 + np.round(azimuth[has]) % 360.0
    planes, plane_of_owner = np.unique(key, return_inverse=True)
    plane_kw = _plane_kw_per_kwp(planes // 1000.0, planes % 1000.0, sky, t_ambient)
    plane_of = np.zeros(n_hh, dtype=np.int64)
    plane_of[has] = plane_of_owner.reshape(-1)

    # Households' output in blocks of rows that stay in cache.
    size_kw, rating_kw = (capacity * performance).astype(F32), capacity.astype(F32)
    local_weather_f32, day_up = local_weather.astype(F32), cal.day[up]
    rows = max(1, _BLOCK_ELEMENTS // max(n_hh, 1))
    for start in range(0, up.size, rows):
        part = slice(start, start + rows)
        block = np.take(plane_kw[part], plane_of, axis=1)
        block *= size_kw
        block *= local_weather_f32[day_up[part]]
        np.minimum(block, rating_kw, out=block)
        out[up[part]] = block
    return out
