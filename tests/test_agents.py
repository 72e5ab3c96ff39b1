"""Agents: household profiles, battery fleets, bidding strategies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.signal import lfilter

import transactive.agents as agents
from transactive.agents import (
    STRATEGIES,
    BatteryFleet,
    limit_prices,
    load_profiles,
    net_orders,
    pv_profiles,
    solar_elevation_deg,
)
from transactive.agents.profiles import _ar1_inplace
from transactive.errors import InputError
from transactive.orders import BUY, SELL, OrderBatch
from transactive.timeline import Timeline

TZ = "Europe/Berlin"
YEAR = Timeline(pd.Timestamp("2025-01-01", tz=TZ), periods=96 * 365)
WEEK = Timeline(pd.Timestamp("2025-01-06", tz=TZ), periods=96 * 7)


@pytest.fixture(scope="module")
def annual_kwh() -> npt.NDArray[np.float64]:
    return np.random.default_rng(11).uniform(1500.0, 8000.0, 40)


@pytest.fixture(scope="module")
def year_load(annual_kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return load_profiles(YEAR, annual_kwh, np.random.default_rng(1))


@pytest.fixture(scope="module")
def pv_capacity() -> npt.NDArray[np.float64]:
    cap = np.random.default_rng(12).uniform(2.0, 10.0, 40)
    cap[[3, 17]] = 0.0
    return cap


@pytest.fixture(scope="module")
def year_pv(pv_capacity: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return pv_profiles(YEAR, pv_capacity, np.random.default_rng(2))


def test_public_names_are_sorted_and_exist() -> None:
    assert agents.__all__ == sorted(agents.__all__, key=lambda s: (not s.isupper(), s))
    for name in agents.__all__:
        assert hasattr(agents, name)
    assert STRATEGIES == ("truthful", "zic")


# ------------------------------------------------------------------ load
def test_load_shape_dtype_and_sign(year_load: npt.NDArray[np.float32]) -> None:
    assert year_load.shape == (YEAR.periods, 40)
    assert year_load.dtype == np.float32
    assert np.isfinite(year_load).all()
    assert year_load.min() >= 0.0


def test_load_annual_energy_matches_target(
    year_load: npt.NDArray[np.float32], annual_kwh: npt.NDArray[np.float64]
) -> None:
    energy = year_load.sum(axis=0, dtype=np.float64) * YEAR.dt_h
    np.testing.assert_allclose(energy, annual_kwh, rtol=0.03)
    assert abs(energy.sum() / annual_kwh.sum() - 1.0) < 0.01


def test_load_zero_consumption_is_zero() -> None:
    kw = load_profiles(WEEK, np.array([0.0, 2000.0]), np.random.default_rng(0))
    assert not kw[:, 0].any()
    assert kw[:, 1].min() > 0


def test_load_is_deterministic() -> None:
    a = load_profiles(WEEK, np.full(5, 3000.0), np.random.default_rng(5))
    b = load_profiles(WEEK, np.full(5, 3000.0), np.random.default_rng(5))
    c = load_profiles(WEEK, np.full(5, 3000.0), np.random.default_rng(6))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def _by_clock(kw: npt.NDArray[np.float32], timeline: Timeline) -> pd.DataFrame:
    idx = timeline.index
    return pd.DataFrame({
        "kw": kw.mean(axis=1), "hour": idx.hour, "month": idx.month,
        "weekend": idx.day_of_week >= 5,
    })


def test_load_daily_weekly_and_seasonal_shape(year_load: npt.NDArray[np.float32]) -> None:
    frame = _by_clock(year_load, YEAR)
    by_hour = frame.groupby("hour")["kw"].mean()
    night = by_hour.loc[2:4].mean()
    evening = by_hour.loc[18:20].mean()
    morning = by_hour.loc[6:8].mean()
    assert evening > 2.0 * night
    assert evening > morning > night
    # Working days start earlier than weekends.
    early = frame[frame["hour"].isin([6])].groupby("weekend")["kw"].mean()
    assert early[False] > 1.2 * early[True]
    # More in winter than in summer (BDEW dynamisation: about 1.24 vs 0.80).
    by_month = frame.groupby("month")["kw"].mean()
    assert by_month[[1, 12]].mean() > 1.3 * by_month[[6, 7]].mean()


def test_load_households_differ_in_shape(year_load: npt.NDArray[np.float32]) -> None:
    hours = YEAR.index.hour.to_numpy()
    daily = np.stack([year_load[hours == h].mean(axis=0) for h in range(24)])  # (24, H)
    share = daily / daily.mean(axis=0)
    assert share.std(axis=1).max() > 0.1  # the shapes differ, not just the scale
    evening_peak = share[15:24].argmax(axis=0)
    assert np.unique(evening_peak).size >= 3


def test_load_has_short_spikes(year_load: npt.NDArray[np.float32]) -> None:
    one = year_load[:, 0].astype(np.float64)
    jumps = np.abs(np.diff(one))
    assert one.max() > 4 * one.mean()
    assert np.quantile(jumps, 0.999) > 1.0  # kW, appliance bursts


def test_winter_week_uses_more_than_summer_week() -> None:
    annual = np.full(20, 4000.0)
    winter = load_profiles(WEEK, annual, np.random.default_rng(3))
    summer_week = Timeline(pd.Timestamp("2025-07-07", tz=TZ), periods=96 * 7)
    summer = load_profiles(summer_week, annual, np.random.default_rng(3))
    assert winter.mean() > 1.3 * summer.mean()
    assert 0.5 < summer.mean() / (4000 / 8760) < 1.0


def test_profiles_accept_odd_timelines() -> None:
    # Starts off the quarter hour, crosses the spring DST switch, hourly steps.
    tl = Timeline(pd.Timestamp("2025-03-29 10:07", tz=TZ), periods=24 * 3, step_minutes=60)
    load = load_profiles(tl, np.full(3, 3000.0), np.random.default_rng(0))
    pv = pv_profiles(tl, np.full(3, 4.0), np.random.default_rng(0))
    for kw in (load, pv):
        assert kw.shape == (72, 3)
        assert np.isfinite(kw).all()
        assert kw.min() >= 0
    assert load_profiles(tl, np.zeros(0), np.random.default_rng(0)).shape == (72, 0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: load_profiles(WEEK, np.array([100.0, -1.0]), np.random.default_rng()),
         "annual_kwh"),
        (lambda: load_profiles(WEEK, np.array([[1.0]]), np.random.default_rng()), "annual_kwh"),
        (lambda: load_profiles(WEEK, np.array([np.nan]), np.random.default_rng()), "annual_kwh"),
        (lambda: load_profiles("2025", np.ones(2), np.random.default_rng()), "timeline"),
        (lambda: load_profiles(WEEK, np.ones(2), 42), "rng"),
        (lambda: pv_profiles(WEEK, np.array([1.0, np.inf]), np.random.default_rng()),
         "capacity_kw"),
        (lambda: pv_profiles(WEEK, np.ones(2), np.random.default_rng(), latitude_deg=91.0),
         "latitude_deg"),
        (lambda: pv_profiles(WEEK, np.ones(2), np.random.default_rng(), longitude_deg=-200.0),
         "longitude_deg"),
    ],
)
def test_profiles_reject_bad_input(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field


def test_blocked_ar1_scan_matches_lfilter() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 7, 100, 1001):
        x = rng.standard_normal((n, 3))
        expected = lfilter([1.0], [1.0, -0.8], x, axis=0)
        _ar1_inplace(x, 0.8)
        np.testing.assert_allclose(x, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ solar geometry
def _almanac_elevation_deg(times_utc: pd.DatetimeIndex, lat: float, lon: float) -> np.ndarray:
    """Sun elevation by the Astronomical Almanac's low-precision formulas (~0.01 deg)."""
    n = times_utc.tz_localize(None).to_julian_date().to_numpy() - 2451545.0
    mean_lon = np.radians((280.460 + 0.9856474 * n) % 360)
    anomaly = np.radians((357.528 + 0.9856003 * n) % 360)
    ecl = mean_lon + np.radians(1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    eps = np.radians(23.439 - 0.0000004 * n)
    ra = np.arctan2(np.cos(eps) * np.sin(ecl), np.cos(ecl))
    dec = np.arcsin(np.sin(eps) * np.sin(ecl))
    gmst_h = (18.697374558 + 24.06570982441908 * n) % 24
    hour_angle = np.radians(gmst_h * 15 + lon) - ra
    phi = np.radians(lat)
    return np.degrees(np.arcsin(np.sin(phi) * np.sin(dec)
                                + np.cos(phi) * np.cos(dec) * np.cos(hour_angle)))


@pytest.mark.parametrize(
    ("lat", "lon", "tz"),
    [(48.0, 11.0, TZ), (-33.9, 18.4, "Africa/Johannesburg"), (40.7, -74.0, "America/New_York")],
)
def test_solar_elevation_matches_almanac(lat: float, lon: float, tz: str) -> None:
    tl = Timeline(pd.Timestamp("2025-01-01", tz=tz), periods=24 * 365, step_minutes=60)
    ours = solar_elevation_deg(tl, latitude_deg=lat, longitude_deg=lon)
    mid = tl.index.tz_convert("UTC") + pd.Timedelta(minutes=30)
    ref = _almanac_elevation_deg(mid, lat, lon)
    assert np.abs(ours - ref).max() < 0.03


def test_day_length_and_noon_elevation_closed_form() -> None:
    lat, decl = 48.0, 23.44  # summer solstice
    tl = Timeline(pd.Timestamp("2025-06-21", tz=TZ), periods=1440, step_minutes=1)
    elev = solar_elevation_deg(tl, latitude_deg=lat, longitude_deg=11.0)
    sunset_angle = math.degrees(math.acos(-math.tan(math.radians(lat))
                                          * math.tan(math.radians(decl))))
    assert abs((elev > 0).sum() / 60 - 2 * sunset_angle / 15) < 0.1
    assert abs(elev.max() - (90 - lat + decl)) < 0.1


# ------------------------------------------------------------------ PV
def test_pv_shape_bounds_and_zero_capacity(
    year_pv: npt.NDArray[np.float32], pv_capacity: npt.NDArray[np.float64]
) -> None:
    assert year_pv.shape == (YEAR.periods, 40)
    assert year_pv.dtype == np.float32
    assert year_pv.min() >= 0.0
    assert (year_pv <= pv_capacity.astype(np.float32)).all()
    assert not year_pv[:, [3, 17]].any()
    # Clipping does happen on bright days, but rarely.
    clipped = (year_pv >= pv_capacity.astype(np.float32) * 0.999) & (pv_capacity > 0)
    assert clipped.mean() < 0.01


def test_pv_zero_at_night(year_pv: npt.NDArray[np.float32]) -> None:
    elev = solar_elevation_deg(YEAR)
    assert not year_pv[elev <= 0].any()
    assert (year_pv[elev > 20].sum(axis=1) > 0).all()


def test_pv_annual_yield_in_band_for_48_north(
    year_pv: npt.NDArray[np.float32], pv_capacity: npt.NDArray[np.float64]
) -> None:
    has = pv_capacity > 0
    yield_kwh_per_kwp = year_pv[:, has].sum(axis=0, dtype=np.float64) * YEAR.dt_h / pv_capacity[has]
    community = year_pv.sum(dtype=np.float64) * YEAR.dt_h / pv_capacity.sum()
    assert 950 <= community <= 1150
    assert yield_kwh_per_kwp.min() > 600
    assert yield_kwh_per_kwp.max() < 1400
    frame = pd.Series(year_pv.sum(axis=1), index=YEAR.index).resample("MS").sum()
    assert frame.iloc[5:7].mean() > 3 * frame.iloc[[0, 11]].mean()  # June-July vs Dec-Jan


def test_pv_output_centres_on_solar_noon() -> None:
    tl = Timeline(pd.Timestamp("2025-01-01", tz=TZ), periods=96 * 31)
    hours = tl.hour_of_day
    centre = {}
    for lon in (11.0, 26.0):
        kw = pv_profiles(tl, np.full(30, 5.0), np.random.default_rng(3),
                         longitude_deg=lon).sum(axis=1)
        centre[lon] = float((kw * hours).sum() / kw.sum())
    # Solar noon at 11 E in January: 12:00 CET - 44 min + 3..13 min (equation of time).
    assert 12.1 < centre[11.0] < 12.6
    assert abs(centre[11.0] - centre[26.0] - 1.0) < 0.05


def test_pv_weather_is_shared_but_households_vary(year_pv: npt.NDArray[np.float32]) -> None:
    daily = pd.DataFrame(year_pv, index=YEAR.index).resample("D").sum().to_numpy()
    a, b = daily[:, 0], daily[:, 1]
    assert np.corrcoef(a, b)[0, 1] > 0.8
    assert not np.allclose(a / a.sum(), b / b.sum(), rtol=0.02)


def test_pv_is_deterministic() -> None:
    cap = np.full(4, 5.0)
    a = pv_profiles(WEEK, cap, np.random.default_rng(9))
    b = pv_profiles(WEEK, cap, np.random.default_rng(9))
    c = pv_profiles(WEEK, cap, np.random.default_rng(10))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


# ------------------------------------------------------------------ batteries
def _one(cap: float, power: float = 5.0, eta: float = 0.95, soc_min: float = 0.1) -> BatteryFleet:
    def one(x: float) -> npt.NDArray[np.float64]:
        return np.array([x])

    return BatteryFleet(capacity_kwh=one(cap), power_kw=one(power), efficiency_charge=one(eta),
                        efficiency_discharge=one(eta), soc_min_frac=one(soc_min))


def test_battery_hand_worked_cases() -> None:
    fleet = _one(10.0)
    # Charge 3 kW for an hour: 3 * 0.95 = 2.85 kWh stored.
    step = fleet.self_consumption(np.array([5.0]), np.array([-3.0]), 1.0)
    assert step.charge_kw[0] == 3.0
    assert step.discharge_kw[0] == 0.0
    assert step.soc_kwh[0] == pytest.approx(7.85)
    # Nearly full: only 0.5 kWh of room, which takes 0.5 / 0.95 kW for an hour.
    step = fleet.self_consumption(np.array([9.5]), np.array([-5.0]), 1.0)
    assert step.charge_kw[0] == pytest.approx(0.5 / 0.95)
    assert step.soc_kwh[0] == 10.0
    # Nearly at soc_min (1 kWh): 0.5 kWh left delivers 0.475 kWh.
    step = fleet.self_consumption(np.array([1.5]), np.array([4.0]), 1.0)
    assert step.discharge_kw[0] == pytest.approx(0.475)
    assert step.soc_kwh[0] == 1.0
    # Power limit binds.
    step = fleet.self_consumption(np.array([5.0]), np.array([8.0]), 0.25)
    assert step.discharge_kw[0] == 5.0
    assert step.soc_kwh[0] == pytest.approx(5.0 - 5.0 / 0.95 * 0.25)
    assert step.p_kw[0] == -5.0


def test_no_battery_does_nothing() -> None:
    fleet = BatteryFleet.build(np.array([False, False]), np.random.default_rng(0))
    step = fleet.self_consumption(fleet.initial_soc_kwh(), np.array([-3.0, 3.0]), 0.25)
    assert not step.charge_kw.any()
    assert not step.discharge_kw.any()
    assert not step.soc_kwh.any()


@st.composite
def _fleet_and_state(draw: st.DrawFn) -> tuple[BatteryFleet, np.ndarray, np.ndarray, float]:
    n = draw(st.integers(1, 12))
    floats = st.floats(0.0, 20.0, allow_nan=False)
    cap = draw(hnp.arrays(np.float64, n, elements=floats))
    power = draw(hnp.arrays(np.float64, n, elements=floats))
    eta_c = draw(hnp.arrays(np.float64, n, elements=st.floats(0.5, 1.0)))
    eta_d = draw(hnp.arrays(np.float64, n, elements=st.floats(0.5, 1.0)))
    soc_min = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 0.5)))
    where = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    fleet = BatteryFleet(capacity_kwh=cap, power_kw=power, efficiency_charge=eta_c,
                         efficiency_discharge=eta_d, soc_min_frac=soc_min)
    soc = fleet.soc_min_kwh + where * (cap - fleet.soc_min_kwh)
    net = draw(hnp.arrays(np.float64, n, elements=st.floats(-30.0, 30.0)))
    dt_h = draw(st.floats(0.01, 2.0))
    return fleet, soc, net, dt_h


