"""Train a Q-learning storage bidder in a scenario's community market and
measure it against bidders that do not learn.

:func:`learn` builds the market of a scenario (its households as rivals,
:class:`~transactive.rl.rivals.CommunityRivals`),
trains a :class:`~transactive.rl.qlearning.QLearner` on the storage owner's
:class:`~transactive.rl.env.BiddingEnv` (in a double auction of the registry,
``uniform`` by default) for a number of episodes (days), and
then plays the same evaluation days (the same seeds: the same day and the
same rival draws for every bidder) with three bidders in the storage
owner's seat:

- ``learned``: the learner's greedy policy;
- ``truthful``: the house battery's strategy from a forecast
  (:func:`~transactive.rl.bidding.forecast_offers`), the forecast being the
  public feed of the previous day's clearing prices
  (:meth:`~transactive.rl.env.BiddingEnv.feed_per_kwh`; an interval that did
  not clear takes the nearest one that did);
- ``zic``: the same sides and quantities with zero-intelligence prices.

The market repeats the scenario's days: the evaluation days are days of the
same community the learner trained on (with fresh draws of zero-intelligence
rivals), as a participant of a standing community market learns its days.
Each bidder's profit per evaluation day gives a mean and a 95 % Student's t
interval; the learned bidder's profit minus each other's, day by day, gives
the paired difference and its interval.

State of the learner: the battery's state of charge (5 bins), the time of
day (12 bins: two hours each, or one per interval when a day has fewer) and
the last clearing price (3 bins). Actions: all, none or all of the battery's
room (``share`` -1, 0, 1) at a price at the bottom, the middle or the top of
the market's price range (:class:`~transactive.rl.qlearning.ActionGrid`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.rl._stats import mean_ci
from transactive.rl.bidding import filled_prices, forecast_limits, forecast_offers
from transactive.rl.env import BiddingEnv
from transactive.rl.qlearning import ActionGrid, Discretiser, QLearner, TrainingLog
from transactive.rl.rivals import CommunityRivals
from transactive.sim.scenario import Scenario

__all__ = ["POLICIES", "LearnResult", "learn"]

FloatArray = npt.NDArray[np.float64]
POLICIES = ("learned", "truthful", "zic")

Policy = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


@dataclass(frozen=True, eq=False)
class LearnResult:
    """A trained learner, its training and its evaluation."""

    scenario: Scenario
    learner: QLearner
    training: TrainingLog
    profit: dict[str, FloatArray]
    """Per bidder of :data:`POLICIES`: its profit on each evaluation day."""
    day: dict[str, dict[str, list[float | None]]]
    """Per bidder: the first evaluation day, interval by interval (clearing
    price, traded kWh, state of charge)."""
    storage: dict[str, float]
    mechanism: str
    episodes: int
    seed: int
    elapsed_s: float
    steps_per_day: int

    def summary(self) -> dict[str, Any]:
        """The figures of the run, JSON-ready."""
        sc = self.scenario
        returns = self.training.episode_return
        tail = max(1, min(50, len(returns) // 5))
        learned = self.profit["learned"]
        return {
            "scenario": sc.name, "currency": sc.tariff.currency,
            "mechanism": self.mechanism, "rivals": sc.market.strategy,
            "households": sc.community.households, "steps_per_day": self.steps_per_day,
            "storage": dict(self.storage), "episodes": self.episodes, "seed": self.seed,
            "evaluation_days": len(learned),
            "training": {"first_mean_return": float(returns[:tail].mean()),
                         "last_mean_return": float(returns[-tail:].mean()),
                         "episodes_averaged": tail},
            "profit_per_day": {name: mean_ci(p) for name, p in self.profit.items()},
            "learned_minus": {name: mean_ci(learned - p) for name, p in self.profit.items()
                              if name != "learned"},
            "elapsed_s": self.elapsed_s,
        }


def _forecast_policy(env: BiddingEnv, strategy: str, rng: np.random.Generator) -> Policy:
    """The house battery's bidding from the episode's feed (set up after reset)."""
    low, high = env.price_range_per_kwh
    forecast = filled_prices(env.feed_per_kwh(), low, high)
    buy, sell = forecast_limits(forecast[None, :], env.storage.efficiency)
    t = iter(range(forecast.size))

    def act(observation: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        k = next(t)
        share, price = forecast_offers(strategy, forecast[k:k + 1], buy, sell, np.ones(1),
                                       np.ones(1), rng, price_range_per_kwh=(low, high))
        return np.array([share[0], (price[0] - low) / (high - low)], np.float32)

    return act


def _episode(env: BiddingEnv, seed: int, policy: str, learner: QLearner,
             rng: np.random.Generator) -> tuple[float, dict[str, list[float | None]]]:
    obs, _ = env.reset(seed=seed)
    act: Policy = learner.act if policy == "learned" else _forecast_policy(env, policy, rng)
    total = 0.0
    day: dict[str, list[float | None]] = {"price_per_kwh": [], "traded_kwh": [], "soc_kwh": []}
    done = False
    while not done:
        obs, reward, done, _, info = env.step(act(obs))
        total += reward
        for key in day:
            day[key].append(info[key])
    return total, day


def learn(scenario: Scenario | None = None, *, mechanism: str = "uniform",
          mechanism_options: Mapping[str, Any] | None = None, episodes: int = 300,
          seed: int = 0, evaluation_days: int = 30, capacity_kwh: float = 10.0,
          power_kw: float = 5.0, efficiency: float = 0.95) -> LearnResult:
    """Train and evaluate (see the module docstring); ``seed`` draws the
    training days, the learner's exploration and the evaluation days.

    The scenario gives the rivals (its community, tariff and
    ``market.strategy``; default: the built-in scenario); the storage owner
    bids into ``mechanism``, a double auction of the registry that clears on
    orders alone (the scenario's ``market.mechanism`` may be the feeder's
    ``network`` design, which needs the engine).

    Examples
    --------
    >>> sc = Scenario().with_overrides(**{"community.households": 8, "time.days": 2.0,
    ...                                   "time.step_minutes": 120})
    >>> result = learn(sc, episodes=5, evaluation_days=2)
    >>> sorted(result.summary()["profit_per_day"]), len(result.training.episode_return)
    (['learned', 'truthful', 'zic'], 5)
    """
    sc = Scenario() if scenario is None else scenario
    if not isinstance(sc, Scenario):
        raise InputError("scenario", f"expected a Scenario, got {type(sc).__name__}")
    if isinstance(evaluation_days, bool) or not isinstance(evaluation_days, int) \
            or evaluation_days < 1:
        raise InputError("evaluation_days", f"must be an integer >= 1, got {evaluation_days!r}")
    started = time.perf_counter()
    rivals = CommunityRivals.from_scenario(sc)
    env = BiddingEnv(rivals, mechanism=mechanism, mechanism_options=mechanism_options,
                     capacity_kwh=capacity_kwh,
                     power_kw=power_kw, efficiency=efficiency, price_window=1)
    per_day = rivals.steps_per_day
    learner = QLearner(Discretiser((5, min(per_day, 12), 3)),
                       ActionGrid(shares=(-1.0, 0.0, 1.0), prices=(0.0, 0.5, 1.0)))
    train_seed, eval_seed, policy_seed = np.random.SeedSequence(seed).spawn(3)
    training = learner.train(env, episodes, seed=int(train_seed.generate_state(1)[0]))
    seeds = np.random.default_rng(eval_seed).integers(2**31, size=evaluation_days)
    profit: dict[str, FloatArray] = {}
    days: dict[str, dict[str, list[float | None]]] = {}
    for policy, stream in zip(POLICIES, policy_seed.spawn(len(POLICIES)), strict=True):
        rng = np.random.default_rng(stream)
        outcomes = [_episode(env, int(s), policy, learner, rng) for s in seeds]
        profit[policy] = np.array([total for total, _ in outcomes])
        days[policy] = outcomes[0][1]
    return LearnResult(
        scenario=sc, learner=learner, training=training, profit=profit, day=days,
        storage={"capacity_kwh": env.storage.capacity_kwh, "power_kw": env.storage.power_kw,
                 "efficiency": env.storage.efficiency},
        mechanism=mechanism, episodes=episodes, seed=seed, elapsed_s=time.perf_counter() - started,
        steps_per_day=per_day)
