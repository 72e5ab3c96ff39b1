"""Wholesale (day-ahead) electricity prices: seeded synthetic series, or a CSV file.

A real-time retail tariff passes the day-ahead price on
(:class:`~transactive.programs.tariffs.RealTimeTariff`), and a critical-peak
tariff may call its events on it. Both take any object with a
``price_per_kwh(timeline)`` method (:class:`WholesalePrices`):

- :class:`SyntheticDayAhead`: a seeded synthetic series (below);
- :class:`DayAheadTable`: prices read from a file (:func:`read_day_ahead_csv`).

Prices are in currency per kWh (a market's EUR/MWh divided by 1,000) and may
be negative.

Synthetic day-ahead prices
--------------------------
The price of interval ``t`` on local calendar day ``d`` is

    p[t] = m * season[d] * week[d] * level[d] * shape[t] - dip[t] + spike[t] + noise[t]

- ``season = 1 + seasonal_amplitude cos(2 pi (doy - 15) / 365.25)``: a small
  winter premium (most of the seasonal swing comes from the solar dip);
- ``week``: Saturday and Sunday below a weekday (ratios ``_WEEKEND``), with a
  weekly mean of one;
- ``level``: a mean-one lognormal factor per day whose logarithm is AR(1) over
  days, the weather regime (windy weeks are cheap);
- ``shape``: the daily profile, one plus mean-zero periodic bumps: a morning
  peak (8.5 h in winter, 7.5 h in summer), a daytime plateau of weekday demand
  and an evening peak (18.5 h in winter, 20.5 h and larger in summer, when it
  follows the sunset ramp); at weekends the morning peak is halved and the
  plateau mostly gone; the night is the trough;
- ``dip``: the solar dip, ``solar_dip_per_kwh`` times the sine of the sun's
  elevation at a central-European site (51° N, 10° E) times a per-day
  sunshine factor (mostly sunny); it sinks midday prices from spring to
  autumn and, on sunny days of a low ``level`` or at weekends, takes them
  below zero;
- ``spike``: on a few weekdays of the cold half-year whose ``level`` is high (a
  *Dunkelflaute*, dark and windless), an extra morning and evening peak of
  several hundred EUR/MWh;
- ``noise``: AR(1) down the intervals.

``m`` is set so that the expected mean over the calendar year of the timeline
is ``mean_price_per_kwh``; the result is clipped to the harmonised limits of
the European day-ahead coupling (-500 and +4,000 EUR/MWh).

Calibration: the German-Luxembourg day-ahead market in 2024. Base (mean of
all hours) 79.6 EUR/MWh, peak (weekdays 8-20 h) 88.2 and off-peak 74.8
(FfE, *German electricity prices on EPEX Spot 2024*); 457 hours (5.2 %) with
negative prices, mostly sunny middays (Vattenfall, *Negative spot prices*,
2025; pv magazine 30 June 2025 after Fraunhofer ISE Energy-Charts); the fourth
quarter averaged 102.64 EUR/MWh with 35 of its 2,208 hours above 300 EUR/MWh
(SMARD, *The electricity market in the fourth quarter of 2024*), and the
*Dunkelflaute* days of November and December 2024 peaked above 900 EUR/MWh
(Bundesnetzagentur and Bundeskartellamt, press release of 21 October 2025).
``tests/test_tariffs_dynamic.py`` checks a simulated year against these
figures, with tolerances.

CSV files
---------
One row per market interval, a header line, columns

``start``
    The interval's start, ISO 8601 with a UTC offset (``2024-03-31T01:00:00+01:00``
    or ``...Z``); strictly increasing.
``price_per_kwh`` or ``price_per_mwh``
    The price (exactly one of the two columns).

Other columns are ignored. Each row holds until the next row's start; the last
row for as long as the step before it. Steps may vary (hourly, then
quarter-hourly) but none may exceed a day (a gap). On a timeline, an
interval's price is the time-weighted mean of the rows it overlaps; the rows
must cover the whole timeline. Errors name the column and the row (0-based
among the data rows, the header not counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import erfc
from os import PathLike
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import i0e

from transactive._ar1 import ar1
from transactive.agents.profiles import solar_elevation_deg
from transactive.errors import InputError
from transactive.timeline import Timeline

__all__ = [
    "DayAheadModel",
    "DayAheadTable",
    "SyntheticDayAhead",
    "WholesalePrices",
    "child_seed",
    "day_ahead_prices_per_kwh",
    "read_day_ahead_csv",
    "write_day_ahead_csv",
]

FloatArray = npt.NDArray[np.float64]
Seed = int | np.random.SeedSequence

DAYS_PER_YEAR = 365.25
_PRICE_LIMITS_PER_KWH = (-0.5, 4.0)  # SDAC harmonised min / max clearing price
_WEEKEND = (0.88, 0.78)  # Saturday, Sunday, as shares of a weekday
_DIP_SITE_DEG = (51.0, 10.0)  # latitude, longitude of the market's PV
# Daily profile bumps: (centre h, width h, daily-mean share), in winter and in summer.
_MORNING = ((8.5, 1.4, 0.06), (7.5, 1.4, 0.08))
_DAYTIME = ((13.0, 3.0, 0.24), (13.0, 3.0, 0.24))
_EVENING = ((18.5, 2.2, 0.12), (20.5, 1.8, 0.22))
_WEEKEND_SHARES = (0.5, 0.2)  # morning and daytime bumps at weekends, as shares
_LEVEL_SIGMA, _LEVEL_PHI = 0.32, 0.7  # daily log-level: std and day-to-day correlation
_NOISE_TAU_H = 3.0
_SUNSHINE_POWER = 0.4  # a day's sunshine factor is u ** this, u uniform: mostly sunny
# Spikes: on weekdays when the day's log-level anomaly exceeds _SPIKE_Z (in
# standard deviations), with chance _SPIKE_CHANCE x the cold-season weight.
_SPIKE_Z, _SPIKE_CHANCE = 1.0, 0.2
_SPIKE_PER_KWH = (0.15, 0.75)  # evening spike height range; the morning one is half
_SPIKE_WIDTH_H = 1.6
_TIME_RE = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_MAX_STEP_NS = 86_400 * 10**9


def child_seed(seed: Seed, key: int) -> np.random.SeedSequence:
    """Child ``key`` of ``seed``: what ``SeedSequence(seed).spawn(key + 1)[key]``
    gives, the same on every call (``spawn`` counts on, so does not).

    Examples
    --------
    >>> a, b = child_seed(42, 3), np.random.SeedSequence(42).spawn(4)[3]
    >>> bool(np.random.default_rng(a).random() == np.random.default_rng(b).random())
    True
    """
    parent = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, key))


@runtime_checkable
class WholesalePrices(Protocol):
    """Anything that gives a wholesale price (currency per kWh) per interval."""

    def price_per_kwh(self, timeline: Timeline) -> FloatArray:
        """The price of every interval of ``timeline``, shape ``(T,)``."""
        ...


@dataclass(frozen=True)
class DayAheadModel:
    """Parameters of the synthetic day-ahead price (see the module docstring).

    Parameters
    ----------
    mean_price_per_kwh : float
        Expected mean over a calendar year (default 0.0796: 79.6 EUR/MWh, the
        German-Luxembourg base price of 2024), > 0.
    seasonal_amplitude : float
        Winter excess (and summer shortfall) of the price level as a share of
        the mean, in [0, 1); the solar dip adds its own summer shortfall.
    solar_dip_per_kwh : float
        Depth of the midday solar dip with the sun at the zenith on a fully
        sunny day, >= 0.
    spikes : bool
        Whether *Dunkelflaute* spikes occur.
    noise_sd_per_kwh : float
        Standard deviation of the interval noise, >= 0.
    """

    mean_price_per_kwh: float = 0.0796
    seasonal_amplitude: float = 0.03
    solar_dip_per_kwh: float = 0.15
    spikes: bool = True
    noise_sd_per_kwh: float = 0.008

    def __post_init__(self) -> None:
        for name, low, high in (("mean_price_per_kwh", 0.0, 10.0),
                                ("seasonal_amplitude", 0.0, 1.0),
                                ("solar_dip_per_kwh", 0.0, 10.0),
                                ("noise_sd_per_kwh", 0.0, 10.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise InputError(name, f"must be a number, got {value!r}")
            if not (np.isfinite(value) and low <= value < high):
                raise InputError(name, f"must be within [{low:g}, {high:g}), got {value!r}")
        if self.mean_price_per_kwh <= 0:
            raise InputError("mean_price_per_kwh", "must be > 0")


def _bump(hour: FloatArray, centre_h: Any, width_h: Any) -> FloatArray:
    """A periodic bump over the day with a daily mean of one (von Mises)."""
    kappa = 1.0 / (width_h * 2 * np.pi / 24.0) ** 2
    angle = (hour - centre_h) * (2 * np.pi / 24.0)
    out: FloatArray = np.exp(kappa * (np.cos(angle) - 1.0)) / i0e(kappa)
    return out


class _Days:
    """Local-calendar facts of a timeline: day of each interval, and per day."""

    def __init__(self, timeline: Timeline) -> None:
        local = timeline.index.tz_localize(None)
        first = local[0].normalize()
        self.of_interval = np.asarray((local.normalize() - first).days, dtype=np.int64)
        dates = pd.date_range(first, periods=int(self.of_interval[-1]) + 1, freq="D")
        self.doy = np.asarray(dates.day_of_year, dtype=np.float64)
        self.weekday = np.asarray(dates.day_of_week, dtype=np.int64)  # 0 = Monday
        self.hour = timeline.hour_of_day
        self.year = int(first.year)


def _deterministic(timeline: Timeline, days: _Days, model: DayAheadModel
                   ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per interval: season x week x shape, the dip at full sunshine, the spike
    profile (peak 1), and the cold-season weight of its day."""
    d = days.of_interval
    cold = 0.5 * (1.0 + np.cos(2 * np.pi * (days.doy - 15.0) / DAYS_PER_YEAR))
    season = 1.0 + model.seasonal_amplitude * (2.0 * cold - 1.0)
    weekend_mean = (5.0 + sum(_WEEKEND)) / 7.0
    week = np.ones(days.doy.shape[0])
    week[days.weekday == 5], week[days.weekday == 6] = _WEEKEND
    week /= weekend_mean
    summer = (1.0 - cold)[d]
    weekend = (days.weekday >= 5)[d]
    shape = np.ones_like(days.hour)
    for (winter, in_summer), weekend_share in zip((_MORNING, _DAYTIME, _EVENING),
                                                  (*_WEEKEND_SHARES, 1.0), strict=True):
        centre_h, width_h, share = (np.asarray(w + (s - w) * summer)
                                    for w, s in zip(winter, in_summer, strict=True))
        share_t = share * np.where(weekend, weekend_share, 1.0)
        shape += share_t * (_bump(days.hour, centre_h, width_h) - 1.0)
    sun = np.sin(np.radians(solar_elevation_deg(timeline, latitude_deg=_DIP_SITE_DEG[0],
                                                longitude_deg=_DIP_SITE_DEG[1])))
    dip = model.solar_dip_per_kwh * np.maximum(sun, 0.0)
    peak = _bump(np.asarray(0.0), 0.0, _SPIKE_WIDTH_H)
    spike = (_bump(days.hour, _EVENING[0][0], _SPIKE_WIDTH_H)
             + 0.5 * _bump(days.hour, _MORNING[0][0], _SPIKE_WIDTH_H)) / peak
    return (season * week)[d] * shape, dip, spike, cold