@settings(max_examples=200, deadline=None)
@given(_fleet_and_state())
def test_battery_step_properties(case: tuple[BatteryFleet, np.ndarray, np.ndarray, float]) -> None:
    fleet, soc, net, dt_h = case
    step = fleet.self_consumption(soc, net, dt_h)
    charge, discharge, new = step.charge_kw, step.discharge_kw, step.soc_kwh
    assert (new >= fleet.soc_min_kwh).all()
    assert (new <= fleet.capacity_kwh).all()
    assert (charge >= 0).all()
    assert (discharge >= 0).all()
    assert (charge <= fleet.power_kw).all()
    assert (discharge <= fleet.power_kw).all()
    assert not (charge * discharge).any()  # never both at once
    assert (charge <= np.maximum(-net, 0)).all()
    assert (discharge <= np.maximum(net, 0)).all()
    stored = (charge * fleet.efficiency_charge - discharge / fleet.efficiency_discharge) * dt_h
    np.testing.assert_allclose(new - soc, stored, atol=1e-9)
    # Greedy: it stops short of the surplus/deficit only at a power or energy limit.
    short_c = charge < np.maximum(-net, 0) - 1e-12
    at_limit = (np.isclose(charge, fleet.power_kw) | np.isclose(new, fleet.capacity_kwh))
    assert (at_limit | ~short_c).all()
    short_d = discharge < np.maximum(net, 0) - 1e-12
    at_limit = (np.isclose(discharge, fleet.power_kw) | np.isclose(new, fleet.soc_min_kwh))
    assert (at_limit | ~short_d).all()


