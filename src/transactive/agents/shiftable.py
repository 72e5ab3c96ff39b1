"""Shiftable appliances: a cycle of fixed length and power, placed in a window.

A household's washing machine or dishwasher runs one cycle on some days: it
becomes ready at ``earliest`` (an interval of that day), must have finished
by ``latest_finish``, and once started runs ``duration`` intervals at
``power_kw`` without a break. Seeded defaults (:meth:`ShiftableFleet.draw`):
a cycle on 60 % of days, 0.8-2 kW for 1-2 h (about 1-3 kWh, the range of
EU energy-label programmes), ready around 08:00 and due around 22:00.

The bid (:meth:`ShiftableFleet.segments`): a ready appliance bids to start
now, for its first interval's energy, at ``mean + std * (2 u - 1)`` of the
price forecast over the ``slack + 1`` intervals it may still start in, with
``u = 1 / (slack + 1)`` (``slack``: the intervals it can still wait): below
the mean while it has time, more as its window closes; at no slack it bids
the cap (it must start).
The start is indivisible (:class:`~transactive.agents.flexibility.Segments`).
A running appliance bids the cap for its next interval (it cannot stop).

Examples
--------
>>> import pandas as pd
>>> from transactive.timeline import Timeline
>>> tl = Timeline(pd.Timestamp("2026-06-01", tz="Europe/Berlin"), periods=96)
>>> fleet = ShiftableFleet.draw(tl, np.ones(3, bool), np.random.default_rng(0))
>>> fleet.energy_per_cycle_kwh.round(2).tolist()
[1.56, 1.97, 1.7]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from transactive.agents.flexibility import Part, Segments, window_moments
from transactive.errors import InputError
from transactive.orders import BUY
from transactive.timeline import Timeline

__all__ = ["ShiftableFleet"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(eq=False)
class ShiftableFleet:
    """Appliances of ``n`` households, one cycle per day at most: for each
    day ``d`` and household, ``earliest[d]`` and ``latest_finish[d]``
    (intervals of the run's timeline; -1: no cycle that day)."""

    power_kw: FloatArray
    duration: IntArray
    earliest: IntArray
    latest_finish: IntArray
    dt_h: float
    remaining: IntArray = field(init=False)
    """Intervals of the running cycle still to go (0: not running)."""
    next_cycle: IntArray = field(init=False)
    """Index into ``earliest`` of each household's next cycle."""
    missed: IntArray = field(init=False)
    """Cycles that could not finish within their window (should stay 0)."""
    started: list[tuple[int, IntArray]] = field(init=False)
    step_kwh: FloatArray = field(init=False)
    """Each appliance's energy in an interval of its cycle."""
    _windows: tuple[IntArray, IntArray, IntArray, IntArray] | None = field(
        init=False, repr=False)
    """The current cycles' windows, kept while ``next_cycle`` is the same
    array: that array, each one's latest finish, the interval from which it
    is ready (none: the largest int64) and the interval from which its
    window is over (or a day without a cycle: -1; none: the largest int64)."""
    _tables: IntArray = field(init=False, repr=False)
    """Those three per cycle (days, households), flattened, with a day after
    the last for households whose cycles are all done: rows of the latest
    finish (the last day's, there), the ready and the over interval (none)."""

    def __post_init__(self) -> None:
        n = self.power_kw.shape[0]
        if self.duration.shape != (n,) or (self.duration < 1).any():
            raise InputError("shiftable.duration", "must be >= 1 interval per household")
        if (self.power_kw < 0).any() or not np.isfinite(self.power_kw).all():
            raise InputError("shiftable.power_kw", "must be finite and >= 0")
        if self.earliest.shape != self.latest_finish.shape or self.earliest.shape[1:] != (n,):
            raise InputError("shiftable.earliest", "needs one window per day and household")
        has = self.earliest >= 0
        if (has & (self.latest_finish - self.earliest < self.duration)).any():
            raise InputError("shiftable.latest_finish", "a window is shorter than its cycle "
                             "(the latest finish comes before the earliest start + duration)")
        self.remaining = np.zeros(n, np.int64)
        self.next_cycle = np.zeros(n, np.int64)
        self.missed = np.zeros(n, np.int64)
        self.started = []
        self._windows = None
        self.step_kwh = self.power_kw * self.dt_h
        none = np.iinfo(np.int64).max
        early, late = self.earliest, self.latest_finish
        self._tables = np.stack([
            np.vstack([late, late[-1:] if len(late) else np.full((1, n), -1)]),
            np.vstack([np.where(early >= 0, early, none), np.full((1, n), none)]),
            np.vstack([np.where(early < 0, -1, late), np.full((1, n), none)]),
        ]).reshape(3, -1)

    @classmethod
    def draw(cls, timeline: Timeline, has_appliance: npt.NDArray[np.bool_],
             rng: np.random.Generator, *, ready_hour: float = 8.0, due_hour: float = 22.0,
             cycle_share: float = 0.6) -> ShiftableFleet:
        """Seeded appliances and windows (see the module docstring)."""
        mask = np.asarray(has_appliance, dtype=bool)
        if not 0 <= ready_hour < due_hour <= 24:
            raise InputError("shiftable.due_hour", "need 0 <= ready_hour < due_hour <= 24")
        if not 0 <= cycle_share <= 1:
            raise InputError("shiftable.cycle_share", f"must be in [0, 1], got {cycle_share!r}")
        n, ppd, dt_h = mask.size, timeline.periods_per_day, timeline.dt_h
        power = np.where(mask, rng.uniform(0.8, 2.0, n), 0.0)
        duration = np.maximum(np.round(rng.uniform(1.0, 2.0, n) / dt_h), 1).astype(np.int64)
        days = -(-timeline.periods // ppd)
        first = round(timeline.start_hour / dt_h)
        start = np.arange(days)[:, None] * ppd - first
        ready = start + np.round(rng.normal(ready_hour, 1.0, (days, n)).clip(0, due_hour - 3)
                                 / dt_h).astype(np.int64)
        due = start + np.round(rng.normal(due_hour, 1.0, (days, n)).clip(ready_hour + 3, 24)
                               / dt_h).astype(np.int64)
        due = np.maximum(due, ready + duration)
        cycle = mask & (rng.random((days, n)) < cycle_share) & (ready >= 0) & (
            due <= timeline.periods)
        return cls(power_kw=power, duration=duration, earliest=np.where(cycle, ready, -1),
                   latest_finish=np.where(cycle, due, -1), dt_h=dt_h)

    @property
    def energy_per_cycle_kwh(self) -> FloatArray:
        """Energy of one cycle of each household's appliance."""
        return self.power_kw * self.duration * self.dt_h

    def _window(self, t: int) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Each household's current cycle: its latest finish, and whether it
        is ready to start at ``t`` (skipping days without a cycle)."""
        idle = self.remaining == 0
        while True:  # move past days without a cycle or whose window is over
            cycle, late, ready_from, over_from = self._cycle_windows()
            skip = idle & (over_from <= t)
            if not skip.any():
                break
            self.missed += skip & (over_from >= 0)  # a window ended unstarted: missed
            self.next_cycle = cycle + skip
        return late, idle & (ready_from <= t)

    def _cycle_windows(self) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """:attr:`_windows` of the current ``next_cycle`` (looked up again
        only when it changed)."""
        if self._windows is None or self._windows[0] is not self.next_cycle:
            nxt = self.next_cycle
            # the cycle's row of the tables (all done: the day after the last)
            at = np.minimum(nxt, self.earliest.shape[0]) * nxt.size + np.arange(nxt.size)
            late, ready_from, over_from = self._tables[:, at]
            self._windows = (nxt, late, ready_from, over_from)
        return self._windows

    def segments(self, t: int, forecast_per_kwh: npt.ArrayLike, price_floor: float,
                 price_cap: float) -> Segments:
        """Interval ``t``'s bids from the price forecast of the intervals from
        ``t`` on: running cycles at the cap, ready ones to start."""
        return Segments.of_parts(self.parts(t, forecast_per_kwh, price_floor, price_cap))[0]

    def parts(self, t: int, forecast_per_kwh: npt.ArrayLike, price_floor: float,
              price_cap: float) -> list[Part]:
        """:meth:`segments` as parts (running cycles, starts; see
        :meth:`~transactive.agents.flexibility.Segments.of_parts`)."""
        return self.priced(t, self.due(t), forecast_per_kwh, price_floor, price_cap)

    def priced(self, t: int, due: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], IntArray],
               forecast_per_kwh: npt.ArrayLike, price_floor: float, price_cap: float
               ) -> list[Part]:
        """The parts of interval ``t``'s cycles ``due`` (:meth:`due`) priced
        from the forecast, within the floor and cap."""
        running, starting, late = due
        step_kwh = self.step_kwh
        parts = [Part(running, BUY, step_kwh, price_cap, True, True)]
        if not starting.any():
            return [*parts, Part(starting, BUY, step_kwh, price_cap, False, True)]
        f = np.clip(np.asarray(forecast_per_kwh, dtype=np.float64), price_floor, price_cap)
        # intervals each ready cycle can still wait
        slack = np.maximum(late - self.duration - t, 0)
        mean, std = window_moments(f, np.minimum(slack + 1, f.size))
        price = np.clip(mean + std * (2.0 / (slack + 1) - 1), price_floor, price_cap)
        return [*parts, Part(starting, BUY, step_kwh, np.where(slack <= 0, price_cap, price),
                             slack <= 0, True)]

    def asap_kwh(self, t: int) -> FloatArray:
        """Interval ``t``'s energy of each appliance by the plain rule: a
        running cycle runs, a ready one starts at once."""
        running, starting, _ = self.due(t)
        return np.where(running | starting, self.step_kwh, 0.0)

    def due(self, t: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], IntArray]:
        """Which appliances run a cycle in interval ``t``, which are ready to
        start one, and each one's latest finish (see :meth:`_window`)."""
        late, ready = self._window(t)
        return self.remaining > 0, ready & (self.step_kwh > 0), late

    def advance(self, t: int, energy_kwh: npt.ArrayLike, *, check: bool = True) -> None:
        """The appliances drew ``energy_kwh`` in interval ``t``: a ready one
        that drew its step started, a running one ran its step.
        ``check=False``: trusted (the fleet's own bids served or its rule),
        not checked again."""
        e = np.asarray(energy_kwh, dtype=np.float64)
        on = e > 1e-12
        if check:
            step = self.step_kwh
            if e.shape != step.shape:
                raise InputError("energy_kwh", f"must have shape {step.shape}")
            if (on & (np.abs(e - step) > 1e-9 * np.maximum(step, 1.0))).any():
                raise InputError("energy_kwh", "an appliance runs at its power or not at all")
            if ((self.remaining > 0) & ~on).any():
                raise InputError("energy_kwh", "a running cycle cannot stop")
        start = on & (self.remaining == 0)
        if start.any():
            self.started.append((t, np.flatnonzero(start)))
            self.remaining = np.where(start, self.duration, self.remaining)
            self.next_cycle = self.next_cycle + start
        self.remaining = np.where(on, self.remaining - 1, self.remaining)
