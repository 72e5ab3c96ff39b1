"""Rooftop PV through pvlib: reference cases, orientation, reproducibility, yield."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pvlib
import pytest

from transactive.agents import pv_profiles, solar_elevation_deg
from transactive.agents.profiles import _all_sky, _default_orientation, _sun_position
from transactive.errors import InputError
from transactive.sim.community import build_community
from transactive.sim.scenario import CommunityConfig
from transactive.timeline import Timeline

TZ = "Europe/Berlin"
YEAR = Timeline(pd.Timestamp("2025-01-01", tz=TZ), periods=96 * 365)
SOLSTICE = Timeline(pd.Timestamp("2025-06-21", tz=TZ), periods=96)


def _annual_kwh(**orientation: float) -> float:
    """One 5 kWp household, the same seed (so the same weather) every call."""
    kw = pv_profiles(YEAR, np.array([5.0]), np.random.default_rng(3), **orientation)
    return float(kw.sum(dtype=np.float64)) * YEAR.dt_h


# ------------------------------------------------------------------ references
def test_sun_position_matches_spa_reference() -> None:
    # NREL SPA report (Reda & Andreas 2004, NREL/TP-560-34302, Appendix A.5):
    # Golden, Colorado, 2003-10-17 12:30:30 at UTC-7. Its 50.11162 degree
    # zenith includes refraction at 820 mbar; the geometric elevation is
    # 39.872046 and the azimuth 194.340241 in pvlib's own SPA test fixture.
    tl = Timeline(pd.Timestamp("2003-10-17 12:30", tz="Etc/GMT+7"), periods=1, step_minutes=1)
    elevation = solar_elevation_deg(tl, latitude_deg=39.742476, longitude_deg=-105.1786)
    assert abs(elevation[0] - 39.872046) < 0.002
    _, sun = _sun_position(tl, 39.742476, -105.1786)
    assert abs(sun["azimuth"].iloc[0] - 194.340241) < 0.01


def test_clear_sky_noon_ghi_hand_worked() -> None:
    # Haurwitz at solar noon on the solstice at 48 N: z = 48 - 23.44 degrees,
    # 1098 cos z exp(-0.059 / cos z) = 935.9 W/m2; pvlib gives the clear sky
    # on the refracted zenith (0.008 degrees less at 65 degrees elevation).
    mid, sun = _sun_position(SOLSTICE, 48.0, 11.0)
    up = np.flatnonzero(sun["elevation"].to_numpy() > 0)
    sky = _all_sky(mid[up], sun.iloc[up], np.ones(up.size), 48.0, 11.0)
    cos_z = math.cos(math.radians(48.0 - 23.44))
    assert sky["ghi"].max() == pytest.approx(1098 * cos_z * math.exp(-0.059 / cos_z), abs=1.5)
    noon = int(np.argmax(sky["ghi"]))
    assert 13.0 <= SOLSTICE.hour_of_day[up[noon]] <= 13.5  # 11 E: 13:16 CEST
    # Clear-sky noon GHI in midsummer central Europe is 850-1000 W/m2, below
    # the extraterrestrial irradiance on the horizontal (about 1,200 W/m2).
    assert 850 < sky["ghi"].max() < min(1000, sky["dni_extra"][noon] * cos_z)
    # A clear sky is mostly beam: Erbs gives a diffuse share of 0.165 above kt 0.8.
    assert sky["dhi"][noon] / sky["ghi"][noon] < 0.25


def test_horizontal_plane_receives_ghi() -> None:
    mid, sun = _sun_position(YEAR, 48.0, 11.0)
    up = np.flatnonzero(sun["elevation"].to_numpy() > 0)
    kc = np.random.default_rng(0).uniform(0.05, 1.1, up.size)
    sky = _all_sky(mid[up], sun.iloc[up], kc, 48.0, 11.0)
    poa = pvlib.irradiance.get_total_irradiance(
        0.0, 180.0, sky["zenith"], sky["azimuth"], sky["dni"], sky["ghi"], sky["dhi"],
        dni_extra=sky["dni_extra"], albedo=0.2, model="haydavies")["poa_global"]
    np.testing.assert_allclose(poa, sky["ghi"], rtol=1e-9, atol=1e-9)


def test_tilt_and_azimuth_change_annual_yield_as_expected_at_48_north() -> None:
    horizontal = _annual_kwh(tilt_deg=0.0)
    south = _annual_kwh(tilt_deg=30.0, azimuth_deg=180.0)
    east = _annual_kwh(tilt_deg=30.0, azimuth_deg=90.0)
    west = _annual_kwh(tilt_deg=30.0, azimuth_deg=270.0)
    north = _annual_kwh(tilt_deg=30.0, azimuth_deg=0.0)
    assert 1.05 < south / horizontal < 1.25  # 30 degrees south gains about a tenth
    assert 0.75 < east / south < 0.92
    assert abs(east / west - 1.0) < 0.05
    assert north < east


def test_east_array_peaks_before_west_array() -> None:
    kw = pv_profiles(SOLSTICE, np.array([5.0, 5.0]), np.random.default_rng(1),
                     tilt_deg=40.0, azimuth_deg=[90.0, 270.0])
    hour = SOLSTICE.hour_of_day
    peak_east, peak_west = hour[np.argmax(kw[:, 0])], hour[np.argmax(kw[:, 1])]
    assert peak_east < 12.5 < 14.0 < peak_west


# ------------------------------------------------------------------ orientation
def test_default_orientation_is_on_the_lattice_around_the_equator() -> None:
    tilt, azimuth = _default_orientation(np.random.default_rng(0), 20_000, 48.0)
    assert (tilt.min(), tilt.max()) == (15.0, 45.0)
    assert not (tilt % 5).any()
    assert not (azimuth % 5).any()
    assert 70.0 <= azimuth.min() <= azimuth.max() <= 290.0
    assert abs(azimuth.mean() - 180.0) < 1.0
    # N(0, 45 degrees): 38 % within 22.5 degrees of south, 13 % beyond 67.5.
    assert abs(np.mean(np.abs(azimuth - 180.0) <= 20.0) - 0.38) < 0.03
    assert abs(np.mean(np.abs(azimuth - 180.0) >= 70.0) - 0.13) < 0.03
    _, south_of_equator = _default_orientation(np.random.default_rng(0), 20_000, -33.9)
    off_north = (south_of_equator + 180.0) % 360.0 - 180.0
    assert np.abs(off_north).max() <= 110.0
    assert abs(off_north.mean()) < 1.0


def test_passing_the_default_orientation_back_gives_the_same_bytes() -> None:
    capacity = np.array([4.0, 0.0, 7.5, 3.2])
    default = pv_profiles(SOLSTICE, capacity, np.random.default_rng(9))
    tilt, azimuth = _default_orientation(np.random.default_rng(9), capacity.size, 48.0)
    given = pv_profiles(SOLSTICE, capacity, np.random.default_rng(9),
                        tilt_deg=tilt, azimuth_deg=azimuth)
    assert given.tobytes() == default.tobytes()


def test_orientation_is_rounded_to_whole_degrees() -> None:
    a = pv_profiles(SOLSTICE, np.array([5.0]), np.random.default_rng(2),
                    tilt_deg=30.3, azimuth_deg=359.7)
    b = pv_profiles(SOLSTICE, np.array([5.0]), np.random.default_rng(2),
                    tilt_deg=30.0, azimuth_deg=0.0)
    assert a.tobytes() == b.tobytes()


def test_same_seed_same_bytes() -> None:
    capacity = np.random.default_rng(5).uniform(2.0, 9.0, 30)
    a = pv_profiles(YEAR, capacity, np.random.default_rng(21))
    b = pv_profiles(YEAR, capacity, np.random.default_rng(21))
    c = pv_profiles(YEAR, capacity, np.random.default_rng(22))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "field", "row"),
    [
        ({"tilt_deg": 91.0}, "tilt_deg", 0),
        ({"tilt_deg": [10.0, -1.0]}, "tilt_deg", 1),
        ({"tilt_deg": [10.0, np.nan]}, "tilt_deg", 1),
        ({"tilt_deg": [10.0, 20.0, 30.0]}, "tilt_deg", None),
        ({"tilt_deg": "steep"}, "tilt_deg", None),
        ({"azimuth_deg": [180.0, 361.0]}, "azimuth_deg", 1),
        ({"azimuth_deg": [[180.0, 180.0]]}, "azimuth_deg", None),
    ],
)
def test_bad_orientation_is_rejected(kwargs: dict[str, object], field: str,
                                     row: int | None) -> None:
    with pytest.raises(InputError) as err:
        pv_profiles(SOLSTICE, np.ones(2), np.random.default_rng(), **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert err.value.row == row


def test_no_pv_and_polar_night_give_zeros() -> None:
    assert not pv_profiles(SOLSTICE, np.zeros(3), np.random.default_rng(0)).any()
    winter = Timeline(pd.Timestamp("2025-12-21", tz="UTC"), periods=24, step_minutes=60)
    assert not pv_profiles(winter, np.ones(2), np.random.default_rng(0),
                           latitude_deg=80.0).any()
    assert pv_profiles(SOLSTICE, np.zeros(0), np.random.default_rng(0)).shape == (96, 0)


# ------------------------------------------------------------------ yield
def test_default_community_yield_is_plausible_for_munich() -> None:
    # Measured rooftop systems: 816-1,049 kWh/kWp over 2012-2018, the top in
    # Bavaria (te Heesen, Herbort & Rumpler 2019, Solar Energy 194, 128-135),
    # over 1,100 in Bavaria in 2019; we accept 950-1,150 for Munich.
    config = CommunityConfig()
    year = Timeline(pd.Timestamp("2026-01-01", tz=TZ), periods=96 * 365)
    community = build_community(config, year, np.random.default_rng(0))
    kwh_per_kwp = (community.pv_kw.sum(dtype=np.float64) * year.dt_h
                   / community.pv_capacity_kw.sum())
    assert 950 <= kwh_per_kwp <= 1150