def _reference_step(fleet: BatteryFleet, h: int, soc: float, net: float,
                    dt: float) -> tuple[float, float, float]:
    """Self-consumption of one battery, written out branch by branch."""
    cap, power = fleet.capacity_kwh[h], fleet.power_kw[h]
    eta_c, eta_d = fleet.efficiency_charge[h], fleet.efficiency_discharge[h]
    low = fleet.soc_min_frac[h] * cap
    if net < 0:
        kw = min(-net, power, (cap - soc) / (eta_c * dt))
        return kw, 0.0, min(soc + kw * eta_c * dt, cap)
    kw = min(net, power, (soc - low) * eta_d / dt)
    return 0.0, kw, max(soc - kw / eta_d * dt, low)


def test_battery_matches_scalar_reference_over_a_week() -> None:
    rng = np.random.default_rng(8)
    fleet = BatteryFleet.build(rng.random(25) < 0.7, rng)
    net = rng.normal(0.0, 3.0, (96 * 7, 25))
    soc = fleet.initial_soc_kwh()
    ref = soc.copy()
    for t in range(net.shape[0]):
        step = fleet.self_consumption(soc, net[t], 0.25)
        soc = step.soc_kwh
        for h in range(25):
            c, d, ref[h] = _reference_step(fleet, h, ref[h], net[t, h], 0.25)
            assert step.charge_kw[h] == pytest.approx(c, abs=1e-12)
            assert step.discharge_kw[h] == pytest.approx(d, abs=1e-12)
        np.testing.assert_allclose(soc, ref, atol=1e-9)


