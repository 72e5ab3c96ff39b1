"""Demand-response events in a run (``[demand_response]``): when they are,
what the devices see, and how the negawatts are settled afterwards.

The program calls ``events`` event days: the weekdays whose event hours
(``event_start_hour`` to ``event_end_hour``, local clock) have the highest
mean tariff price, among the days that have the history the baseline method
needs before them (CAISO's 10 in 10 looks at 10 earlier weekdays, PJM's
high 4 of 5 at 5; :mod:`transactive.programs.baseline`). Every enrolled
household is paid for each kWh its metered import falls below its baseline
during an event (:func:`~transactive.programs.dr.negawatts`): ``price_per_kwh``
(``compensation = "fixed"``), or its negawatts are offered into the wholesale
market as supply at ``price_per_kwh`` and bought in the event intervals where
the day-ahead price reaches the offer, at that price (``"wholesale"``: demand
response paid as supply, the full market price, as FERC Order 745 (2011)
requires where it passes the net-benefits test); the payment is a figure of
its own beside the energy bill, as carbon is.

Devices that bid (``[flexibility] control = "market"``) see an event as what
it is worth to them: their price forecast carries the negawatt price during
the event hours, so they prepare (charge, preheat) beforehand, and during the
event a kWh they do not draw earns the negawatt price, so their buy limits
fall and their sell limits (a battery's discharge) fall by it too. Devices on
plain rules do not respond; their households are still measured and paid
for whatever reduction the baseline shows (and the baseline's errors on the
days without events are reported: ``dr_baseline_bias_pct`` and
``dr_baseline_cv_rmse_pct``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError
from transactive.programs.baseline import baseline, baseline_errors
from transactive.programs.dr import day_types, event_windows, negawatts
from transactive.sim.flex_config import DemandResponseConfig
from transactive.timeline import Timeline

__all__ = ["EventPlan", "plan_events", "settle_events"]

FloatArray = npt.NDArray[np.float64]

_HISTORY_WEEKDAYS = {"caiso_10in10": 10, "pjm_high4of5": 5, "regression": 4}


class EventPlan:
    """The run's event days and intervals."""

    def __init__(self, days: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_],
                 day_type: npt.NDArray[np.int64], periods_per_day: int,
                 price_per_kwh: FloatArray) -> None:
        self.days = days
        """Event days (day indices of the run)."""
        self.mask = mask
        """Per interval of the run: under an event."""
        self.day_type = day_type
        self.periods_per_day = periods_per_day
        self.price_per_kwh = price_per_kwh
        """Per interval of the run: what a kWh of reduction earns (0 outside
        the events, and with ``"wholesale"`` compensation where the day-ahead
        price does not reach the offer: the reduction is not bought)."""


def plan_events(config: DemandResponseConfig, timeline: Timeline,
                retail_per_kwh: FloatArray, wholesale_per_kwh: FloatArray | None = None
                ) -> EventPlan:
    """The event days of the run (module docstring) and what a kWh of reduction
    earns in each interval (``wholesale_per_kwh``, the day-ahead prices: needed
    with ``"wholesale"`` compensation); :class:`InputError` if the run is too
    short for the method's history or holds no whole day."""
    ppd = timeline.periods_per_day
    n_days = timeline.periods // ppd
    start = pd.Timestamp(timeline.index[0])
    if timeline.periods % ppd or (start.hour, start.minute) != (0, 0):
        raise InputError("demand_response", "needs a run of whole days starting at midnight "
                         "(the baselines compare days interval by interval)")
    first = int(pd.Timestamp(timeline.index[0]).day_of_week)
    kinds = day_types(first, n_days)
    window = event_windows(config.event_start_hour, config.event_end_hour, ppd)[0]
    weekday = kinds == 0
    history = np.cumsum(weekday) - weekday  # weekdays before each day
    need = _HISTORY_WEEKDAYS[config.method]
    eligible = weekday & (history >= need)
    if eligible.sum() < config.events:
        raise InputError("demand_response.events",
                         f"{config.events} event days need {config.events} weekdays after "
                         f"{need} weekdays of history ({config.method}); the run of "
                         f"{n_days} days has {int(eligible.sum())} such days: run longer")
    price = retail_per_kwh[:n_days * ppd].reshape(n_days, ppd)[:, window].mean(axis=1)
    order = np.lexsort((np.arange(n_days), -price))  # dearest first, then earliest
    days = np.sort(order[eligible[order]][:config.events]).astype(np.int64)
    # the baseline's errors are measured on weekdays without an event that have
    # the method's history of such weekdays before them: refuse now, not after the run
    clean = weekday.copy()
    clean[days] = False
    if not (clean & (np.cumsum(clean) - clean >= need)).any():
        raise InputError("demand_response.events",
                         f"no weekday without an event is left with {need} such weekdays "
                         f"before it to test the {config.method} baseline on (the run of "
                         f"{n_days} days calls {config.events} events): run longer or call "
                         "fewer events")
    mask = np.zeros((n_days, ppd), dtype=bool)
    mask[days] = window
    full = np.zeros(timeline.periods, dtype=bool)
    full[:n_days * ppd] = mask.ravel()
    if config.compensation == "wholesale":
        if wholesale_per_kwh is None:
            raise ValueError("'wholesale' compensation needs the day-ahead prices")
        w = np.asarray(wholesale_per_kwh, dtype=np.float64)
        price = np.where(full & (w >= config.price_per_kwh), w, 0.0)
    else:
        price = np.where(full, config.price_per_kwh, 0.0)
    return EventPlan(days, full, kinds, ppd, price)


