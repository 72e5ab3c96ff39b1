"""EV fleet: trips, plugging, laxity bids, physics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.agents.ev import EVFleet
from transactive.errors import InputError
from transactive.orders import BUY, SELL
from transactive.timeline import Timeline

TL = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96 * 7)
# a forecast with a daily shape: dear in the evening, cheap at night
PRICES = 0.25 + 0.1 * np.sin(2 * np.pi * (np.arange(TL.periods) / 96 - 0.5))


def _fleet(n=20, seed=3, **kw):
    return EVFleet.draw(TL, np.ones(n, bool), np.random.default_rng(seed), **kw)


def _run(fleet, accept):
    """Step the fleet through its timeline, accepting bids by ``accept(segments)``."""
    for t in range(TL.periods):
        seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
        got = accept(seg)
        energy = np.bincount(seg.household, np.where(seg.side == BUY, got, -got),
                             fleet.capacity_kwh.size)
        fleet.advance(t, energy)


def test_cars_leave_in_the_morning_and_come_home_in_the_evening():
    fleet = _fleet()
    hour = np.asarray(TL.hour_of_day)
    away = ~fleet.plugged
    assert away[(hour >= 11) & (hour < 15)].all()  # everyone is out at midday
    assert not away[(hour >= 0) & (hour < 4)].any()  # and home at night
    assert fleet.trip_kwh.sum(axis=0).min() > 0  # trips take energy


def _trips_by_day(tl, fleet, rng, mask, arrival_hour=18.0, departure_hour=7.5,
                  km_per_day=40.0, kwh_per_km=0.18, required_frac=0.8):
    """The trips of EVFleet.draw's random draws, day by day over whole (T, n)
    arrays (the plain way: slow, quadratic in the run's length)."""
    T, n, ppd = tl.periods, mask.size, tl.periods_per_day
    rng.uniform(size=n), rng.choice([7.4, 11.0], n), rng.random(n)  # cars, chargers, V2G
    days, step_h = -(-T // ppd) + 1, 24.0 / ppd
    arrive = np.clip(rng.normal(arrival_hour, 1.5, (days, n)), 15.0, 23.5)
    leave = np.clip(rng.normal(departure_hour, 0.75, (days, n)), 5.0, 10.0)
    distance = rng.gamma(4.0, km_per_day / 4.0, (days, n))
    day_start = np.arange(days)[:, None] * ppd - round(tl.start_hour / step_h)
    t_arrive = day_start + np.round(arrive / step_h).astype(np.int64)
    t_leave = day_start + np.round(leave / step_h).astype(np.int64)
    plugged, trip = np.ones((T, n), bool), np.zeros((T, n))
    departure = np.full((T, n), T, dtype=np.int64)
    t = np.arange(T)[:, None]
    for d in range(days):
        plugged &= ~((t >= t_leave[d]) & (t < t_arrive[d]))
        for h in np.flatnonzero(mask & (t_arrive[d] >= 0) & (t_arrive[d] < T)):
            trip[t_arrive[d, h], h] = min(distance[d, h] * kwh_per_km,
                                          required_frac * fleet.capacity_kwh[h])
        departure = np.where((t < t_leave[d]) & (departure == T), t_leave[d], departure)
    return plugged & mask, trip, np.where(mask, departure, T)


@pytest.mark.parametrize("start", ["2026-06-01 00:00", "2026-03-28 21:15", "2026-10-24 06:30"])
def test_trips_match_the_day_by_day_construction(start):
    """Plug-in, trips and departures (built in one pass over the run) are what
    a day-by-day construction from the same draws gives, for runs that start
    at midnight, in the evening (cars out before the run: no trip wraps to its
    end) and in the morning, across the clock changes."""
    tl = Timeline(pd.Timestamp(start, tz="Europe/Berlin"), periods=96 * 9 + 37)
    mask = np.random.default_rng(5).random(30) < 0.7
    fleet = EVFleet.draw(tl, mask, np.random.default_rng(8))
    plugged, trip, departure = _trips_by_day(tl, fleet, np.random.default_rng(8), mask)
    np.testing.assert_array_equal(fleet.plugged, plugged)
    np.testing.assert_array_equal(fleet.trip_kwh, trip)
    np.testing.assert_array_equal(fleet.departure, departure)


def test_a_fleet_given_what_it_bids_for_leaves_with_what_it_needs():
    fleet = _fleet()
    _run(fleet, lambda seg: seg.quantity_kwh * (seg.side == BUY))
    assert fleet.shortfall_kwh.max() == pytest.approx(0.0, abs=1e-9)
    _, cars, soc = fleet.soc_at_departure_kwh[-1]
    assert cars.size
    assert (soc >= fleet.required_kwh[cars] - 1e-9).all()


def test_a_car_given_only_its_must_charge_bids_still_leaves_ready():
    # accept only bids at the cap (laxity gone): the laxity rule alone suffices
    fleet = _fleet()
    _run(fleet, lambda seg: np.where((seg.side == BUY) & (seg.price_per_kwh >= 0.40 - 1e-12),
                                     seg.quantity_kwh, 0.0))
    assert fleet.shortfall_kwh.max() == pytest.approx(0.0, abs=1e-6)


def test_bids_rise_with_urgency_and_reach_the_cap_without_laxity():
    # the same car at the same time and forecast, missing more and more energy
    fleet = _fleet(n=1, seed=5)
    t = int(np.flatnonzero(fleet.plugged[:, 0] & (np.arange(TL.periods) > 40))[0])
    prices, laxity = [], []
    for frac in (0.79, 0.6, 0.4, 0.2, 0.0):
        fleet.soc_kwh[:] = frac * fleet.capacity_kwh
        seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
        need = (seg.side == BUY) & (seg.quantity_kwh > 0)
        laxity.append(float(fleet.laxity_h(t)[0]))
        prices.append(float(seg.price_per_kwh[need][0]))
    assert np.all(np.diff(laxity) < 0)
    assert np.all(np.diff(prices) >= -1e-12)
    t_last = int(fleet.departure[t, 0]) - 1  # one interval before it leaves: must charge
    fleet.soc_kwh[:] = 0.5 * fleet.capacity_kwh
    seg = fleet.segments(t_last, PRICES[t_last:t_last + 96], 0.05, 0.40)
    assert seg.price_per_kwh.max() == pytest.approx(0.40)
    assert seg.must_run.any()


def test_energy_is_conserved_and_limits_hold():
    fleet = _fleet(n=5, seed=9)
    soc0 = fleet.soc_kwh.copy()
    drawn = np.zeros(5)
    trips = np.zeros(5)
    for t in range(TL.periods):
        seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
        energy = np.bincount(seg.household, np.where(seg.side == BUY, seg.quantity_kwh, 0.0), 5)
        assert (energy <= fleet.charger_kw * TL.dt_h + 1e-9).all()
        fleet.advance(t, energy)
        drawn += energy
        if t + 1 < TL.periods:
            trips += fleet.trip_kwh[t + 1]
        assert (fleet.soc_kwh <= fleet.capacity_kwh + 1e-9).all()
    np.testing.assert_allclose(fleet.soc_kwh, soc0 + drawn * fleet.efficiency - trips,
                               atol=1e-9)


def test_v2g_offers_only_what_it_does_not_need():
    fleet = _fleet(n=4, seed=2, v2g_share=1.0)
    fleet.soc_kwh[:] = fleet.capacity_kwh
    t = int(np.flatnonzero(fleet.plugged.all(axis=1))[0])
    seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
    sell = seg.side == SELL
    assert sell.any()
    spare = (fleet.capacity_kwh - fleet.required_kwh) * fleet.efficiency
    assert (seg.quantity_kwh[sell] <= spare[seg.household[sell]] + 1e-9).all()


def test_an_unplugged_car_cannot_charge_and_bad_parameters_are_refused():
    fleet = _fleet(n=2)
    t = int(np.flatnonzero(~fleet.plugged[:, 0])[0])
    with pytest.raises(InputError, match="unplugged"):
        fleet.advance(t, np.array([1.0, 0.0]))
    with pytest.raises(InputError) as err:
        EVFleet.draw(TL, np.ones(2, bool), np.random.default_rng(0), required_frac=1.5)
    assert err.value.field == "ev.required_frac"
    with pytest.raises(InputError) as err:
        EVFleet.draw(TL, np.ones(2, bool), np.random.default_rng(0), departure_hour=20.0)
    assert err.value.field == "ev.departure_hour"


def test_a_car_that_never_charges_makes_its_trips_on_energy_it_lacks():
    """Never charged, a car runs empty: what its trips needed beyond what it
    held is counted (it charged elsewhere), so its energy still balances:
    start + unmet trips - trips = end (nothing drawn)."""
    fleet = _fleet(n=4, seed=2)
    soc0 = fleet.soc_kwh.copy()
    trips = fleet.trip_kwh[1:TL.periods].sum(axis=0)
    for t in range(TL.periods):
        fleet.advance(t, np.zeros(4))
    empty = fleet.unmet_trip_kwh > 0
    assert empty.any()
    np.testing.assert_allclose(soc0 + fleet.unmet_trip_kwh - trips, fleet.soc_kwh, atol=1e-9)
    np.testing.assert_allclose(fleet.soc_kwh[empty], 0.0, atol=1e-9)  # they came back empty
