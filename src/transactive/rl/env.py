"""A storage owner bidding into a repeated community double auction, as a
Gymnasium environment.

One episode is one day of the rivals (:mod:`transactive.rl.rivals`), drawn
at :meth:`BiddingEnv.reset`: its day index uniformly among the rivals' days,
then the rivals' limit prices of the whole day (``"zic"`` rivals draw them),
all from the environment's seeded ``np_random``. Each step is one market
interval: the bidder places one order, the interval is cleared with the
rivals' orders by the mechanism of the registry, and the battery stores what
was bought or gives what was sold. The battery starts empty; energy left at
the end of the day is worth nothing (so a good bidder empties it).

Observation (``float32``, each in ``[0, 1]``):
``[soc, time of day, p_1, ..., p_w]``: the state of charge as a share of the
capacity, the interval's place in the day (``t / T``), and the clearing
prices of the last ``w = price_window`` intervals, oldest first, scaled to the
market's price range (``(p - low) / (high - low)``); an interval that did not
clear repeats the last known price, and before the day's first clearing the
middle of the range (0.5) stands in.

Action (``float32``): ``[share, price]``, an order of ``share`` in ``[-1, 1]``
of what the battery can charge (``share > 0``, a bid) or discharge
(``share < 0``, an ask) in the interval, at the limit price ``low + price *
(high - low)`` with ``price`` in ``[0, 1]``.

Reward: the interval's profit, money received minus money paid (the
mechanism's payments), in the tariff's currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, MissingExtraError
from transactive.rl.bidding import StorageBidders
from transactive.rl.rivals import (
    CommunityRivals,
    Design,
    RivalDay,
    Rivals,
    clear_step,
    rival_prices,
)

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError:  # pragma: no cover - the rl extra is in dev
    raise MissingExtraError("gymnasium", "rl") from None

__all__ = ["BiddingEnv"]

FloatArray = npt.NDArray[np.float64]


class BiddingEnv(gym.Env[npt.NDArray[np.float32], npt.NDArray[np.float32]]):
    """A storage owner's day in a community market (see the module docstring).

    Parameters
    ----------
    rivals : Rivals, optional
        The market (default: the households of the built-in scenario,
        :meth:`CommunityRivals.from_scenario`).
    mechanism, mechanism_options
        The market design of the registry and its options.
    capacity_kwh, power_kw, efficiency
        The battery (:class:`~transactive.rl.bidding.StorageBidders`).
    price_window : int
        How many recent clearing prices the observation holds (>= 1).

    Examples
    --------
    >>> from transactive.rl.rivals import PriceSchedule
    >>> env = BiddingEnv(PriceSchedule([0.08, 0.30], dt_h=1.0), capacity_kwh=1.0, power_kw=1.0,
    ...                  efficiency=1.0, price_window=1)
    >>> obs, info = env.reset(seed=0)
    >>> obs.tolist()
    [0.0, 0.0, 0.5]
    >>> obs, reward, *_ = env.step(np.array([1.0, 1.0], np.float32))  # buy all, at the cap
    >>> obs.astype(float).round(4).tolist(), round(reward, 4)
    ([1.0, 0.5, 0.1333], -0.08)
    >>> obs, reward, done, *_ = env.step(np.array([-1.0, 0.0], np.float32))  # sell all
    >>> round(reward, 4), done
    (0.3, True)
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium's name)

    def __init__(self, rivals: Rivals | None = None, *, mechanism: str = "uniform",
                 mechanism_options: Mapping[str, Any] | None = None,
                 capacity_kwh: float = 10.0, power_kw: float = 5.0,
                 efficiency: float = 0.95, price_window: int = 4) -> None:
        if rivals is None:
            from transactive.sim.scenario import Scenario

            rivals = CommunityRivals.from_scenario(Scenario())
        self.rivals = rivals
        self.design = Design(mechanism, mechanism_options or {})
        self.storage = StorageBidders(1, capacity_kwh=capacity_kwh, power_kw=power_kw,
                                      efficiency=efficiency)
        if isinstance(price_window, bool) or not isinstance(price_window, (int, np.integer)) \
                or price_window < 1:
            raise InputError("price_window", f"must be an integer >= 1, got {price_window!r}")
        self.price_window = int(price_window)
        self._low, self._high = rivals.price_range_per_kwh
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2 + self.price_window,),
                                            dtype=np.float32)
        self.action_space = spaces.Box(np.array([-1.0, 0.0], np.float32),
                                       np.array([1.0, 1.0], np.float32), dtype=np.float32)
        self._day_index = 0
        self._day: RivalDay | None = None  # drawn by reset
        self._t = 0
        self._soc = self.storage.empty()
        self._recent = np.full(self.price_window, np.nan)
        self._feed_seed = 0
        self._feed: FloatArray | None = None

    # ----------------------------------------------------------------- views
    @property
    def price_range_per_kwh(self) -> tuple[float, float]:
        """The prices an order may carry: action price 0 and 1."""
        return self._low, self._high

    @property
    def soc_kwh(self) -> float:
        return float(self._soc[0])

    @property
    def day_index(self) -> int:
        """The rivals' day of the episode."""
        return self._day_index

    def feed_per_kwh(self) -> FloatArray:
        """The public feed of the market before the episode: the clearing
        prices of each interval of the previous day (the rivals' last day
        before day 0) among the rivals alone (``nan``: no clearing), drawn
        from a seed the episode's reset set aside (computed once per episode)."""
        if self._feed is None:
            rng = np.random.default_rng(self._feed_seed)
            yesterday = self.rivals.day((self._day_index - 1) % self.rivals.days, rng)
            self._feed = rival_prices(self.rivals, yesterday, rng, self.design)
        return self._feed

    # ----------------------------------------------------------------- Env API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        self._day_index = int(rng.integers(self.rivals.days))
        self._day = self.rivals.day(self._day_index, rng)
        self._feed_seed = int(rng.integers(2**63))
        self._feed = None
        self._t = 0
        self._soc = self.storage.empty()
        self._recent = np.full(self.price_window, np.nan)
        return self._observation(), {"day": self._day_index}

    def step(self, action: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], float, bool, bool,
                                                   dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.isfinite(a).all():
            raise InputError("action", f"must be two finite numbers [share, price], got {a!r}")
        if self._day is None or self._t >= self.rivals.steps_per_day:
            raise InputError("action", "no day is under way: call reset()")
        dt_h = self.rivals.dt_h
        quantity = self.storage.offer_kwh(self._soc, a[:1], dt_h)
        price = self._low + float(np.clip(a[1], 0.0, 1.0)) * (self._high - self._low)
        result = clear_step(self._day, self._t, quantity, np.array([price]), self.np_random,
                            self.design)
        self._soc = self.storage.store(self._soc, result.traded_kwh, dt_h)
        cleared = result.price_per_kwh
        last = self._recent[-1]  # an interval that did not clear repeats it
        self._recent = np.roll(self._recent, -1)
        self._recent[-1] = cleared if np.isfinite(cleared) else last
        self._t += 1
        done = self._t == self.rivals.steps_per_day
        info = {"day": self._day_index, "interval": self._t - 1,
                "traded_kwh": float(result.traded_kwh[0]),
                "price_per_kwh": cleared if np.isfinite(cleared) else None,
                "limit_per_kwh": price, "soc_kwh": self.soc_kwh}
        return self._observation(), float(result.profit[0]), done, False, info

    def _observation(self) -> npt.NDArray[np.float32]:
        span = self._high - self._low
        prices = np.where(np.isfinite(self._recent),
                          np.clip((self._recent - self._low) / span, 0.0, 1.0), 0.5)
        head = [self.soc_kwh / self.storage.capacity_kwh, self._t / self.rivals.steps_per_day]
        return np.clip(np.concatenate([head, prices]), 0.0, 1.0).astype(np.float32)