def settle_events(config: DemandResponseConfig, plan: EventPlan,
                  meter_kwh: FloatArray, temperature_c: FloatArray | None
                  ) -> tuple[dict[str, float | int], pd.DataFrame]:
    """The negawatts of the events from the households' metered import
    (``meter_kwh``: intervals x households, kWh), against the program's
    baseline; the baseline's errors on the days without events. Also the
    event days interval by interval (the results table ``dr_events``):
    ``interval`` (of the run), ``event`` (0, 1, ... in time order), ``in_event``
    (inside the event's hours), ``baseline_kwh`` and ``metered_kwh`` (summed
    over the households), ``counted_reduction_kwh`` (each household's
    reduction below its baseline inside the event's hours, floored at zero
    per interval, summed) and ``price_per_kwh`` (what the program pays for a
    kWh of it: 0 where the wholesale market did not buy it)."""
    ppd = plan.periods_per_day
    n_days = meter_kwh.shape[0] // ppd
    meter = meter_kwh[:n_days * ppd].reshape(n_days, ppd, -1).astype(np.float64)
    temp = (None if temperature_c is None or config.method != "regression"
            else temperature_c[:n_days * ppd].reshape(n_days, ppd))
    c = config
    base = baseline(meter, plan.days, method=c.method, day_type=plan.day_type,
                    event_start_hour=c.event_start_hour, event_end_hour=c.event_end_hour,
                    temperature_c=temp)
    window = plan.mask[:n_days * ppd].reshape(n_days, ppd)[plan.days]
    price = plan.price_per_kwh[:n_days * ppd].reshape(n_days, ppd)[plan.days]
    paid = negawatts(meter[plan.days], base, window, price, rebound_hours=c.rebound_hours)
    errors = baseline_errors(meter, plan.days, method=c.method, day_type=plan.day_type,
                             event_start_hour=c.event_start_hour,
                             event_end_hour=c.event_end_hour, temperature_c=temp)
    metered = meter[plan.days]  # (events, intervals of a day, households)
    counted = np.where(window[:, :, None], np.maximum(base - metered, 0.0), 0.0)
    days = np.repeat(plan.days, ppd)
    events = pd.DataFrame({
        "interval": days * ppd + np.tile(np.arange(ppd), plan.days.size),
        "event": np.repeat(np.arange(plan.days.size), ppd),
        "in_event": window.ravel(),
        "baseline_kwh": base.sum(axis=2).ravel(),
        "metered_kwh": metered.sum(axis=2).ravel(),
        "counted_reduction_kwh": counted.sum(axis=2).ravel(),
        "price_per_kwh": price.ravel()})
    figures = {"dr_event_days": int(plan.days.size),
               "dr_reduction_kwh": paid.total_reduction_kwh,
               "dr_payment": paid.total_payment, "dr_rebound_kwh": paid.total_rebound_kwh,
               "dr_baseline_bias_pct": errors.overall_bias_pct,
               "dr_baseline_cv_rmse_pct": errors.overall_cv_rmse_pct}
    return figures, events