def _expected_parts(timeline: Timeline, model: DayAheadModel) -> tuple[float, float]:
    """Mean over the timeline's calendar year (hourly) of ``season x week x
    shape`` and of ``spike - dip`` in expectation."""
    tz = timeline.start.tz
    days_in_year = 366 if pd.Timestamp(timeline.start.year, 12, 31).day_of_year == 366 else 365
    ref = Timeline(pd.Timestamp(timeline.start.year, 1, 1, tz=tz), periods=days_in_year * 24,
                   step_minutes=60)
    days = _Days(ref)
    shape, dip, spike, cold = _deterministic(ref, days, model)
    spike_chance = 0.0
    if model.spikes:
        above = 0.5 * erfc(_SPIKE_Z / np.sqrt(2.0))
        spike_chance = _SPIKE_CHANCE * above
    weekday = (days.weekday < 5)[days.of_interval]
    extra = (spike_chance * cold[days.of_interval] * weekday * np.mean(_SPIKE_PER_KWH) * spike
             - dip / (1.0 + _SUNSHINE_POWER))  # the mean sunshine factor
    return float(shape.mean()), float(extra.mean())


def day_ahead_prices_per_kwh(timeline: Timeline, rng: np.random.Generator,
                             model: DayAheadModel | None = None) -> FloatArray:
    """Synthetic day-ahead prices (currency per kWh) of every interval, shape ``(T,)``.

    Every random draw comes from ``rng``, in a fixed order (daily levels,
    sunshine, spikes, noise).

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2024-06-03", tz="Europe/Berlin"), periods=24 * 7,
    ...               step_minutes=60)  # Monday to Sunday
    >>> p = day_ahead_prices_per_kwh(tl, np.random.default_rng(3))
    >>> p.shape, bool(-0.5 <= p.min() and p.max() <= 4.0)
    ((168,), True)
    >>> day = p.reshape(7, 24)
    >>> bool(day[:, 19:22].mean() > day[:, 2:5].mean())  # evening above night
    True
    """
    if not isinstance(timeline, Timeline):
        raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")
    model = DayAheadModel() if model is None else model
    if not isinstance(model, DayAheadModel):
        raise InputError("model", f"must be a DayAheadModel, got {type(model).__name__}")
    days = _Days(timeline)
    n_days = days.doy.shape[0]
    shape, dip, spike_profile, cold = _deterministic(timeline, days, model)
    shape_mean, extra_mean = _expected_parts(timeline, model)
    scale = (model.mean_price_per_kwh - extra_mean) / shape_mean
    if scale <= 0:
        raise InputError("mean_price_per_kwh", "is below what the spikes alone add "
                         "on average: raise it, or turn spikes off")

    # Random streams, in a fixed order.
    z = np.asarray(rng.standard_normal(int(n_days)), dtype=np.float64)
    z[1:] *= np.sqrt(1.0 - _LEVEL_PHI**2)
    z = ar1(z, _LEVEL_PHI)  # stationary N(0, 1), correlated over days
    level = np.exp(_LEVEL_SIGMA * z - _LEVEL_SIGMA**2 / 2)
    sunshine = rng.random(n_days) ** _SUNSHINE_POWER
    spike_draw, spike_size = rng.random(n_days), rng.random(n_days)
    step_phi = float(np.exp(-timeline.dt_h / _NOISE_TAU_H))
    noise = rng.standard_normal(timeline.periods) * model.noise_sd_per_kwh
    noise[1:] *= np.sqrt(1.0 - step_phi**2)
    noise = ar1(noise, step_phi)

    d = days.of_interval
    price = scale * shape * level[d] - dip * sunshine[d] + noise
    if model.spikes:
        spiking = (z > _SPIKE_Z) & (days.weekday < 5) & (spike_draw < _SPIKE_CHANCE * cold)
        height = _SPIKE_PER_KWH[0] + (_SPIKE_PER_KWH[1] - _SPIKE_PER_KWH[0]) * spike_size
        price += np.where(spiking, height, 0.0)[d] * spike_profile
    out: FloatArray = np.clip(price, *_PRICE_LIMITS_PER_KWH)
    return out