def test_battery_build_draws_in_ranges_and_is_deterministic() -> None:
    has = np.arange(200) % 3 == 0
    a = BatteryFleet.build(has, np.random.default_rng(1), capacity_kwh=(5.0, 13.5),
                           power_kw=(3.0, 5.0), efficiency=0.9)
    b = BatteryFleet.build(has, np.random.default_rng(1), capacity_kwh=(5.0, 13.5),
                           power_kw=(3.0, 5.0), efficiency=0.9)
    assert a.capacity_kwh.tobytes() == b.capacity_kwh.tobytes()
    assert ((a.capacity_kwh[has] >= 5.0) & (a.capacity_kwh[has] <= 13.5)).all()
    assert ((a.power_kw[has] >= 3.0) & (a.power_kw[has] <= 5.0)).all()
    assert not a.capacity_kwh[~has].any()
    assert not a.power_kw[~has].any()
    assert (a.efficiency_charge == 0.9).all()
    assert (a.efficiency_discharge == 0.9).all()
    np.testing.assert_allclose(a.initial_soc_kwh(), 0.5 * a.capacity_kwh)
    assert not a.capacity_kwh.flags.writeable


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: BatteryFleet.build(np.array([1, 0]), np.random.default_rng()), "has_battery"),
        (lambda: BatteryFleet.build(np.array([True]), np.random.default_rng(),
                                    capacity_kwh=(5.0, 1.0)), "capacity_kwh"),
        (lambda: BatteryFleet.build(np.array([True]), np.random.default_rng(),
                                    power_kw=(-1.0, 1.0)), "power_kw"),
        (lambda: BatteryFleet.build(np.array([True]), np.random.default_rng(),
                                    efficiency=1.2), "efficiency"),
        (lambda: BatteryFleet(capacity_kwh=[1.0, 2.0], power_kw=[1.0], efficiency_charge=[1.0],
                              efficiency_discharge=[1.0], soc_min_frac=[0.0]), "power_kw"),
        (lambda: BatteryFleet(capacity_kwh=[1.0], power_kw=[1.0], efficiency_charge=[0.0],
                              efficiency_discharge=[1.0], soc_min_frac=[0.0]),
         "efficiency_charge"),
        (lambda: BatteryFleet(capacity_kwh=[1.0], power_kw=[1.0], efficiency_charge=[1.0],
                              efficiency_discharge=[1.0], soc_min_frac=[1.0]), "soc_min_frac"),
        (lambda: _one(10.0).self_consumption(np.array([11.0]), np.array([1.0]), 0.25),
         "soc_kwh"),
        (lambda: _one(10.0).self_consumption(np.array([0.5]), np.array([1.0]), 0.25),
         "soc_kwh"),
        (lambda: _one(10.0).self_consumption(np.array([5.0]), np.array([1.0, 2.0]), 0.25),
         "net_load_kw"),
        (lambda: _one(10.0).self_consumption(np.array([5.0]), np.array([np.nan]), 0.25),
         "net_load_kw"),
        (lambda: _one(10.0).self_consumption(np.array([5.0]), np.array([1.0]), 0.0), "dt_h"),
    ],
)
def test_battery_rejects_bad_input(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field


# ------------------------------------------------------------------ strategies
def test_truthful_bids_the_values() -> None:
    is_buy = np.array([True, False, True])
    prices = limit_prices("truthful", is_buy, np.array([0.30, 0.99, 0.25]), 0.08,
                          np.random.default_rng(0), price_floor=0.0, price_cap=0.30)
    assert prices.tolist() == [0.30, 0.08, 0.25]


@settings(max_examples=200, deadline=None)
@given(
    is_buy=hnp.arrays(np.bool_, st.integers(0, 30)),
    floor=st.floats(-1.0, 1.0),
    width=st.floats(0.0, 2.0),
    where_buy=st.floats(0.0, 1.0),
    where_sell=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_zic_prices_never_lose_money(is_buy: np.ndarray, floor: float, width: float,
                                     where_buy: float, where_sell: float, seed: int) -> None:
    cap = floor + width
    buy_value = floor + where_buy * width
    sell_value = floor + where_sell * width
    p = limit_prices("zic", is_buy, buy_value, sell_value, np.random.default_rng(seed),
                     price_floor=floor, price_cap=cap)
    assert p.shape == is_buy.shape
    assert p.dtype == np.float64
    assert ((p[is_buy] >= floor) & (p[is_buy] <= buy_value)).all()
    assert ((p[~is_buy] >= sell_value) & (p[~is_buy] <= cap)).all()


def test_zic_is_uniform_between_the_bounds() -> None:
    n = 20_000
    is_buy = np.arange(n) % 2 == 0
    p = limit_prices("zic", is_buy, 0.30, 0.10, np.random.default_rng(3),
                     price_floor=0.0, price_cap=0.40)
    assert stats.kstest(p[is_buy], stats.uniform(0.0, 0.30).cdf).pvalue > 1e-3
    assert stats.kstest(p[~is_buy], stats.uniform(0.10, 0.30).cdf).pvalue > 1e-3
    again = limit_prices("zic", is_buy, 0.30, 0.10, np.random.default_rng(3),
                         price_floor=0.0, price_cap=0.40)
    assert p.tobytes() == again.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "greedy"}, "strategy"),
        ({"is_buy": np.array([1, 0])}, "is_buy"),
        ({"buy_value": 0.5}, "buy_value"),
        ({"sell_value": np.array([0.1, -0.1])}, "sell_value"),
        ({"buy_value": np.array([0.1, 0.2, 0.3])}, "buy_value"),
        ({"price_cap": -1.0}, "price_cap"),
        ({"price_floor": float("nan")}, "price_floor"),
        ({"rng": 3}, "rng"),
    ],
)
def test_limit_prices_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"strategy": "zic", "is_buy": np.array([True, False]), "buy_value": 0.3,
            "sell_value": 0.1, "rng": np.random.default_rng(0), "price_floor": 0.0,
            "price_cap": 0.4}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        limit_prices(args.pop("strategy"), args.pop("is_buy"), args.pop("buy_value"),
                     args.pop("sell_value"), args.pop("rng"), **args)
    assert err.value.field == field


