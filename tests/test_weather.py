"""Outdoor temperature: seasonal and diurnal cycles, persistence, seeds, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.agents.weather import annual_cycle_c, outdoor_temperature_c
from transactive.errors import InputError
from transactive.timeline import Timeline


def _year(start: str = "2025-01-01", tz: str = "Europe/Berlin", step: int = 60) -> Timeline:
    return Timeline(pd.Timestamp(start, tz=tz), periods=365 * 1440 // step, step_minutes=step)


def _first_harmonic(daily: np.ndarray, start_doy: int = 1) -> tuple[float, float, float]:
    """Mean, amplitude and coldest day of year of a daily series."""
    doy = start_doy + np.arange(daily.shape[0])
    w = 2 * np.pi * doy / 365.25
    x = np.column_stack([np.ones_like(w), np.cos(w), np.sin(w)])
    mean, a, b = np.linalg.lstsq(x, daily, rcond=None)[0]
    coldest = (np.degrees(np.arctan2(-b, -a)) / 360 * 365.25) % 365.25
    return float(mean), float(np.hypot(a, b)), float(coldest)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_annual_mean_and_amplitude_follow_the_parameters(seed):
    tl = _year()
    t = outdoor_temperature_c(tl, np.random.default_rng(seed), annual_mean_c=12.0,
                              annual_amplitude_k=7.0, coldest_day_of_year=20.0)
    mean, amplitude, coldest = _first_harmonic(t.reshape(365, 24).mean(axis=1))
    # The AR(1) weather moves a year's mean by about half a kelvin (sd).
    assert mean == pytest.approx(12.0, abs=1.5)
    assert amplitude == pytest.approx(7.0, abs=1.5)
    assert coldest == pytest.approx(20.0, abs=20.0)


def test_defaults_are_central_european_and_follow_latitude():
    mean, amplitude, coldest = annual_cycle_c(48.0)
    assert 8.0 < mean < 11.0
    assert 8.0 < amplitude < 10.0
    assert coldest == 16.0
    north, south = annual_cycle_c(60.0), annual_cycle_c(40.0)
    assert north[0] < mean < south[0]  # colder to the north
    assert north[1] > amplitude > south[1]  # larger seasons to the north
    assert annual_cycle_c(-48.0)[2] == pytest.approx(16.0 + 365.25 / 2)  # half a year on
    # Averaged over seeds, a simulated year lands on the default cycle.
    stats = np.array([_first_harmonic(outdoor_temperature_c(
        _year(), np.random.default_rng(s)).reshape(365, 24).mean(axis=1))[:2]
        for s in range(8)])
    assert stats[:, 0].mean() == pytest.approx(mean, abs=0.6)
    assert stats[:, 1].mean() == pytest.approx(amplitude, abs=0.6)


def test_southern_summer_is_in_january():
    tl = _year(tz="UTC")
    t = outdoor_temperature_c(tl, np.random.default_rng(3), latitude_deg=-35.0,
                              longitude_deg=150.0).reshape(365, 24).mean(axis=1)
    assert t[:31].mean() > t[181:212].mean() + 5.0


def _mean_day(tl: Timeline, t: np.ndarray, month: int) -> pd.Series:
    """The month's mean temperature by local clock hour (index: hour, 0.125 .. 23.875)."""
    in_month = np.asarray(tl.index.month == month)
    return pd.Series(t[in_month]).groupby(tl.hour_of_day[in_month]).mean()


@pytest.mark.parametrize("seed", [4, 5])
def test_diurnal_cycle_minimum_near_sunrise_maximum_mid_afternoon(seed):
    tl = _year(step=15)
    t = outdoor_temperature_c(tl, np.random.default_rng(seed))
    june, december = _mean_day(tl, t, 6), _mean_day(tl, t, 12)  # CEST and CET
    # Sunrise at 48 N, 11 E: about 5:15 CEST in June, 8:00 CET in December.
    assert 4.5 <= june.idxmin() <= 6.0
    assert 7.0 <= december.idxmin() <= 9.0
    assert 14.0 <= june.idxmax() <= 16.5
    assert 12.5 <= december.idxmax() <= 15.0
    # The daily range is larger in summer than in winter (6 and 10 K defaults).
    assert 8.0 < np.ptp(june) < 12.0
    assert 4.0 < np.ptp(december) < 8.0


def test_day_to_day_persistence():
    tl = _year()
    t = outdoor_temperature_c(tl, np.random.default_rng(5), annual_amplitude_k=0.0,
                              daily_persistence=0.8)
    daily = t.reshape(365, 24).mean(axis=1)
    anomaly = daily - daily.mean()
    lag1 = np.corrcoef(anomaly[1:], anomaly[:-1])[0, 1]
    assert 0.65 < lag1 < 0.9
    white = outdoor_temperature_c(tl, np.random.default_rng(5), annual_amplitude_k=0.0,
                                  daily_persistence=0.0).reshape(365, 24).mean(axis=1)
    assert abs(np.corrcoef(white[1:], white[:-1])[0, 1]) < 0.2


def test_same_seed_same_series_different_seed_differs():
    tl = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96 * 7)
    a = outdoor_temperature_c(tl, np.random.default_rng(11))
    b = outdoor_temperature_c(tl, np.random.default_rng(11))
    c = outdoor_temperature_c(tl, np.random.default_rng(12))
    assert a.dtype == np.float64
    assert a.shape == (tl.periods,)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_quiet_series_is_the_smooth_curve():
    tl = Timeline(pd.Timestamp("2026-03-20", tz="UTC"), periods=96 * 3)
    quiet = outdoor_temperature_c(tl, np.random.default_rng(0), daily_sd_k=(0.0, 0.0),
                                  noise_sd_k=0.0)
    assert np.abs(np.diff(quiet)).max() < 1.0  # no jumps between day and night branches


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latitude_deg": 80.0}, "latitude_deg"),
        ({"latitude_deg": float("nan")}, "latitude_deg"),
        ({"longitude_deg": 200.0}, "longitude_deg"),
        ({"annual_amplitude_k": -1.0}, "annual_amplitude_k"),
        ({"annual_mean_c": "warm"}, "annual_mean_c"),
        ({"coldest_day_of_year": 400.0}, "coldest_day_of_year"),
        ({"diurnal_range_k": (6.0,)}, "diurnal_range_k"),
        ({"diurnal_range_k": (6.0, -1.0)}, "diurnal_range_k"),
        ({"daily_sd_k": (1.0, float("inf"))}, "daily_sd_k"),
        ({"daily_persistence": 1.0}, "daily_persistence"),
        ({"noise_sd_k": -0.1}, "noise_sd_k"),
    ],
)
def test_bad_parameters_are_refused(kwargs, field):
    tl = Timeline(pd.Timestamp("2026-06-01", tz="UTC"), periods=4)
    with pytest.raises(InputError) as info:
        outdoor_temperature_c(tl, np.random.default_rng(0), **kwargs)
    assert info.value.field == field


def test_bad_timeline_and_rng_are_refused():
    tl = Timeline(pd.Timestamp("2026-06-01", tz="UTC"), periods=4)
    with pytest.raises(InputError, match="Timeline"):
        outdoor_temperature_c("2026-06-01", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Generator"):
        outdoor_temperature_c(tl, 42)  # type: ignore[arg-type]
