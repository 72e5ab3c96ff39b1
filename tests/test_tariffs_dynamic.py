"""Dynamic tariffs: synthetic and CSV day-ahead prices, real-time and critical-peak
pricing, bills under several tariffs, and the scenario's [tariff] section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transactive.errors import InputError
from transactive.programs.critical_peak import (
    CriticalPeakTariff,
    PriceTrigger,
    TemperatureTrigger,
)
from transactive.programs.tariffs import RealTimeTariff, RetailTariff, Tariff, bills_under
from transactive.programs.wholesale import (
    DayAheadModel,
    SyntheticDayAhead,
    child_seed,
    day_ahead_prices_per_kwh,
    read_day_ahead_csv,
    write_day_ahead_csv,
)
from transactive.sim.scenario import Scenario
from transactive.timeline import Timeline

BERLIN = "Europe/Berlin"


def _hours(start: str, hours: int, tz: str = BERLIN) -> Timeline:
    return Timeline(pd.Timestamp(start, tz=tz), periods=hours, step_minutes=60)


def _csv(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _table(tmp_path: Path, tl: Timeline, price_per_kwh: np.ndarray):
    path = tmp_path / "prices.csv"
    write_day_ahead_csv(path, tl, price_per_kwh)
    return read_day_ahead_csv(path)


# ---------------------------------------------------------------- synthetic prices
@pytest.fixture(scope="module")
def year_2024():
    """Twenty simulated years 2024 (hourly), EUR/MWh, with the calendar."""
    tl = _hours("2024-01-01", 366 * 24)
    prices = np.stack([day_ahead_prices_per_kwh(tl, np.random.default_rng(s)) * 1000
                       for s in range(20)])
    return tl, prices


def test_synthetic_year_matches_the_2024_calibration(year_2024):
    tl, p = year_2024
    idx = tl.index
    hour, weekday = np.asarray(idx.hour), np.asarray(idx.day_of_week)
    peak = (weekday < 5) & (hour >= 8) & (hour < 20)
    # DE-LU 2024: base 79.6, peak 88.2, off-peak 74.8 EUR/MWh (FfE).
    assert p.mean() == pytest.approx(79.6, abs=3.0)
    assert p[:, peak].mean() / p.mean() == pytest.approx(88.2 / 79.6, abs=0.05)
    assert p[:, ~peak].mean() == pytest.approx(74.8, abs=4.0)
    # 457 negative hours (5.2 %), mostly around midday.
    negative = (p < 0).sum(axis=1)
    assert 250 < negative.mean() < 650
    assert ((hour >= 9) & (hour < 17))[np.nonzero(p < 0)[1]].mean() > 0.8
    # Rare spikes above 300 EUR/MWh (35 hours in Q4 2024), peaks of several hundred.
    assert 10 < (p > 300).sum(axis=1).mean() < 120
    assert np.median(p.max(axis=1)) > 500
    assert p.min() >= -500
    assert p.max() <= 4000


def test_synthetic_daily_weekly_and_seasonal_shape(year_2024):
    tl, p = year_2024
    idx = tl.index
    hour, weekday, month = (np.asarray(a) for a in (idx.hour, idx.day_of_week, idx.month))
    evening, night = (hour >= 18) & (hour < 21), (hour >= 2) & (hour < 5)
    assert p[:, evening].mean() > 1.3 * p[:, night].mean()  # the evening peak
    morning, early = (hour >= 7) & (hour < 10), (hour >= 3) & (hour < 6)
    winter = np.isin(month, (1, 2, 12))
    assert p[:, winter & morning].mean() > p[:, winter & early].mean()  # a morning peak
    summer = np.isin(month, (6, 7, 8))
    midday = (hour >= 11) & (hour < 15)
    assert p[:, summer & midday].mean() < 0.5 * p[:, summer & night].mean()  # solar dip
    assert p[:, summer & midday].mean() < p[:, winter & midday].mean()
    weekdays = p[:, weekday < 5].mean()
    assert p[:, weekday == 5].mean() < weekdays  # weekends lower
    assert p[:, weekday == 6].mean() < p[:, weekday == 5].mean()
    quarter = np.asarray(idx.quarter)
    assert p[:, quarter == 4].mean() > p[:, np.isin(quarter, (2, 3))].mean()  # dearer winters


def test_synthetic_prices_are_seeded_and_follow_the_mean():
    tl = Timeline(pd.Timestamp("2026-06-01", tz=BERLIN), periods=96 * 7)
    a = day_ahead_prices_per_kwh(tl, np.random.default_rng(1))
    assert a.shape == (tl.periods,)
    assert a.dtype == np.float64
    assert np.array_equal(a, day_ahead_prices_per_kwh(tl, np.random.default_rng(1)))
    assert not np.allclose(a, day_ahead_prices_per_kwh(tl, np.random.default_rng(2)))
    source = SyntheticDayAhead(seed=5)
    assert np.array_equal(source.price_per_kwh(tl), source.price_per_kwh(tl))
    year = _hours("2025-01-01", 365 * 24)
    dear = DayAheadModel(mean_price_per_kwh=0.15)
    means = [day_ahead_prices_per_kwh(year, np.random.default_rng(s), dear).mean()
             for s in range(10)]
    assert np.mean(means) == pytest.approx(0.15, abs=0.006)


def test_child_seed_is_spawn_without_counting():
    parent = np.random.SeedSequence(42)
    child = child_seed(parent, 3)
    assert child.spawn_key == (3,)
    assert np.array_equal(child.generate_state(4), parent.spawn(4)[3].generate_state(4))
    assert child_seed(parent, 3).generate_state(4).tolist() == child.generate_state(4).tolist()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mean_price_per_kwh": 0.0}, "mean_price_per_kwh"),
        ({"mean_price_per_kwh": float("nan")}, "mean_price_per_kwh"),
        ({"seasonal_amplitude": 1.0}, "seasonal_amplitude"),
        ({"solar_dip_per_kwh": -0.1}, "solar_dip_per_kwh"),
        ({"noise_sd_per_kwh": "loud"}, "noise_sd_per_kwh"),
    ],
)
def test_bad_model_parameters_are_refused(kwargs, field):
    with pytest.raises(InputError) as info:
        DayAheadModel(**kwargs)
    assert info.value.field == field


def test_synthetic_refusals():
    tl = _hours("2026-06-01", 24)
    with pytest.raises(InputError, match="what the spikes alone add"):
        day_ahead_prices_per_kwh(tl, np.random.default_rng(0),
                                 DayAheadModel(mean_price_per_kwh=0.0005, solar_dip_per_kwh=0))
    cheap = day_ahead_prices_per_kwh(tl, np.random.default_rng(0),
                                     DayAheadModel(mean_price_per_kwh=0.0005, spikes=False))
    assert cheap.shape == (24,)
    with pytest.raises(InputError, match="Generator"):
        day_ahead_prices_per_kwh(tl, 3)  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        SyntheticDayAhead(seed=-1)
    assert info.value.field == "seed"


# ---------------------------------------------------------------- CSV prices
def test_csv_round_trip_on_the_same_and_other_grids(tmp_path):
    tl = Timeline(pd.Timestamp("2026-03-28", tz=BERLIN), periods=96 * 3)  # over the DST switch
    prices = day_ahead_prices_per_kwh(tl, np.random.default_rng(9))
    table = _table(tmp_path, tl, prices)
    assert np.array_equal(table.price_per_kwh(tl), prices)
    # Onto hours: the mean of the four quarter hours; onto a shorter window: a slice.
    hourly = Timeline(tl.start, periods=72, step_minutes=60)
    assert np.allclose(table.price_per_kwh(hourly), prices.reshape(72, 4).mean(axis=1))
    inner = Timeline(tl.index[10], periods=20)
    assert np.allclose(table.price_per_kwh(inner), prices[10:30])


def test_csv_in_mwh_with_offsets_and_finer_timeline(tmp_path):
    path = _csv(tmp_path, "start,price_per_mwh,area\n"
                          "2024-01-01T00:00:00+01:00,80,DE-LU\n"
                          "2023-12-31T23:00:00Z,-20,DE-LU\n"  # the same instant as 00:00+01
                          .replace("2023-12-31T23:00:00Z", "2024-01-01T00:00:00Z"))
    table = read_day_ahead_csv(path)
    tl = Timeline(pd.Timestamp("2024-01-01", tz=BERLIN), periods=8)  # 15 minutes
    assert table.price_per_kwh(tl).round(6).tolist() == [0.08] * 4 + [-0.02] * 4


@pytest.mark.parametrize(
    ("text", "field", "row", "problem"),
    [
        ("time,price_per_kwh\n2024-01-01T00:00Z,0.1\n", "start", None, "column is missing"),
        ("start,price\n2024-01-01T00:00Z,0.1\n", "price_per_kwh", None, "column is missing"),
        ("start,price_per_kwh,price_per_mwh\n2024-01-01T00:00Z,0.1,100\n",
         "price_per_kwh", None, "not both"),
        ("start,price_per_kwh\n", "start", None, "no rows"),
        ("start,price_per_kwh\n2024-01-01T00:00Z,0.1\n", "start", None, "at least two rows"),
        ("start,price_per_kwh\n2024-01-01T00:00Z,0.1\n2024-01-01T01:00,0.1\n",
         "start", 1, "UTC offset"),
        ("start,price_per_kwh\n2024-01-01T00:00Z,0.1\nyesterday+01:00,0.1\n",
         "start", 1, "ISO 8601"),
        ("start,price_per_kwh\n2024-01-01T01:00Z,0.1\n2024-01-01T00:00Z,0.1\n",
         "start", 1, "sorted"),
        ("start,price_per_kwh\n2024-01-01T00:00Z,0.1\n2024-01-01T01:00+01:00,0.1\n",
         "start", 1, "sorted"),  # the same instant twice
        ("start,price_per_kwh\n2024-01-01T00:00Z,0.1\n2024-01-03T00:00Z,0.1\n",
         "start", 0, "a gap"),
        ("start,price_per_mwh\n2024-01-01T00:00Z,80\n2024-01-01T01:00Z,n/a\n",
         "price_per_mwh", 1, "finite number"),
        ("start,price_per_kwh\n2024-01-01T00:00Z,inf\n2024-01-01T01:00Z,0.1\n",
         "price_per_kwh", 0, "finite number"),
    ],
)
def test_csv_errors_name_the_column_and_row(tmp_path, text, field, row, problem):
    with pytest.raises(InputError) as info:
        read_day_ahead_csv(_csv(tmp_path, text))
    assert info.value.field == field
    assert info.value.row == row
    assert problem in info.value.problem


def test_csv_file_errors_and_short_data(tmp_path):
    with pytest.raises(InputError, match="no such file") as info:
        read_day_ahead_csv(tmp_path / "none.csv")
    assert info.value.field == "path"
    with pytest.raises(InputError, match="not a readable CSV"):
        read_day_ahead_csv(_csv(tmp_path, ""))
    table = read_day_ahead_csv(_csv(tmp_path, "start,price_per_kwh\n2024-01-01T00:00Z,0.1\n"
                                              "2024-01-01T01:00Z,0.2\n"))  # to 02:00 UTC
    late = Timeline(pd.Timestamp("2024-01-01T01:00Z"), periods=8)  # to 03:00 UTC
    with pytest.raises(InputError, match="the prices cover") as info:
        table.price_per_kwh(late)
    assert (info.value.field, info.value.row) == ("start", 1)
    early = Timeline(pd.Timestamp("2023-12-31T23:45Z"), periods=4)
    with pytest.raises(InputError, match="the timeline needs") as info:
        table.price_per_kwh(early)
    assert (info.value.field, info.value.row) == ("start", 0)


# ---------------------------------------------------------------- real-time pricing
def test_rtp_passes_the_wholesale_price_on(tmp_path):
    tl = _hours("2026-05-03", 4)
    wholesale = np.array([0.10, -0.05, -0.40, 0.02])
    table = _table(tmp_path, tl, wholesale)
    rtp = RealTimeTariff(table, adder_per_kwh=0.20)
    assert rtp.kind == "rtp"
    assert isinstance(rtp, RetailTariff)
    assert np.allclose(rtp.retail_price_per_kwh(tl), [0.30, 0.15, -0.20, 0.22])
    # Floored at 0, but never above retail (-0.20 in the third hour).
    assert np.allclose(rtp.feed_in_price_per_kwh_series(tl), [0.10, 0.0, -0.20, 0.02])
    bare = RealTimeTariff(table, adder_per_kwh=0.20, feed_in_floor_per_kwh=None)
    assert np.allclose(bare.feed_in_price_per_kwh_series(tl), wholesale)
    synthetic = RealTimeTariff(SyntheticDayAhead(3), adder_per_kwh=0.2)
    week = Timeline(pd.Timestamp("2026-06-01", tz=BERLIN), periods=96 * 7)
    retail, feed_in = (synthetic.retail_price_per_kwh(week),
                       synthetic.feed_in_price_per_kwh_series(week))
    assert (feed_in <= retail).all()
    assert np.allclose(retail - 0.2, SyntheticDayAhead(3).price_per_kwh(week))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"adder_per_kwh": -0.01}, "adder_per_kwh"),
        ({"adder_per_kwh": float("inf")}, "adder_per_kwh"),
        ({"adder_per_kwh": 0.2, "feed_in_floor_per_kwh": float("nan")}, "feed_in_floor_per_kwh"),
        ({"adder_per_kwh": 0.2, "wholesale": 0.08}, "wholesale"),
    ],
)
def test_rtp_refusals(kwargs, field):
    kwargs = {"wholesale": SyntheticDayAhead(0), **kwargs}
    with pytest.raises(InputError) as info:
        RealTimeTariff(**kwargs)
    assert info.value.field == field


# ---------------------------------------------------------------- critical-peak pricing
def _evening_prices(tl: Timeline, dear_days: list[int], dear: float = 0.5) -> np.ndarray:
    """0.05 everywhere, ``dear`` from 17 to 20 h on the given days (from the start)."""
    day = np.asarray((tl.index.normalize() - tl.index[0].normalize()).days)
    hour = tl.hour_of_day
    dear_hours = np.isin(day, dear_days) & (hour >= 17) & (hour < 20)
    return np.where(dear_hours, dear, 0.05)


def test_cpp_event_selection_and_prices(tmp_path):
    tl = Timeline(pd.Timestamp("2026-01-05", tz=BERLIN), periods=96 * 14)  # Monday, 2 weeks
    # Dear evenings: Tue, Thu, Sat (a weekend: no event), then Mon and Wed of week two.
    wholesale = _table(tmp_path, tl, _evening_prices(tl, [1, 3, 5, 7, 9]))
    base = Tariff("tou", 0.25, feed_in_price_per_kwh=0.07, peak_price_per_kwh=0.35)
    cpp = CriticalPeakTariff(base, 0.90, PriceTrigger(wholesale, 0.30), max_events_per_year=3)
    assert cpp.kind == "cpp"
    assert isinstance(cpp, RetailTariff)
    ev = cpp.events(tl)
    # The cap of three per year keeps the first three weekdays: Tue, Thu, next Mon.
    assert ev.dates.astype(str).tolist() == ["2026-01-06", "2026-01-08", "2026-01-12"]
    assert all(pd.Timestamp(d).day_of_week < 5 for d in ev.dates)
    hour = tl.hour_of_day
    local_day = np.asarray(tl.index.normalize().strftime("%Y-%m-%d"))
    on_event_day = np.isin(local_day, ev.dates.astype(str))
    assert np.array_equal(ev.event_day, on_event_day)
    assert np.array_equal(ev.active, on_event_day & (hour >= 17) & (hour < 20))
    # Announced from 14 h the day before, to midnight.
    day_before = np.isin(local_day, (ev.dates - np.timedelta64(1, "D")).astype(str))
    assert np.array_equal(ev.announced, day_before & (hour >= 14))
    retail = cpp.retail_price_per_kwh(tl)
    assert (retail[ev.active] == 0.90).all()
    assert np.array_equal(retail[~ev.active], base.retail_price_per_kwh(tl)[~ev.active])
    assert np.array_equal(cpp.feed_in_price_per_kwh_series(tl),
                          base.feed_in_price_per_kwh_series(tl))


def test_cpp_cap_restarts_each_calendar_year(tmp_path):
    tl = Timeline(pd.Timestamp("2025-12-29", tz=BERLIN), periods=96 * 7)  # Mon to Sun
    wholesale = _table(tmp_path, tl, np.full(tl.periods, 0.5))  # every evening dear
    base = Tariff("flat", 0.28, feed_in_price_per_kwh=0.08)
    cpp = CriticalPeakTariff(base, 0.8, PriceTrigger(wholesale, 0.3), max_events_per_year=1)
    assert cpp.events(tl).dates.astype(str).tolist() == ["2025-12-29", "2026-01-01"]
    none = CriticalPeakTariff(base, 0.8, PriceTrigger(wholesale, 0.3), max_events_per_year=0)
    assert not none.events(tl).event_day.any()


def test_cpp_needs_the_whole_event_window_and_the_next_day_for_notice(tmp_path):
    tl = Timeline(pd.Timestamp("2026-01-05 18:00", tz=BERLIN), periods=4 * (30 + 6))  # Mon 18h
    wholesale = _table(tmp_path, tl, np.full(tl.periods, 0.5))
    base = Tariff("flat", 0.28, feed_in_price_per_kwh=0.08)
    ev = CriticalPeakTariff(base, 0.8, PriceTrigger(wholesale, 0.3)).events(tl)
    # Monday's window is cut (18-20 h only): no event; Tuesday is one; Wednesday's
    # evening lies outside the run (it ends at 06:00), so Tuesday announces nothing.
    assert ev.dates.astype(str).tolist() == ["2026-01-06"]
    assert ev.announced[:24].all()  # Monday 18-24 h announces Tuesday
    assert not ev.announced[24:].any()


def test_cpp_temperature_triggers():
    tl = Timeline(pd.Timestamp("2026-07-06", tz=BERLIN), periods=96 * 5)  # Mon to Fri
    day = np.arange(tl.periods) // 96
    outdoor = np.where(day == 2, 32.0, 22.0)
    base = Tariff("flat", 0.28, feed_in_price_per_kwh=0.08)
    hot = CriticalPeakTariff(base, 0.8, TemperatureTrigger(28.0, temperature_c=outdoor))
    assert hot.events(tl).dates.astype(str).tolist() == ["2026-07-08"]
    cold = CriticalPeakTariff(base, 0.8, TemperatureTrigger(21.0, hot=False,
                                                            temperature_c=outdoor - 1.5))
    assert len(cold.events(tl).dates) == 4
    seeded = TemperatureTrigger(25.0, seed=3)
    a, b = (CriticalPeakTariff(base, 0.8, seeded).events(tl) for _ in range(2))
    assert np.array_equal(a.active, b.active)
    with pytest.raises(InputError, match="has 480 values") as info:
        hot.events(Timeline(tl.start, periods=96))
    assert info.value.field == "temperature_c"


def test_cpp_on_synthetic_prices_over_a_year():
    tl = _hours("2025-01-01", 365 * 24)
    base = Tariff("flat", 0.28, feed_in_price_per_kwh=0.08)
    for seed in range(5):
        cpp = CriticalPeakTariff(base, 0.8, PriceTrigger(SyntheticDayAhead(seed), 0.12),
                                 max_events_per_year=15)
        ev = cpp.events(tl)
        assert 0 < len(ev.dates) <= 15
        assert (pd.DatetimeIndex(ev.dates).day_of_week < 5).all()
        assert ev.active.sum() == 3 * len(ev.dates)  # 17, 18 and 19 h


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"critical_price_per_kwh": 0.38}, "critical_price_per_kwh"),  # not above the peak
        ({"event_start_hour": 20.0, "event_end_hour": 17.0}, "event_end_hour"),
        ({"event_end_hour": 25.0}, "event_end_hour"),
        ({"notice_hour": 24.0}, "notice_hour"),
        ({"max_events_per_year": -1}, "max_events_per_year"),
        ({"max_events_per_year": 2.5}, "max_events_per_year"),
        ({"max_events_per_year": True}, "max_events_per_year"),
        ({"trigger": 0.3}, "trigger"),
        ({"base": "tou"}, "base"),
    ],
)
def test_cpp_refusals(kwargs, field):
    args = {"base": Tariff("tou", 0.28, feed_in_price_per_kwh=0.08, peak_price_per_kwh=0.38),
            "critical_price_per_kwh": 0.8, "trigger": PriceTrigger(SyntheticDayAhead(0), 0.2),
            **kwargs}
    with pytest.raises(InputError) as info:
        CriticalPeakTariff(**args)
    assert info.value.field == field


def test_temperature_trigger_refusals():
    with pytest.raises(InputError, match="either a seed or a temperature series"):
        TemperatureTrigger(28.0)
    with pytest.raises(InputError, match="either a seed or a temperature series"):
        TemperatureTrigger(28.0, seed=1, temperature_c=np.zeros(4))
    with pytest.raises(InputError, match="finite"):
        TemperatureTrigger(28.0, temperature_c=[20.0, np.nan])
    with pytest.raises(InputError) as info:
        TemperatureTrigger(float("nan"), seed=1)
    assert info.value.field == "threshold_c"
    series = np.zeros(3)
    TemperatureTrigger(28.0, temperature_c=series)
    assert series.flags.writeable  # the caller's array is left alone


# ---------------------------------------------------------------- bills
def test_bills_under_every_kind_by_hand(tmp_path):
    # Tuesday 2026-01-06, 16:00-20:00 local, hourly; two households.
    tl = _hours("2026-01-06 16:00", 4)
    wholesale = _table(tmp_path, tl, np.array([0.10, 0.20, -0.05, 0.30]))
    flat = Tariff("flat", 0.30, feed_in_price_per_kwh=0.08)
    tou = Tariff("tou", 0.20, feed_in_price_per_kwh=0.05, peak_price_per_kwh=0.50,
                 peak_start_hour=17.0, peak_end_hour=19.0)
    rtp = RealTimeTariff(wholesale, adder_per_kwh=0.15)
    cpp = CriticalPeakTariff(flat, 1.00, PriceTrigger(wholesale, 0.0),
                             event_start_hour=18.0, event_end_hour=20.0)
    imports = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    exports = np.array([[0.0, 2.0], [0.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
    bills = bills_under({"flat": flat, "tou": tou, "rtp": rtp, "cpp": cpp}, imports, exports, tl)
    assert bills.columns.tolist() == ["flat", "tou", "rtp", "cpp"]
    assert bills.index.name == "household"
    expected = {
        # household 0 imports 1, 2, 0, 1 kWh; household 1 exports 2 and 4, imports 1 at 19 h.
        "flat": [0.30 * 4, 0.30 * 1 - 0.08 * 6],
        "tou": [0.20 + 0.50 * 2 + 0.20, 0.20 - 0.05 * 6],
        "rtp": [0.25 + 0.35 * 2 + 0.45, 0.45 - 0.10 * 2 - 0.0 * 4],  # feed-in floored at 0
        # the day's mean price over 18-20 h is 0.125 >= 0: an event from 18 to 20 h
        "cpp": [0.30 * 3 + 1.00, 1.00 - 0.08 * 6],
    }
    for name, values in expected.items():
        assert bills[name].to_numpy() == pytest.approx(values), name


def test_bills_under_refusals():
    tl = _hours("2026-01-06", 2)
    flat = Tariff("flat", 0.30, feed_in_price_per_kwh=0.08)
    ok = np.zeros((2, 3))
    with pytest.raises(InputError, match="non-empty"):
        bills_under({}, ok, ok, tl)
    with pytest.raises(InputError, match="must name a tariff"):
        bills_under({"flat": 0.30}, ok, ok, tl)  # type: ignore[dict-item]
    with pytest.raises(InputError, match="shape") as info:
        bills_under({"flat": flat}, np.zeros((3, 3)), ok, tl)
    assert info.value.field == "import_kwh"
    with pytest.raises(InputError, match="shape of import_kwh"):
        bills_under({"flat": flat}, ok, np.zeros((2, 2)), tl)
    bad = ok.copy()
    bad[1, 2] = -1.0
    with pytest.raises(InputError, match="household 2") as info:
        bills_under({"flat": flat}, ok, bad, tl)
    assert (info.value.field, info.value.row) == ("export_kwh", 1)


# ---------------------------------------------------------------- the scenario section
def test_scenario_rtp_round_trip_and_seed():
    s = Scenario.from_dict({"tariff": {"kind": "rtp", "adder_per_kwh": 0.15,
                                       "feed_in_floor_per_kwh": None}})
    assert Scenario.from_dict(s.model_dump(mode="json")) == s
    tl = Timeline(pd.Timestamp("2026-06-01", tz=BERLIN), periods=96 * 2)
    # What the engine passes: a fourth stream beside its three (community, strategies, market).
    engine_seed = np.random.SeedSequence(s.seed, spawn_key=(3,))
    tariff = s.tariff.tariff(seed=engine_seed)
    assert isinstance(tariff, RealTimeTariff)
    again = s.tariff.tariff(seed=np.random.SeedSequence(s.seed).spawn(4)[3])
    assert np.array_equal(tariff.retail_price_per_kwh(tl), again.retail_price_per_kwh(tl))
    assert np.allclose(tariff.retail_price_per_kwh(tl) - 0.15,
                       tariff.feed_in_price_per_kwh_series(tl))  # no floor
    other = s.tariff.tariff(seed=np.random.SeedSequence(s.seed + 1, spawn_key=(3,)))
    assert not np.allclose(other.retail_price_per_kwh(tl), tariff.retail_price_per_kwh(tl))
    with pytest.raises(ValueError, match="pass the run's seed"):
        s.tariff.tariff()
    assert isinstance(Scenario().tariff.tariff(), Tariff)  # flat and tou need no seed


def test_scenario_rtp_from_csv(tmp_path):
    tl = _hours("2026-06-01", 48)
    path = tmp_path / "da.csv"
    write_day_ahead_csv(path, tl, np.linspace(-0.05, 0.2, 48))
    s = Scenario.from_dict({"tariff": {"kind": "rtp", "wholesale_csv": str(path)}})
    tariff = s.tariff.tariff()  # a file needs no seed
    assert np.allclose(tariff.retail_price_per_kwh(tl), np.linspace(-0.05, 0.2, 48) + 0.20)
    bad = _csv(tmp_path, "start,price_per_kwh\n2026-06-01T00:00Z,0.1\n2026-06-01T00:00Z,0.1\n",
               "bad.csv")
    with pytest.raises(InputError) as info:
        Scenario.from_dict({"tariff": {"kind": "rtp", "wholesale_csv": str(bad)}})
    assert info.value.field == "tariff"
    assert "wholesale_csv" in info.value.problem
    assert "row 1" in info.value.problem


def test_scenario_cpp_kinds_and_triggers():
    s = Scenario.from_dict({"tariff": {"kind": "cpp", "cpp_base": "flat",
                                       "critical_price_per_kwh": 0.9,
                                       "event_trigger": "heat", "event_heat_threshold_c": 26.0,
                                       "max_events_per_year": 4}})
    assert Scenario.from_dict(s.model_dump(mode="json")) == s
    tl = Timeline(pd.Timestamp("2026-07-06", tz=BERLIN), periods=96 * 5)
    outdoor = np.where(np.arange(tl.periods) // 96 == 1, 30.0, 20.0)
    tariff = s.tariff.tariff(outdoor_c=outdoor)
    assert isinstance(tariff, CriticalPeakTariff)
    assert tariff.base.kind == "flat"
    assert tariff.events(tl).dates.astype(str).tolist() == ["2026-07-07"]
    seeded = s.tariff.tariff(seed=7, latitude_deg=40.0)
    assert isinstance(seeded.trigger, TemperatureTrigger)
    assert seeded.trigger.latitude_deg == 40.0
    price = Scenario.from_dict({"tariff": {"kind": "cpp"}}).tariff.tariff(seed=1)
    assert isinstance(price.trigger, PriceTrigger)
    assert price.base.kind == "tou"


@pytest.mark.parametrize(
    ("tariff", "field", "problem"),
    [
        ({"kind": "dynamic"}, "tariff.kind", "'flat', 'tou', 'rtp' or 'cpp'"),
        ({"kind": "rtp", "adder_per_kwh": -0.1}, "tariff.adder_per_kwh", "greater than or equal"),
        ({"kind": "rtp", "wholesale_csv": ""}, "tariff.wholesale_csv", "at least 1 character"),
        ({"kind": "rtp", "wholesale_csv": "/no/such.csv"}, "tariff", "no such file"),
        ({"kind": "cpp", "critical_price_per_kwh": 0.3}, "tariff", "critical_price_per_kwh"),
        ({"kind": "cpp", "event_start_hour": 20.0, "event_end_hour": 18.0}, "tariff",
         "event_end_hour"),
        ({"kind": "cpp", "event_trigger": "wind"}, "tariff.event_trigger", "'price', 'heat'"),
        ({"kind": "cpp", "max_events_per_year": -1}, "tariff.max_events_per_year",
         "greater than or equal"),
        ({"kind": "cpp", "event_notice_hour": 24.0}, "tariff.event_notice_hour", "less than 24"),
        ({"kind": "cpp", "cpp_base": "rtp"}, "tariff.cpp_base", "'flat' or 'tou'"),
        ({"kind": "rtp", "adder": 0.1}, "tariff.adder", "unknown field"),
    ],
)
def test_scenario_tariff_refusals(tariff, field, problem):
    with pytest.raises(InputError) as info:
        Scenario.from_dict({"tariff": tariff})
    assert info.value.field == field
    assert problem in info.value.problem