def test_net_orders_sides_quantities_and_ids() -> None:
    net = np.array([0.5, -0.2, 0.0, 1e-8, -3.0])
    price = np.array([0.3, 0.1, 0.3, 0.3, 0.12])
    ob = net_orders(7, net, np.arange(5), price)
    assert ob.id.tolist() == [35, 36, 39]
    assert ob.id.dtype == np.int64
    assert ob.participant.tolist() == [0, 1, 4]
    assert ob.side.tolist() == [BUY, SELL, SELL]
    assert ob.quantity.tolist() == [0.5, 0.2, 3.0]
    assert ob.price.tolist() == [0.3, 0.1, 0.12]
    assert ob.node is None
    assert not ob.price.flags.writeable
    # The trusted batch passes full validation, and ids stay unique across intervals.
    OrderBatch(id=ob.id, participant=ob.participant, side=ob.side, price=ob.price,
               quantity=ob.quantity)
    both = OrderBatch.concat([ob, net_orders(8, net, np.arange(5), price)])
    assert len(both) == 6


def test_net_orders_string_participants_and_empty() -> None:
    ob = net_orders(0, np.array([1.0, -1.0]), np.array(["a", "b"]), np.array([0.3, 0.1]))
    assert ob.participant.tolist() == ["a", "b"]
    empty = net_orders(3, np.zeros(4), np.arange(4), np.zeros(4))
    assert len(empty) == 0


