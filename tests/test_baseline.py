"""Demand-response baselines and negawatt settlement: cases worked by hand
(CAISO 10-in-10 with its capped day-of adjustment, PJM high 4 of 5 with a tie,
a weather regression recovering its coefficients, bias and CV(RMSE), negawatts
and rebound), properties, and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transactive.errors import InputError
from transactive.programs.baseline import baseline, baseline_errors
from transactive.programs.dr import DayType, day_types, event_windows, negawatts

HOURLY = 24
ALL_WEEKDAYS_12 = np.full(12, DayType.WEEKDAY)  # a synthetic calendar: no weekends


# --- CAISO 10-in-10 -------------------------------------------------------------------------

def _twelve_days() -> np.ndarray:
    """12 days x 24 h x 3 households.

    Household 0 draws ``d + 1`` kWh every hour of day ``d`` (days 0-10); the
    others draw 2 kWh. Day 3 is an event day and draws 100 kWh (it must not
    count). Day 11 is the event day (event 14:00-18:00); in the adjustment
    window (10:00-13:00) household 0 draws 6.82, household 1 draws 1.0 and
    household 2 draws 3.0.
    """
    meter = np.empty((12, HOURLY, 3))
    meter[:11, :, 0] = (np.arange(11) + 1.0)[:, None]
    meter[:11, :, 1:] = 2.0
    meter[3] = 100.0
    meter[11] = 5.0
    meter[11, 10:13] = [6.82, 1.0, 3.0]
    return meter


def test_caiso_ten_in_ten_worked_by_hand():
    meter = _twelve_days()
    # eligible for day 11: days 0-10 without event day 3, exactly 10 days.
    # household 0: (1+2+3+5+6+7+8+9+10+11) / 10 = 62 / 10 = 6.2 kWh every hour
    # households 1, 2: 2.0
    raw = baseline(meter, [3, 11], days=[11], method="caiso_10in10",
                   day_type=ALL_WEEKDAYS_12, event_start_hour=14, event_end_hour=18,
                   adjust=False)
    assert raw[0, :, 0] == pytest.approx(np.full(HOURLY, 6.2), abs=1e-12)
    assert raw[0, :, 1:] == pytest.approx(np.full((HOURLY, 2), 2.0), abs=1e-12)
    # day-of adjustment over 10:00-13:00 (the 3 hours ending 1 h before 14:00):
    # household 0: 3 * 6.82 / (3 * 6.2) = 1.1 -> 6.2 * 1.1 = 6.82 (inside the cap)
    # household 1: 1.0 / 2.0 = 0.5 -> capped at 0.8 -> 1.6
    # household 2: 3.0 / 2.0 = 1.5 -> capped at 1.2 -> 2.4
    adjusted = baseline(meter, [3, 11], days=[11], method="caiso_10in10",
                        day_type=ALL_WEEKDAYS_12, event_start_hour=14, event_end_hour=18)
    assert adjusted[0, 15] == pytest.approx([6.82, 1.6, 2.4], abs=1e-12)
    # the whole day is scaled, not only the event hours
    assert adjusted[0, 0] == pytest.approx([6.82, 1.6, 2.4], abs=1e-12)
    wider = baseline(meter, [3, 11], days=[11], method="caiso_10in10",
                     day_type=ALL_WEEKDAYS_12, event_start_hour=14, event_end_hour=18,
                     cap=0.6)
    assert wider[0, 15] == pytest.approx([6.82, 1.0, 3.0], abs=1e-12)


def test_caiso_refuses_an_event_day_without_ten_eligible_days():
    meter = _twelve_days()
    with pytest.raises(InputError, match=r"day 3: the caiso_10in10 baseline needs 10 eligible "
                                         r"weekday days .* found 3") as info:
        baseline(meter, [3, 11], method="caiso_10in10", day_type=ALL_WEEKDAYS_12,
                 event_start_hour=14, event_end_hour=18)
    assert info.value.field == "event_days"


def test_caiso_weekend_event_averages_the_last_four_weekend_or_holiday_days():
    # day 0 a Monday; day 9 (a Wednesday) a holiday; event on day 20, a Sunday
    types = day_types(first_weekday=0, n_days=21, holidays=[9])
    assert types[20] == DayType.SUNDAY
    meter = np.tile(np.arange(21.0)[:, None, None], (1, HOURLY, 1))
    b = baseline(meter, [20], method="caiso_10in10", day_type=types, event_start_hour=14,
                 event_end_hour=18, adjust=False)
    # weekend/holiday days before day 20: 5, 6, 9, 12, 13, 19 -> the last 4: 9, 12, 13, 19
    assert b[0, 0, 0] == pytest.approx((9 + 12 + 13 + 19) / 4)


def test_caiso_looks_back_45_days_at_most():
    types = np.full(60, DayType.WEEKDAY)
    meter = np.ones((60, HOURLY, 1))
    # days 10-58 are events: 10 eligible days (0-9) exist, but 50 to 59 days back
    with pytest.raises(InputError, match="in the 45 days before it, found 0"):
        baseline(meter, np.arange(10, 60), days=[59], method="caiso_10in10", day_type=types,
                 event_start_hour=14, event_end_hour=18)
    # with events on days 20-58 only days 14-19 are eligible within the 45 days
    with pytest.raises(InputError, match="found 6"):
        baseline(meter, np.arange(20, 60), days=[59], method="caiso_10in10", day_type=types,
                 event_start_hour=14, event_end_hour=18)


def test_weekday_holiday_is_not_a_weekday_baseline_day():
    types = day_types(first_weekday=0, n_days=16, holidays=[2])  # day 2 a Wednesday holiday
    meter = np.ones((16, HOURLY, 1))
    meter[2] = 50.0
    # weekdays before day 15 (a Tuesday): 0, 1, 3, 4, 7-11, 14 -> exactly 10 without day 2
    b = baseline(meter, [15], method="caiso_10in10", day_type=types, event_start_hour=14,
                 event_end_hour=18)
    assert b == pytest.approx(np.ones((1, HOURLY, 1)))


def test_adjustment_window_on_a_quarter_hour_grid():
    # event 14:15-15:00: the window is 10:15-13:15, intervals 41 to 52
    meter = np.ones((12, 96, 1))
    meter[11] = 5.0
    meter[11, 41:53] = 1.1
    b = baseline(meter, [11], method="caiso_10in10", day_type=ALL_WEEKDAYS_12,
                 event_start_hour=14.25, event_end_hour=15)
    assert b[0, 57:60, 0] == pytest.approx([1.1, 1.1, 1.1])
    assert event_windows(14.25, 15, 96)[0].nonzero()[0].tolist() == [57, 58, 59]


# --- PJM high 4 of 5 ------------------------------------------------------------------------

def test_pjm_high_four_of_five_with_a_tie_worked_by_hand():
    # day 0 a Monday: days 0-4 Mon-Fri, 5-6 the weekend, day 7 (Monday) the event
    types = day_types(first_weekday=0, n_days=8)
    meter = np.empty((8, HOURLY, 2))
    # household 0: event hours (14, 15) load by day 3, 5, 2, 4, 2; other hours 1,
    # except day 2's other hours at 5. Days 2 and 4 tie for the lowest event-hour
    # load (2): the older, day 2, is left out -> days 0, 1, 3, 4.
    meter[:, :, 0] = 1.0
    meter[2, :, 0] = 5.0
    meter[:5, 14:16, 0] = np.array([3.0, 5.0, 2.0, 4.0, 2.0])[:, None]
    # household 1: event-hour loads 1, 6, 6, 6, 6, other hours 2: day 0 is left out
    meter[:, :, 1] = 2.0
    meter[:5, 14:16, 1] = np.array([1.0, 6.0, 6.0, 6.0, 6.0])[:, None]
    raw = baseline(meter, [7], method="pjm_high4of5", day_type=types, event_start_hour=14,
                   event_end_hour=16, adjust=False)
    # household 0: event hours (3 + 5 + 4 + 2) / 4 = 3.5, other hours (1+1+1+1)/4 = 1.0
    # (had day 2 been kept instead of day 4: (1+1+5+1)/4 = 2.0)
    # household 1: event hours 6.0, other hours 2.0
    assert raw[0, 15] == pytest.approx([3.5, 6.0])
    assert raw[0, 11] == pytest.approx([1.0, 2.0])
    # symmetric additive adjustment, 10:00-13:00 (3 hours ending 1 h before 14:00):
    # household 0 metered 1.5 there -> +0.5; household 1 metered 1.25 -> -0.75
    meter[7, 10:13] = [1.5, 1.25]
    adjusted = baseline(meter, [7], method="pjm_high4of5", day_type=types,
                        event_start_hour=14, event_end_hour=16)
    assert adjusted[0, 15] == pytest.approx([4.0, 5.25])
    assert adjusted[0, 0] == pytest.approx([1.5, 1.25])


def test_pjm_saturday_event_uses_the_high_two_of_three_saturdays():
    types = day_types(first_weekday=5, n_days=22)  # days 0, 7, 14, 21 are Saturdays
    meter = np.zeros((22, HOURLY, 1))
    meter[[0, 7, 14], :, 0] = np.array([9.0, 1.0, 3.0])[:, None]
    meter[[1, 8, 15], :, 0] = 100.0  # Sundays: another pool
    b = baseline(meter, [21], method="pjm_high4of5", day_type=types, event_start_hour=14,
                 event_end_hour=16, adjust=False)
    assert b[0, 14, 0] == pytest.approx((9.0 + 3.0) / 2)


# --- regression -----------------------------------------------------------------------------

def _weather(n_days: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 15.0 + 15.0 * rng.random((n_days, HOURLY))


def test_regression_recovers_a_perfectly_linear_series():
    temp = _weather(20)
    intercept = np.array([0.5, 2.0])  # per household, the same every hour
    slope = np.array([0.1, -0.03])
    meter = intercept + slope * temp[:, :, None]
    types = np.full(20, DayType.WEEKDAY)
    b = baseline(meter, [18, 19], method="regression", day_type=types, event_start_hour=14,
                 event_end_hour=18, temperature_c=temp)
    assert b == pytest.approx(meter[18:20], abs=1e-9)
    # the coefficients, back from the two event days
    recovered = (b[0] - b[1]) / (temp[18] - temp[19])[:, None]
    assert recovered == pytest.approx(np.broadcast_to(slope, (HOURLY, 2)), abs=1e-9)
    assert b[0] - recovered * temp[18][:, None] == pytest.approx(
        np.broadcast_to(intercept, (HOURLY, 2)), abs=1e-9)


def test_regression_on_degree_terms_recovers_a_change_point_model():
    temp = _weather(30, seed=2) - 5.0  # 10 to 25 degC around the 18 degC balance point
    load = 1.0 + 0.2 * np.maximum(18.0 - temp, 0) + 0.3 * np.maximum(temp - 18.0, 0)
    meter = load[:, :, None]
    b = baseline(meter, [29], method="regression", day_type=np.full(30, DayType.WEEKDAY),
                 event_start_hour=14, event_end_hour=18, temperature_c=temp,
                 balance_point_c=18.0)
    assert b[0] == pytest.approx(meter[29], abs=1e-9)
    # the straight line misses the kink
    linear = baseline(meter, [29], method="regression", day_type=np.full(30, DayType.WEEKDAY),
                      event_start_hour=14, event_end_hour=18, temperature_c=temp)
    assert not np.allclose(linear[0], meter[29], atol=1e-3)


def test_regression_needs_one_day_more_than_coefficients():
    temp = _weather(3)
    with pytest.raises(InputError, match=r"needs 3 eligible weekday days .* found 2"):
        baseline(np.ones((3, HOURLY, 1)), [2], method="regression",
                 day_type=np.full(3, DayType.WEEKDAY), event_start_hour=14, event_end_hour=18,
                 temperature_c=temp)


# --- accuracy -------------------------------------------------------------------------------

def test_errors_on_a_constant_series_are_zero():
    meter = np.full((25, HOURLY, 3), 1.7)
    for method in ("caiso_10in10", "pjm_high4of5"):
        errors = baseline_errors(meter, [20], method=method, day_type=day_types(0, 25),
                                 event_start_hour=16, event_end_hour=20)
        assert 20 not in errors.days
        assert errors.bias_pct == pytest.approx(np.zeros(3), abs=1e-12)
        assert errors.cv_rmse_pct == pytest.approx(np.zeros(3), abs=1e-12)
        assert errors.overall_bias_pct == pytest.approx(0.0, abs=1e-12)


def test_errors_on_a_trend_worked_by_hand():
    # 20 weekdays; household 0 draws 1 + 0.1 d every hour of day d, household 1 draws 2.
    # Unadjusted 10-in-10 on day d >= 10: mean of days d-10..d-1 = 1 + 0.1 (d - 5.5),
    # so the error is -0.55 on every tested day (10..19) and hour.
    days = np.arange(20.0)
    meter = np.empty((20, HOURLY, 2))
    meter[:, :, 0] = (1 + 0.1 * days)[:, None]
    meter[:, :, 1] = 2.0
    errors = baseline_errors(meter, [], method="caiso_10in10",
                             day_type=np.full(20, DayType.WEEKDAY), event_start_hour=16,
                             event_end_hour=20, adjust=False)
    assert errors.days.tolist() == list(range(10, 20))
    # mean metered of household 0 on days 10..19: 1 + 0.1 * 14.5 = 2.45
    assert errors.bias_pct == pytest.approx([-100 * 0.55 / 2.45, 0.0])
    assert errors.cv_rmse_pct == pytest.approx([100 * 0.55 / 2.45, 0.0])
    # pooled: mean error -0.275, mean metered 2.225, RMSE sqrt(0.55**2 / 2)
    assert errors.overall_bias_pct == pytest.approx(-100 * 0.275 / 2.225)
    assert errors.overall_cv_rmse_pct == pytest.approx(100 * np.sqrt(0.3025 / 2) / 2.225)


def test_errors_need_a_testable_day():
    with pytest.raises(InputError, match="no day without an event has enough history"):
        baseline_errors(np.ones((5, HOURLY, 1)), [], method="caiso_10in10",
                        day_type=day_types(0, 5), event_start_hour=16, event_end_hour=20)


# --- settlement -----------------------------------------------------------------------------

def _settlement_case():
    """Two event days, two households, baseline 2 kWh every hour.

    Day 0: event 17-19. Household 0 draws 1.0, 2.5 (reductions 1.0, -0.5), then
    3.0, 2.0 in the two rebound hours; household 1 draws 2.5, 2.5, then 2.0, 2.2.
    Day 1: events 8-9 and 22-24. Household 0 draws 0.0 at 8, 2.5 and 2.0 after,
    1.5 at 22 and 23; household 1 draws 1.0 at 8, 3.0 and 0.0 at 22 and 23.
    Price 0.3 on day 0; on day 1 0.5 at 8 and 1.0 at 22-24.
    """
    meter = np.full((2, HOURLY, 2), 2.0)
    meter[0, 17:21, 0] = [1.0, 2.5, 3.0, 2.0]
    meter[0, 17:21, 1] = [2.5, 2.5, 2.0, 2.2]
    meter[1, 8:11, 0] = [0.0, 2.5, 2.0]
    meter[1, 8, 1] = 1.0
    meter[1, 22:24] = [[1.5, 3.0], [1.5, 0.0]]
    event = np.zeros((2, HOURLY), dtype=bool)
    event[0, 17:19] = True
    event[1, 8] = True
    event[1, 22:24] = True
    price = np.full((2, HOURLY), 0.3)
    price[1, 8] = 0.5
    price[1, 22:] = 1.0
    return meter, np.full_like(meter, 2.0), event, price


def test_negawatts_floored_per_interval_worked_by_hand():
    meter, base, event, price = _settlement_case()
    settled = negawatts(meter, base, event, price, rebound_hours=2)
    # household 0: 1.0 (day 0) + 2.0 + 1.0 (day 1) = 4.0 kWh; 0.3 + 1.0 + 1.0 = 2.3
    # household 1: 0 + 1.0 + 2.0 = 3.0 kWh; 0.5 + 2.0 = 2.5
    assert settled.reduction_kwh == pytest.approx([4.0, 3.0])
    assert settled.payment == pytest.approx([2.3, 2.5])
    assert settled.event_day.tolist() == [0, 1, 1]
    assert settled.event_first.tolist() == [17, 8, 22]
    assert settled.event_reduction_kwh == pytest.approx(
        np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 2.0]]))
    # rebound: household 0 1.0 (19:00) + 0.5 (09:00) = 1.5; household 1 0.2 (20:00);
    # nothing after the event that ends at midnight
    assert settled.rebound_kwh == pytest.approx([1.5, 0.2])
    assert settled.total_reduction_kwh == pytest.approx(7.0)
    assert settled.total_payment == pytest.approx(4.8)
    assert settled.total_rebound_kwh == pytest.approx(1.7)


def test_negawatts_floored_per_event_worked_by_hand():
    meter, base, event, price = _settlement_case()
    settled = negawatts(meter, base, event, price, rebound_hours=2, floor="event")
    # household 0: day 0's event nets 0.5 > 0, so both hours count: 1.0*0.3 - 0.5*0.3
    # = 0.15; then 2.0 (1.0) and 1.0 (1.0): 3.5 kWh, 2.15
    # household 1: day 0 nets -1.0: nothing; 1.0 (0.5); 22-24 nets 1.0: -1*1 + 2*1 = 1.0
    assert settled.reduction_kwh == pytest.approx([3.5, 2.0])
    assert settled.payment == pytest.approx([2.15, 1.5])
    assert settled.event_reduction_kwh == pytest.approx(
        np.array([[0.5, 0.0], [2.0, 1.0], [1.0, 1.0]]))
    assert settled.rebound_kwh == pytest.approx([1.5, 0.2])


def test_baseline_to_settlement_end_to_end():
    types = day_types(first_weekday=0, n_days=15)
    profile = 1.0 + 0.5 * np.sin(np.arange(HOURLY) / 24 * 2 * np.pi)
    meter = np.tile(profile[None, :, None], (15, 1, 4)) * np.array([1.0, 2.0, 0.5, 3.0])
    # day 14 (a Monday): every household cuts 30 % in 17:00-20:00
    window = event_windows(17, 20, HOURLY)
    meter[14, window[0]] *= 0.7
    b = baseline(meter, [14], method="caiso_10in10", day_type=types, event_start_hour=17,
                 event_end_hour=20)
    settled = negawatts(meter[[14]], b, window, 0.25, rebound_hours=1)
    expected = 0.3 * profile[17:20].sum() * np.array([1.0, 2.0, 0.5, 3.0])
    assert settled.reduction_kwh == pytest.approx(expected)
    assert settled.payment == pytest.approx(0.25 * expected)
    assert settled.rebound_kwh == pytest.approx(np.zeros(4), abs=1e-12)


# --- properties -----------------------------------------------------------------------------

METHODS = ["caiso_10in10", "pjm_high4of5", "regression"]
N_DAYS, N_HOUSEHOLDS = 30, 3
loads = hnp.arrays(np.float64, (N_DAYS, HOURLY, N_HOUSEHOLDS),
                   elements=st.floats(0.05, 10.0, allow_nan=False))


def _kwargs(method: str, temp: np.ndarray) -> dict:
    return {"method": method, "day_type": np.full(N_DAYS, DayType.WEEKDAY),
            "event_start_hour": 14, "event_end_hour": 18,
            "temperature_c": temp if method == "regression" else None}


@settings(max_examples=25, deadline=None)
@given(profile=hnp.arrays(np.float64, (HOURLY, N_HOUSEHOLDS),
                          elements=st.floats(0.05, 10.0, allow_nan=False)),
       method=st.sampled_from(["caiso_10in10", "pjm_high4of5"]))
def test_a_day_like_its_baseline_days_earns_nothing(profile, method):
    meter = np.broadcast_to(profile, (12, HOURLY, N_HOUSEHOLDS)).copy()
    types = np.full(12, DayType.WEEKDAY)
    b = baseline(meter, [11], method=method, day_type=types, event_start_hour=14,
                 event_end_hour=18)
    settled = negawatts(meter[[11]], b, event_windows(14, 18, HOURLY), 0.4)
    assert settled.reduction_kwh == pytest.approx(np.zeros(N_HOUSEHOLDS), abs=1e-9)
    assert settled.payment == pytest.approx(np.zeros(N_HOUSEHOLDS), abs=1e-9)
    assert settled.rebound_kwh == pytest.approx(np.zeros(N_HOUSEHOLDS), abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(meter=loads, factor=st.floats(0.01, 100.0), method=st.sampled_from(METHODS))
def test_scaling_the_meter_scales_the_baseline(meter, factor, method):
    kwargs = _kwargs(method, _weather(N_DAYS))
    b = baseline(meter, [25, 29], **kwargs)
    scaled = baseline(meter * factor, [25, 29], **kwargs)
    assert scaled == pytest.approx(b * factor, rel=1e-7, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(meter=loads, other_events=st.sets(st.integers(0, 24), max_size=5),
       noise=st.floats(-5.0, 5.0), method=st.sampled_from(METHODS))
def test_the_baseline_reads_no_event_day_and_no_later_day(meter, other_events, noise, method):
    kwargs = _kwargs(method, _weather(N_DAYS))
    events = sorted({*other_events, 25})
    b = baseline(meter, events, days=[25], **kwargs)
    changed = meter.copy()
    changed[26:] += noise  # every later day
    changed[sorted(other_events)] += noise  # the other event days
    changed[25, 14:] += noise  # the event day from the event on
    assert baseline(changed, events, days=[25], **kwargs) == pytest.approx(b, abs=1e-9)


# --- validation -----------------------------------------------------------------------------

GOOD = {"method": "caiso_10in10", "day_type": ALL_WEEKDAYS_12, "event_start_hour": 14,
        "event_end_hour": 18}


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"meter_kwh": np.ones((12, HOURLY))}, "meter_kwh", "must be .days, intervals per day"),
    ({"meter_kwh": np.ones((12, 7, 1))}, "meter_kwh", "do not divide a day"),
    ({"event_days": [12]}, "event_days", "outside the series"),
    ({"event_days": [1.5]}, "event_days", "integer day indices"),
    ({"method": "nyiso"}, "method", "must be one of caiso_10in10, pjm_high4of5, regression"),
    ({"day_type": np.zeros(11, dtype=int)}, "day_type", "one DayType per day"),
    ({"day_type": np.full(12, 7)}, "day_type", "is not a DayType"),
    ({"event_start_hour": 14.5}, "event_start_hour", "on the 1-hour interval grid"),
    ({"event_end_hour": 13}, "event_end_hour", "event_start_hour < event_end_hour"),
    ({"event_start_hour": 3}, "event_start_hour", "must start at or after 4 h"),
    ({"temperature_c": np.ones((12, HOURLY))}, "temperature_c", "only by method='regression'"),
    ({"method": "regression"}, "temperature_c", "needs the outdoor temperature"),
    ({"cap": 1.5}, "cap", r"in \[0, 1\)"),
])
def test_bad_input_names_its_field(change, field, problem):
    kwargs = {"meter_kwh": np.ones((12, HOURLY, 1)), "event_days": [11], **GOOD, **change}
    with pytest.raises(InputError, match=problem) as info:
        baseline(**kwargs)
    assert info.value.field == field


def test_non_finite_meter_is_located():
    meter = np.ones((12, HOURLY, 2))
    meter[4, 7, 1] = np.nan
    with pytest.raises(InputError, match="day 4, interval 7, household 1"):
        baseline(meter, [11], **GOOD)


def test_non_finite_temperature_is_refused():
    temp = _weather(12)
    temp[2, 3] = np.inf
    with pytest.raises(InputError, match="day 2, interval 3"):
        baseline(np.ones((12, HOURLY, 1)), [11], **{**GOOD, "method": "regression"},
                 temperature_c=temp)


@pytest.mark.parametrize(("change", "field"), [
    ({"baseline_kwh": np.ones((1, HOURLY, 3))}, "baseline_kwh"),
    ({"meter_kwh": np.full((1, HOURLY, 2), np.nan)}, "meter_kwh"),
    ({"event_mask": np.ones((1, HOURLY))}, "event_mask"),
    ({"price_per_kwh": -0.1}, "price_per_kwh"),
    ({"price_per_kwh": np.ones(3)}, "price_per_kwh"),
    ({"rebound_hours": 0.5}, "rebound_hours"),
    ({"floor": "day"}, "floor"),
])
def test_bad_settlement_input_names_its_field(change, field):
    kwargs = {"meter_kwh": np.ones((1, HOURLY, 2)), "baseline_kwh": np.ones((1, HOURLY, 2)),
              "event_mask": event_windows(14, 18, HOURLY), "price_per_kwh": 0.3, **change}
    with pytest.raises(InputError) as info:
        negawatts(**kwargs)
    assert info.value.field == field


def test_inputs_are_not_mutated_and_results_are_read_only():
    meter = _twelve_days()
    before = meter.copy()
    baseline(meter, [3, 11], days=[11], **GOOD)
    assert np.array_equal(meter, before)
    settled = negawatts(meter[[11]], meter[[10]], event_windows(14, 18, HOURLY), 0.3)
    errors = baseline_errors(np.ones((12, HOURLY, 1)), [], **GOOD)
    for arr in (settled.reduction_kwh, settled.event_reduction_kwh, errors.bias_pct):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1.0
