"""Storage bidders: their batteries, and bidding from a price forecast.

A storage bidder is a battery behind a market connection (no load, no PV):
it buys to charge and sells to discharge, and nothing else. Its physics is
:class:`~transactive.agents.devices.BatteryFleet` (one row per bidder, no
floor on the state of charge): an offer's quantity is a share of what the
battery can charge or discharge in the interval from its state of charge
(:meth:`offer_kwh`), and an accepted trade is stored with the fleet's
efficiencies (:meth:`StorageBidders.store`).

Bidding from a forecast (:func:`forecast_offers`) is the house battery's
strategy (:func:`transactive.agents.devices.arbitrage_prices`): from a
forecast of the day's clearing prices a battery takes its buy limit (the
forecast's low quartile) and its sell limit (its high quartile, and never
below ``buy / (eta_c eta_d)``); it bids to charge in full in an interval
whose forecast is at or below the buy limit and offers to discharge in full
in one at or above the sell limit. Its limit prices follow a strategy of
:func:`transactive.agents.strategies.limit_prices`: ``"truthful"`` bids the
limits themselves, ``"zic"`` (Gode & Sunder's zero intelligence) draws a bid
below the buy limit and an ask above the sell limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from transactive.agents.devices import BatteryFleet, arbitrage_prices
from transactive.agents.strategies import limit_prices
from transactive.errors import InputError

__all__ = ["StorageBidders", "filled_prices", "forecast_limits", "forecast_offers"]

FloatArray = npt.NDArray[np.float64]


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(name, f"must be a number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise InputError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class StorageBidders:
    """``count`` equal batteries of ``capacity_kwh`` and ``power_kw`` with a
    one-way ``efficiency`` (charging and discharging alike).

    Examples
    --------
    >>> b = StorageBidders(2, capacity_kwh=2.0, power_kw=1.0, efficiency=1.0)
    >>> soc = b.empty()
    >>> q = b.offer_kwh(soc, np.array([1.0, -1.0]), dt_h=1.0)   # the second is empty
    >>> q.tolist(), b.store(soc, q, dt_h=1.0).tolist()
    ([1.0, -0.0], [1.0, 0.0])
    """

    count: int
    capacity_kwh: float = 10.0
    power_kw: float = 5.0
    efficiency: float = 0.95
    fleet: BatteryFleet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) \
                or self.count < 1:
            raise InputError("count", f"must be an integer >= 1, got {self.count!r}")
        object.__setattr__(self, "capacity_kwh", _positive("capacity_kwh", self.capacity_kwh))
        object.__setattr__(self, "power_kw", _positive("power_kw", self.power_kw))
        eff = _positive("efficiency", self.efficiency)
        if eff > 1:
            raise InputError("efficiency", f"must be in (0, 1], got {self.efficiency!r}")
        object.__setattr__(self, "efficiency", eff)
        n = int(self.count)
        object.__setattr__(self, "fleet", BatteryFleet(
            capacity_kwh=np.full(n, self.capacity_kwh), power_kw=np.full(n, self.power_kw),
            efficiency_charge=np.full(n, eff), efficiency_discharge=np.full(n, eff),
            soc_min_frac=np.zeros(n)))

    def empty(self) -> FloatArray:
        """Every battery empty."""
        return np.zeros(self.count)

    def room_kwh(self, soc_kwh: FloatArray, dt_h: float) -> tuple[FloatArray, FloatArray]:
        """The most each battery can buy (charge) and sell (discharge) over an
        interval at its terminals, from ``soc_kwh``."""
        charge, discharge = self.fleet.parts(soc_kwh, dt_h, buy_below=0.0, sell_above=0.0)
        return (np.asarray(charge.quantity_kwh, dtype=np.float64),
                np.asarray(discharge.quantity_kwh, dtype=np.float64))

    def offer_kwh(self, soc_kwh: FloatArray, share: npt.ArrayLike, dt_h: float) -> FloatArray:
        """The signed quantity of each battery's offer: ``share`` in [-1, 1]
        of its charge room (``share > 0``, a buy) or of its discharge room
        (``share < 0``, a sell)."""
        s = np.clip(np.asarray(share, dtype=np.float64), -1.0, 1.0)
        charge, discharge = self.room_kwh(soc_kwh, dt_h)
        return np.where(s > 0, s * charge, s * discharge)

    def store(self, soc_kwh: FloatArray, traded_kwh: FloatArray, dt_h: float) -> FloatArray:
        """The state of charge after buying (+) or selling (-) ``traded_kwh``
        (at most the offers of :meth:`offer_kwh`)."""
        return self.fleet.store(soc_kwh, traded_kwh, dt_h, check=False)


def forecast_limits(forecast_per_kwh: npt.ArrayLike, efficiency: float
                    ) -> tuple[FloatArray, FloatArray]:
    """Each bidder's buy and sell limits from its forecast of the day,
    shape (m, T) -> two arrays of shape (m,) (see the module docstring).

    >>> buy, sell = forecast_limits([[0.1, 0.1, 0.3, 0.3]], 0.95)
    >>> buy.tolist(), sell.tolist()
    ([0.1], [0.3])
    """
    f = np.atleast_2d(np.asarray(forecast_per_kwh, dtype=np.float64))
    pairs = [arbitrage_prices(row, efficiency, efficiency) for row in f]
    return (np.array([float(b) for b, _ in pairs]), np.array([float(s) for _, s in pairs]))


def forecast_offers(strategy: str, forecast_now_per_kwh: FloatArray, buy_below: FloatArray,
                    sell_above: FloatArray, charge_kwh: FloatArray, discharge_kwh: FloatArray,
                    rng: np.random.Generator, *, price_range_per_kwh: tuple[float, float]
                    ) -> tuple[FloatArray, FloatArray]:
    """Each bidder's order in an interval whose forecast price is
    ``forecast_now_per_kwh``: its signed quantity (charge room, minus the
    discharge room, or nothing) and limit price (arrays over bidders).

    >>> q, p = forecast_offers("truthful", np.array([0.1, 0.3, 0.2]), np.full(3, 0.1),
    ...                        np.full(3, 0.3), np.ones(3), np.ones(3),
    ...                        np.random.default_rng(0), price_range_per_kwh=(0.0, 0.5))
    >>> q.tolist(), p.tolist()
    ([1.0, -1.0, 0.0], [0.1, 0.3, 0.3])
    """
    lo, hi = price_range_per_kwh
    buy = (forecast_now_per_kwh <= buy_below) & (forecast_now_per_kwh < sell_above)
    sell = (forecast_now_per_kwh >= sell_above) & (forecast_now_per_kwh > buy_below)
    price = limit_prices(strategy, buy, np.clip(buy_below, lo, hi), np.clip(sell_above, lo, hi),
                         rng, price_floor=lo, price_cap=hi)
    quantity = np.where(buy, charge_kwh, np.where(sell, -discharge_kwh, 0.0))
    return quantity, price


def filled_prices(prices_per_kwh: FloatArray, low: float, high: float) -> FloatArray:
    """A day of clearing prices as a forecast: an interval that did not
    clear (``nan``) takes the nearest earlier price, else the nearest later
    one; a day without any clearing is the middle of the range ``[low, high]``.

    >>> filled_prices(np.array([np.nan, 0.2, np.nan, 0.3]), 0.0, 1.0).tolist()
    [0.2, 0.2, 0.2, 0.3]
    """
    known = np.flatnonzero(np.isfinite(prices_per_kwh))
    if known.size == 0:
        return np.full(prices_per_kwh.shape, (low + high) / 2)
    at = np.searchsorted(known, np.arange(prices_per_kwh.size), side="right") - 1
    return np.asarray(prices_per_kwh[known[np.maximum(at, 0)]], dtype=np.float64)