@settings(max_examples=200, deadline=None)
@given(net=hnp.arrays(np.float64, st.integers(0, 40), elements=st.floats(-5.0, 5.0)),
       interval=st.integers(0, 10_000))
def test_net_orders_conserve_the_net_positions(net: np.ndarray, interval: int) -> None:
    ob = net_orders(interval, net, np.arange(net.size), np.full(net.size, 0.2))
    big = np.abs(net) >= 1e-6
    assert len(ob) == big.sum()
    assert (ob.quantity > 0).all()
    signed = np.where(ob.side == BUY, ob.quantity, -ob.quantity)
    np.testing.assert_array_equal(signed, net[big])
    np.testing.assert_array_equal(ob.id, interval * net.size + np.flatnonzero(big))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": -1}, "interval"),
        ({"interval": 1.5}, "interval"),
        ({"net_kwh": np.array([[1.0]])}, "net_kwh"),
        ({"net_kwh": np.array([1.0, np.inf])}, "net_kwh"),
        ({"participant": np.array([0])}, "participant"),
        ({"participant": np.array(["a", " "])}, "participant"),
        ({"participant": np.array([0.5, 1.5])}, "participant"),
        ({"limit_price": np.array([0.1])}, "limit_price"),
        ({"min_kwh": 0.0}, "min_kwh"),
    ],
)
def test_net_orders_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"interval": 0, "net_kwh": np.array([1.0, -1.0]),
                            "participant": np.arange(2), "limit_price": np.array([0.3, 0.1]),
                            "min_kwh": 1e-6}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        net_orders(args.pop("interval"), args.pop("net_kwh"), args.pop("participant"),
                   args.pop("limit_price"), **args)
    assert err.value.field == field
