"""Shiftable appliances: windows, indivisible cycles, bids that rise as the window closes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.agents.shiftable import ShiftableFleet
from transactive.errors import InputError
from transactive.timeline import Timeline

TL = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96 * 5)
# a forecast with a daily shape: dear in the evening, cheap at night
PRICES = 0.25 + 0.1 * np.sin(2 * np.pi * (np.arange(TL.periods) / 96 - 0.5))


def _one(early=10, late=20, duration=4, power=1.0):
    return ShiftableFleet(power_kw=np.array([power]), duration=np.array([duration]),
                          earliest=np.array([[early]]), latest_finish=np.array([[late]]),
                          dt_h=0.25)


def _step(fleet, t, accept):
    seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
    got = np.where(accept(seg), seg.quantity_kwh, 0.0)
    fleet.advance(t, np.bincount(seg.household, got, fleet.power_kw.size))
    return seg


def test_a_cycle_refused_until_it_must_start_starts_at_its_last_chance_at_the_cap():
    fleet = _one()
    prices = []
    for t in range(30):
        waiting = not fleet.started  # the bids to start, up to the one that started it
        seg = _step(fleet, t, lambda s: s.price_per_kwh >= 0.40)
        if waiting and len(seg):
            prices.append(float(seg.price_per_kwh[0]))
    (t_start, who), = fleet.started
    assert t_start == 16  # latest finish 20 - duration 4
    assert who.tolist() == [0]
    assert max(prices[:-1]) < 0.40  # it could wait: below the cap
    assert prices[-1] == pytest.approx(0.40)
    assert fleet.remaining[0] == 0
    assert fleet.missed[0] == 0


def test_a_started_cycle_runs_whole_and_cannot_stop():
    fleet = _one()
    drawn = 0.0
    for t in range(30):
        seg = fleet.segments(t, PRICES[t:t + 96], 0.05, 0.40)
        e = np.bincount(seg.household, seg.quantity_kwh, 1)  # accept everything
        fleet.advance(t, e)
        drawn += float(e[0])
    assert drawn == pytest.approx(fleet.energy_per_cycle_kwh[0])
    fleet2 = _one()
    fleet2.advance(10, np.array([0.25]))
    with pytest.raises(InputError, match="cannot stop"):
        fleet2.advance(11, np.array([0.0]))
    with pytest.raises(InputError, match="power or not at all"):
        _one().advance(10, np.array([0.1]))


def test_every_drawn_cycle_runs_once_within_its_window():
    fleet = ShiftableFleet.draw(TL, np.ones(30, bool), np.random.default_rng(4))
    cycles = (fleet.earliest >= 0).sum()
    for t in range(TL.periods):
        _step(fleet, t, lambda s: s.price_per_kwh >= 0.30)  # only dear bids win
    starts = [(t, h) for t, hh in fleet.started for h in hh]
    assert len(starts) == cycles
    assert fleet.missed.sum() == 0
    for t, h in starts:
        d = np.flatnonzero((fleet.earliest[:, h] <= t) & (fleet.earliest[:, h] >= 0))[-1]
        assert fleet.earliest[d, h] <= t <= fleet.latest_finish[d, h] - fleet.duration[h]


def test_a_window_shorter_than_its_cycle_is_refused():
    with pytest.raises(InputError) as err:
        _one(early=10, late=12, duration=4)
    assert err.value.field == "shiftable.latest_finish"
    with pytest.raises(InputError) as err:
        ShiftableFleet.draw(TL, np.ones(2, bool), np.random.default_rng(0), ready_hour=23.0,
                            due_hour=20.0)
    assert err.value.field == "shiftable.due_hour"
