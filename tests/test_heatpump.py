"""Heat pumps in 1R1C buildings: physics, comfort, thermostat bids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transactive.agents.heatpump import HeatPumpFleet, cop
from transactive.errors import InputError


def _house(**kw):
    base = {"r_k_per_kw": np.array([5.0]), "c_kwh_per_k": np.array([10.0]),
            "p_max_kw": np.array([3.0]), "setpoint_c": np.array([20.0]),
            "band_k": np.array([1.0]), "dt_h": 1.0, "gains_kw": 0.0}
    return HeatPumpFleet(**{**base, **kw})


def test_one_step_is_the_exact_1r1c_solution_worked_by_hand():
    house = _house()
    # 0 degC outdoors, 1 kW electric at COP 3.5 - 0.7 = 2.8: q = 2.8 kW, R q = 14 K
    house.advance(0.0, np.array([1.0]))
    steady, decay = 14.0, math.exp(-1.0 / 50.0)
    assert house.indoor_c[0] == pytest.approx(steady + (20.0 - steady) * decay)


def test_must_run_keeps_the_house_at_its_band_when_the_pump_can():
    house = _house()
    for _ in range(48):  # two cold days, serving only the must-run bids
        seg = house.segments(-5.0, 0, price_mean=0.25, price_std=0.05, price_floor=0.0,
                             price_cap=0.4)
        must = seg.price_per_kwh >= 0.4
        house.advance(-5.0, np.bincount(seg.household[must], seg.quantity_kwh[must], 1))
        assert house.indoor_c[0] >= 19.0 - 1e-9
    assert house.comfort_violation_kh[0] == pytest.approx(0.0, abs=1e-9)


def test_an_undersized_pump_counts_kelvin_hours_outside_the_band():
    house = _house(p_max_kw=np.array([0.5]))
    for _ in range(48):
        house.advance(-10.0, np.array([0.5]))
    assert house.comfort_violation_kh[0] > 10


def test_the_colder_the_house_the_higher_it_bids():
    prices = []
    for indoor in (20.8, 20.0, 19.5, 19.2):
        house = _house()
        house.indoor_c[:] = indoor
        seg = house.segments(5.0, 0, price_mean=0.25, price_std=0.05, price_floor=0.0,
                             price_cap=0.4)
        prices.append(float(seg.price_per_kwh[seg.price_per_kwh < 0.4].max()))
    assert prices == sorted(prices)
    assert prices[1] == pytest.approx(0.25)  # at the set point: the mean price


def test_a_warm_house_and_a_warm_day_do_not_bid():
    house = _house()
    house.indoor_c[:] = 21.5
    assert len(house.segments(5.0, 0, price_mean=0.25, price_std=0.05, price_floor=0.0,
                              price_cap=0.4)) == 0
    house.indoor_c[:] = 19.5
    assert len(house.segments(18.0, 0, price_mean=0.25, price_std=0.05, price_floor=0.0,
                              price_cap=0.4)) == 0


def test_cop_falls_with_the_cold_and_bad_parameters_are_refused():
    assert cop(-7.0) < cop(2.0) < cop(7.0)
    with pytest.raises(InputError) as err:
        _house(band_k=np.array([-1.0]))
    assert err.value.field == "heat_pump.band_k"
    with pytest.raises(InputError) as err:
        _house(c_kwh_per_k=np.array([0.0]))
    assert err.value.field == "heat_pump.r_k_per_kw"
    with pytest.raises(InputError, match="power"):
        _house().advance(0.0, np.array([5.0]))
