"""The price-responsive battery: arbitrage limits, bids within limits, storage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from transactive.agents.devices import BatteryFleet, arbitrage_prices
from transactive.errors import InputError
from transactive.orders import BUY


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 96), elements=st.floats(-0.5, 3.0)),
       st.floats(0.5, 1.0), st.floats(0.5, 1.0))
def test_the_battery_arbitrages_only_when_the_spread_pays_its_losses(forecast, eta_c, eta_d):
    buy, sell = arbitrage_prices(forecast, eta_c, eta_d)
    if buy > 0:  # sell / buy >= 1 / (eta_c eta_d), without dividing by a tiny buy
        assert sell * (eta_c * eta_d) >= buy * (1 - 1e-12)
    assert sell >= buy


def _fleet(n=3):
    return BatteryFleet(capacity_kwh=np.linspace(5, 15, n), power_kw=np.full(n, 5.0),
                        efficiency_charge=np.full(n, 0.95), efficiency_discharge=np.full(n, 0.9),
                        soc_min_frac=np.full(n, 0.1))


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 1.0), st.sampled_from([0.25, 1.0]))
def test_bids_stay_within_power_and_capacity_and_storing_them_conserves_energy(frac, dt_h):
    fleet = _fleet()
    soc = fleet.soc_min_kwh + frac * (fleet.capacity_kwh - fleet.soc_min_kwh)
    seg = fleet.segments(soc, dt_h, buy_below=0.1, sell_above=0.3)
    buy = seg.side == BUY
    charge = np.bincount(seg.household[buy], seg.quantity_kwh[buy], 3)
    discharge = np.bincount(seg.household[~buy], seg.quantity_kwh[~buy], 3)
    assert (charge <= fleet.power_kw * dt_h + 1e-9).all()
    full = fleet.store(soc, charge, dt_h)  # every charge bid served: at most full
    assert (full <= fleet.capacity_kwh + 1e-9).all()
    np.testing.assert_allclose(full - soc, charge * fleet.efficiency_charge)
    empty = fleet.store(soc, -discharge, dt_h)  # every discharge ask served: at least the floor
    assert (empty >= fleet.soc_min_kwh - 1e-9).all()
    np.testing.assert_allclose(soc - empty, discharge / fleet.efficiency_discharge)


def test_storing_beyond_capacity_or_power_is_refused():
    fleet = _fleet(1)
    with pytest.raises(InputError, match="power"):
        fleet.store([5.0], [6.0], 1.0)
    with pytest.raises(InputError, match="capacity or floor"):
        fleet.store([4.9], [1.0], 1.0)  # 4.9 + 0.95 > 5