@dataclass(frozen=True)
class SyntheticDayAhead:
    """Synthetic day-ahead prices from a seed: the same seed and timeline give
    the same series, every call.

    Examples
    --------
    >>> tl = Timeline(pd.Timestamp("2024-01-08", tz="Europe/Berlin"), periods=96)
    >>> prices = SyntheticDayAhead(seed=7)
    >>> bool((prices.price_per_kwh(tl) == prices.price_per_kwh(tl)).all())
    True
    """

    seed: Seed
    model: DayAheadModel = field(default_factory=DayAheadModel)

    def __post_init__(self) -> None:
        if not (isinstance(self.seed, np.random.SeedSequence)
                or (isinstance(self.seed, int | np.integer) and not isinstance(self.seed, bool)
                    and self.seed >= 0)):
            raise InputError("seed", f"must be an integer >= 0 or a SeedSequence, "
                             f"got {self.seed!r}")

    def price_per_kwh(self, timeline: Timeline) -> FloatArray:
        return day_ahead_prices_per_kwh(timeline, np.random.default_rng(self.seed), self.model)


@dataclass(frozen=True, eq=False)
class DayAheadTable:
    """Prices per market interval: ``start_ns`` (UTC, ns since the epoch,
    strictly increasing), the end of the last interval ``end_ns``, and
    ``price_per_kwh``. Build it with :func:`read_day_ahead_csv`."""

    start_ns: npt.NDArray[np.int64]
    end_ns: int
    price: FloatArray

    def price_per_kwh(self, timeline: Timeline) -> FloatArray:
        """Each interval's time-weighted mean price; the rows must cover the timeline."""
        if not isinstance(timeline, Timeline):
            raise InputError("timeline", f"must be a Timeline, got {type(timeline).__name__}")
        first = int(timeline.start.value)
        step_ns = timeline.step_minutes * 60 * 10**9
        last = first + timeline.periods * step_ns
        if first < self.start_ns[0] or last > self.end_ns:
            cover = f"{_iso(int(self.start_ns[0]))} to {_iso(self.end_ns)}"
            need = f"{_iso(first)} to {_iso(last)}"
            row = 0 if first < self.start_ns[0] else int(self.start_ns.shape[0]) - 1
            raise InputError("start", f"the prices cover {cover}, the timeline needs {need}",
                             row=row)
        # Averaging a step function: its running integral at the edges; an
        # interval inside one row takes that row's price as it is.
        knots_ns = np.append(self.start_ns, self.end_ns)
        knots_s = (knots_ns - first) / 1e9
        integral = np.concatenate([[0.0], np.cumsum(self.price * np.diff(knots_s))])
        edges_ns = first + np.arange(timeline.periods + 1, dtype=np.int64) * step_ns
        at_edges = np.interp((edges_ns - first) / 1e9, knots_s, integral)
        out: FloatArray = np.diff(at_edges) / (step_ns / 1e9)
        first_row = np.searchsorted(knots_ns, edges_ns[:-1], side="right") - 1
        inside = np.searchsorted(knots_ns, edges_ns[1:], side="left") - 1 == first_row
        out[inside] = self.price[first_row[inside]]
        return out


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def read_day_ahead_csv(path: str | PathLike[str]) -> DayAheadTable:
    """Read day-ahead prices from a CSV file (format in the module docstring).

    Examples
    --------
    >>> import io
    >>> text = "start,price_per_mwh\\n2024-01-01T00:00+01:00,80\\n2024-01-01T01:00+01:00,-5\\n"
    >>> table = read_day_ahead_csv(io.StringIO(text))
    >>> tl = Timeline(pd.Timestamp("2024-01-01", tz="Europe/Berlin"), periods=8)
    >>> table.price_per_kwh(tl).round(3).tolist()
    [0.08, 0.08, 0.08, 0.08, -0.005, -0.005, -0.005, -0.005]
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError("path", f"no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError("path", f"not a readable CSV file: {exc}") from None
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "start" not in columns:
        raise InputError("start", "column is missing (columns: start, and price_per_kwh or "
                         "price_per_mwh)")
    given = [c for c in ("price_per_kwh", "price_per_mwh") if c in columns]
    if len(given) != 1:
        problem = ("column is missing (or give price_per_mwh)" if not given
                   else "give price_per_kwh or price_per_mwh, not both")
        raise InputError("price_per_kwh", problem)
    if frame.shape[0] < 1:
        raise InputError("start", "the file has no rows")
    text = frame[columns["start"]].str.strip()
    has_offset = text.str.contains(_TIME_RE)
    stamps = pd.to_datetime(text.where(has_offset), utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise InputError("start", f"not an ISO 8601 time with a UTC offset: {text.iloc[row]!r}",
                         row=row)
    start_ns = np.asarray(pd.DatetimeIndex(stamps).as_unit("ns").asi8, dtype=np.int64)
    steps = np.diff(start_ns)
    if steps.size and (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise InputError("start", "must come after the row before (sorted, no duplicates)",
                         row=row)
    if steps.size and (steps > _MAX_STEP_NS).any():
        row = int(np.flatnonzero(steps > _MAX_STEP_NS)[0])
        raise InputError("start", "the next row starts more than a day later (a gap)", row=row)
    name = given[0]
    raw = frame[columns[name]].str.strip()
    number = pd.to_numeric(raw, errors="coerce").notna().to_numpy()
    # numpy parses each text exactly (pandas' fast parser may be off in the last digit)
    price = raw.where(number, "nan").to_numpy().astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(price))
    if bad.size:
        row = int(bad[0])
        raise InputError(name, f"must be a finite number, got {frame[columns[name]].iloc[row]!r}",
                         row=row)
    if name == "price_per_mwh":
        price = price / 1000.0
    if start_ns.shape[0] < 2:
        raise InputError("start", "need at least two rows (the step is not known)")
    end_ns = int(start_ns[-1] + steps[-1])
    return DayAheadTable(start_ns=start_ns, end_ns=end_ns, price=price)


def write_day_ahead_csv(path: str | PathLike[str], timeline: Timeline,
                        price_per_kwh: npt.ArrayLike) -> None:
    """Write one price per interval of ``timeline`` in the format
    :func:`read_day_ahead_csv` reads (``start`` in the timeline's zone)."""
    price = np.asarray(price_per_kwh, dtype=np.float64)
    if price.shape != (timeline.periods,):
        raise InputError("price_per_kwh", f"must have shape ({timeline.periods},), "
                         f"got {price.shape}")
    frame = pd.DataFrame({"start": [t.isoformat() for t in timeline.index],
                          "price_per_kwh": price})
    frame.to_csv(path, index=False, float_format="%.17g")
