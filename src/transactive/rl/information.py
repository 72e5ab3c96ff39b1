"""What better information is worth: informed and uninformed storage bidders
in one market, with and without a public feed of past clearings.

``informed + uninformed`` storage owners (:class:`~transactive.rl.bidding.StorageBidders`)
trade in the same repeated market beside the rivals
(:mod:`transactive.rl.rivals`) for ``days`` consecutive days; their batteries
carry over from day to day. Each morning every bidder forecasts the day's
clearing prices and bids from its forecast as the house battery does
(:func:`~transactive.rl.bidding.forecast_offers`). The forecasts:

- the *truth* a forecaster aims at is the day's clearing prices among the
  rivals alone (:func:`~transactive.rl.rivals.rival_prices`; an interval
  that does not clear takes its neighbour's, :func:`~transactive.rl.bidding.filled_prices`);
- a bidder's own forecast is the truth plus two errors: the price its
  generation forecast error makes (it misjudges the community's PV by a
  share drawn normally with standard deviation ``generation_noise_*`` in
  each interval, and the error moves its price forecast by as much as the
  rivals' book, modelled with truthful rivals, moves under it:
  :meth:`~transactive.rl.rivals.CommunityRivals.modelled_day`), and a price
  error drawn normally with standard deviation ``noise_*_per_kwh``;
  informed bidders draw with the ``*_informed`` deviations, uninformed ones
  with the ``*_uninformed`` ones;
- with the public transparency feed an uninformed bidder forecasts from the
  feed instead: the clearing prices the market published the day before (all
  bidders trading; before the first day, the rivals' alone).

A run plays the same days, rival draws and noise draws with the feed off and
on (common random numbers), so each run gives a paired measurement. Its
*gap* is the informed bidders' mean profit per bidder and day minus the
uninformed bidders'. Over ``runs`` seeded runs the gap has a mean and a 95 %
Student's t interval, with the feed and without, and so has its reduction by
the feed (gap without minus gap with).

In a market whose prices repeat every day (:class:`~transactive.rl.rivals.PriceSchedule`)
the feed is a perfect forecast, so with the feed and a noiseless informed
forecast both groups bid alike: the gap is exactly zero, and whatever gap
noise opens without the feed, the feed closes. In a community the days
differ (weather), so the feed is a good but not perfect forecast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.rl._stats import mean_ci
from transactive.rl.bidding import StorageBidders, filled_prices, forecast_limits, forecast_offers
from transactive.rl.rivals import Design, RivalDay, Rivals, clear_step, rival_prices

__all__ = ["InformationResult", "information_gap"]

FloatArray = npt.NDArray[np.float64]
_UNIFORM = Design()


@dataclass(frozen=True, eq=False)
class InformationResult:
    """Mean profit per bidder and day of each run, by feed and group."""

    profit: dict[str, dict[str, FloatArray]]
    """``profit[feed][group]``: feed ``"off"`` or ``"on"``, group
    ``"informed"`` or ``"uninformed"``; one value per run."""
    settings: dict[str, Any]

    def gap(self, feed: str) -> FloatArray:
        """Per run: informed minus uninformed mean profit per bidder and day."""
        p = self.profit[feed]
        return p["informed"] - p["uninformed"]

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready: each group's profit and the gap with its
        interval, with the feed off and on, and the gap's reduction by the feed."""
        out: dict[str, Any] = {"settings": dict(self.settings)}
        for feed in ("off", "on"):
            out[f"feed_{feed}"] = {**{g: mean_ci(v) for g, v in self.profit[feed].items()},
                                   "gap": mean_ci(self.gap(feed))}
        out["gap_reduction_by_feed"] = mean_ci(self.gap("off") - self.gap("on"))
        return out


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(name, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _noise(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            np.isfinite(value) and value >= 0):
        raise InputError(name, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def _forecasts(rivals: Rivals, days: list[int], truth: FloatArray, sigma_price: FloatArray,
               sigma_pv: FloatArray, rng: np.random.Generator, design: Design) -> FloatArray:
    """Each bidder's own forecast of each day, shape (days, bidders, T)."""
    low, high = rivals.price_range_per_kwh
    n_t, m = rivals.steps_per_day, sigma_price.size
    out = truth[:, None, :] + sigma_price[None, :, None] * rng.standard_normal(
        (len(days), m, n_t))
    pv_error = sigma_pv[None, :, None] * rng.standard_normal((len(days), m, n_t))
    misjudging = np.flatnonzero(sigma_pv)
    for k, d in enumerate(days if misjudging.size else []):
        base = filled_prices(rival_prices(rivals, rivals.modelled_day(d, np.zeros(n_t)), rng,
                                          design), low, high)
        for i in misjudging:
            seen = rival_prices(rivals, rivals.modelled_day(d, pv_error[k, i]), rng, design)
            out[k, i] += filled_prices(seen, low, high) - base
    return out


def _play(rivals: Rivals, storage: StorageBidders, days: list[RivalDay], own: FloatArray,
          first_feed: FloatArray, informed: int, feed: bool, strategy: str, design: Design,
          seed: np.random.SeedSequence) -> FloatArray:
    """Each bidder's total profit over ``days`` (see the module docstring)."""
    low, high = rivals.price_range_per_kwh
    dt_h = rivals.dt_h
    policy_rng, clear_rng = (np.random.default_rng(s) for s in seed.spawn(2))
    soc = storage.empty()
    profit = np.zeros(storage.count)
    published = first_feed
    for k, day in enumerate(days):
        forecast = own[k].copy()
        if feed:
            forecast[informed:] = filled_prices(published, low, high)
        buy, sell = forecast_limits(forecast, storage.efficiency)
        realised = np.empty(rivals.steps_per_day)
        for t in range(rivals.steps_per_day):
            charge, discharge = storage.room_kwh(soc, dt_h)
            q, p = forecast_offers(strategy, forecast[:, t], buy, sell, charge, discharge,
                                   policy_rng, price_range_per_kwh=(low, high))
            step = clear_step(day, t, q, p, clear_rng, design)
            soc = storage.store(soc, step.traded_kwh, dt_h)
            profit += step.profit
            realised[t] = step.price_per_kwh
        published = realised
    return profit


def information_gap(rivals: Rivals, *, informed: int = 2, uninformed: int = 2,
                    noise_informed_per_kwh: float = 0.0,
                    noise_uninformed_per_kwh: float = 0.1,
                    generation_noise_informed: float = 0.0,
                    generation_noise_uninformed: float = 0.0, days: int = 5, runs: int = 10,
                    seed: int = 0, design: Design = _UNIFORM, strategy: str = "truthful",
                    capacity_kwh: float = 10.0, power_kw: float = 5.0,
                    efficiency: float = 0.95) -> InformationResult:
    """The profit gap between informed and uninformed storage bidders, with
    the public feed off and on, over ``runs`` seeded runs of ``days`` days
    (see the module docstring). ``strategy`` sets how the bidders price
    their limits (``"truthful"`` or ``"zic"``).

    Examples
    --------
    >>> from transactive.rl.rivals import PriceSchedule
    >>> market = PriceSchedule([0.10] * 4 + [0.30] * 4, dt_h=1.0)
    >>> r = information_gap(market, days=2, runs=3, noise_uninformed_per_kwh=0.2)
    >>> r.gap("on").tolist()    # a daily cycle: yesterday's prices are today's
    [0.0, 0.0, 0.0]
    >>> bool(r.gap("off").mean() > 0)
    True
    """
    n_inf = _count("informed", informed, 1)
    n_un = _count("uninformed", uninformed, 1)
    n_days = _count("days", days, 1)
    n_runs = _count("runs", runs, 2)
    sigma = np.repeat([_noise("noise_informed_per_kwh", noise_informed_per_kwh),
                       _noise("noise_uninformed_per_kwh", noise_uninformed_per_kwh)],
                      [n_inf, n_un])
    sigma_pv = np.repeat([_noise("generation_noise_informed", generation_noise_informed),
                          _noise("generation_noise_uninformed", generation_noise_uninformed)],
                         [n_inf, n_un])
    storage = StorageBidders(n_inf + n_un, capacity_kwh=capacity_kwh, power_kw=power_kw,
                             efficiency=efficiency)
    low, high = rivals.price_range_per_kwh
    profit = {feed: {g: np.zeros(n_runs) for g in ("informed", "uninformed")}
              for feed in ("off", "on")}
    for r, run_seed in enumerate(np.random.SeedSequence(seed).spawn(n_runs)):
        draw_seed, play_seed = run_seed.spawn(2)
        rng = np.random.default_rng(draw_seed)
        first = int(rng.integers(rivals.days))
        index = [(first + k) % rivals.days for k in range(-1, n_days)]
        rival_days = [rivals.day(d, rng) for d in index]
        truths = np.array([filled_prices(rival_prices(rivals, day, rng, design), low, high)
                           for day in rival_days])
        own = _forecasts(rivals, index[1:], truths[1:], sigma, sigma_pv, rng, design)
        for feed in ("off", "on"):
            total = _play(rivals, storage, rival_days[1:], own, truths[0], n_inf,
                          feed == "on", strategy, design, play_seed)
            profit[feed]["informed"][r] = total[:n_inf].mean() / n_days
            profit[feed]["uninformed"][r] = total[n_inf:].mean() / n_days
    settings = {"informed": n_inf, "uninformed": n_un,
                "noise_informed_per_kwh": float(sigma[0]),
                "noise_uninformed_per_kwh": float(sigma[-1]),
                "generation_noise_informed": float(sigma_pv[0]),
                "generation_noise_uninformed": float(sigma_pv[-1]), "days": n_days, "runs": n_runs,
                "seed": seed, "mechanism": design.mechanism, "strategy": strategy,
                "capacity_kwh": storage.capacity_kwh, "power_kw": storage.power_kw,
                "efficiency": storage.efficiency}
    return InformationResult(profit=profit, settings=settings)
