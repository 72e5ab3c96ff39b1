"""Tabular Q-learning of a bidder, in numpy.

Watkins' Q-learning (Watkins & Dayan 1992, "Q-learning", *Machine Learning*
8, 279-292) over a discretised state and a grid of actions: after each step
from state ``s`` by action ``a`` to ``s'`` with reward ``r``,

    Q[s, a] += alpha_n (r + gamma max_b Q[s', b] - Q[s, a])

(without the ``max`` term when the episode ended), where ``alpha_n =
n^-omega`` for the ``n``-th visit of ``(s, a)``: a polynomial learning rate,
which converges for ``1/2 < omega <= 1`` (Even-Dar & Mansour 2003, "Learning
rates for Q-learning", *JMLR* 5, 1-25). An episode's updates are made at its
end, from its last step back to its first, so that the profit of a sale
reaches the purchase that made it possible in one episode rather than one
step per episode (the episodic backward update of Lee, Sung, Choi & Kim 2019,
"Sample-efficient deep reinforcement learning via episodic backward update",
*NeurIPS*); each update is still Q-learning's, on a transition of the
behaviour policy. Actions are epsilon-greedy: a uniformly
random action with probability ``epsilon``, which falls linearly from
``epsilon_start`` in the first episode to ``epsilon_end`` in the last, else
the greedy one (the lowest index among ties).

The state is a :class:`Discretiser` of the observation (each component in
``[0, 1]`` cut into equal bins; one bin ignores it), the actions an
:class:`ActionGrid` of the environment's ``[share, price]`` orders
(:class:`~transactive.rl.env.BiddingEnv`). The learner runs any environment
with Gymnasium's ``reset``/``step``; its random draws come from its seed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError

__all__ = ["ActionGrid", "Discretiser", "QLearner", "TrainingLog"]

FloatArray = npt.NDArray[np.float64]


class _Env(Protocol):
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]: ...

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]: ...


@dataclass(frozen=True)
class Discretiser:
    """Observation -> state index: component ``i`` (in ``[0, 1]``) in
    ``bins[i]`` equal bins (the value 1 in the last).

    >>> d = Discretiser((3, 4))
    >>> d.n_states, d.index(np.array([0.0, 0.0])), d.index(np.array([1.0, 0.3]))
    (12, 0, 9)
    """

    bins: tuple[int, ...]

    def __post_init__(self) -> None:
        bins = tuple(self.bins)
        if not bins or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
                           for b in bins):
            raise InputError("bins", f"must be integers >= 1, one per observation, got {bins!r}")
        object.__setattr__(self, "bins", tuple(int(b) for b in bins))

    @property
    def n_states(self) -> int:
        return int(np.prod(self.bins))

    def index(self, observation: npt.ArrayLike) -> int:
        """The state of ``observation``."""
        obs = np.asarray(observation, dtype=np.float64)
        if obs.shape != (len(self.bins),):
            raise InputError("observation", f"must have shape ({len(self.bins)},), "
                                            f"got {obs.shape}")
        size = np.array(self.bins)
        cell = np.minimum((np.clip(obs, 0.0, 1.0) * size).astype(np.int64), size - 1)
        return int(np.ravel_multi_index(tuple(cell), self.bins))


@dataclass(frozen=True)
class ActionGrid:
    """Every ``[share, price]`` pair of the given values, share-major.

    >>> grid = ActionGrid(shares=(-1.0, 1.0), prices=(0.0, 1.0))
    >>> grid.n_actions, grid.action(1).tolist(), grid.action(2).tolist()
    (4, [-1.0, 1.0], [1.0, 0.0])
    """

    shares: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    prices: tuple[float, ...] = (0.0, 0.5, 1.0)
    _table: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, lo in (("shares", -1.0), ("prices", 0.0)):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all() \
                    or (values < lo).any() or (values > 1.0).any():
                raise InputError(name, f"must be numbers in [{lo:g}, 1], got "
                                       f"{getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        table = np.array(list(itertools.product(self.shares, self.prices)), dtype=np.float32)
        object.__setattr__(self, "_table", table)

    @property
    def n_actions(self) -> int:
        return int(self._table.shape[0])

    def action(self, index: int) -> npt.NDArray[np.float32]:
        """The environment's action of grid point ``index``."""
        return self._table[index].copy()


@dataclass(frozen=True, eq=False)
class TrainingLog:
    """Per training episode: its return (summed reward) and its epsilon."""

    episode_return: FloatArray
    epsilon: FloatArray


class QLearner:
    """A tabular Q-learner (see the module docstring).

    Parameters
    ----------
    discretiser, actions
        The state and action grids.
    gamma : float
        Discount in ``[0, 1]`` (1: an episode's total profit, the time of day
        in the state).
    omega : float
        Exponent of the learning rate ``n^-omega``, in ``(0.5, 1]``.
    epsilon_start, epsilon_end : float
        Exploration of the first and the last training episode, in ``[0, 1]``.
    """

    def __init__(self, discretiser: Discretiser, actions: ActionGrid, *, gamma: float = 1.0,
                 omega: float = 0.8, epsilon_start: float = 1.0,
                 epsilon_end: float = 0.05) -> None:
        for name, value, lo, hi, open_lo in (("gamma", gamma, 0.0, 1.0, False),
                                             ("omega", omega, 0.5, 1.0, True),
                                             ("epsilon_start", epsilon_start, 0.0, 1.0, False),
                                             ("epsilon_end", epsilon_end, 0.0, 1.0, False)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                lo < value <= hi if open_lo else lo <= value <= hi)
            if not ok:
                bracket = "(" if open_lo else "["
                raise InputError(name, f"must be in {bracket}{lo:g}, {hi:g}], got {value!r}")
        self.discretiser = discretiser
        self.actions = actions
        self.gamma = float(gamma)
        self.omega = float(omega)
        self.epsilon_start, self.epsilon_end = float(epsilon_start), float(epsilon_end)
        self.q = np.zeros((discretiser.n_states, actions.n_actions))
        self.visits = np.zeros(self.q.shape, dtype=np.int64)

    def greedy_index(self, observation: npt.ArrayLike) -> int:
        """The greedy action's index in the grid at ``observation``."""
        return int(np.argmax(self.q[self.discretiser.index(observation)]))

    def act(self, observation: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The greedy action at ``observation``."""
        return self.actions.action(self.greedy_index(observation))

    def train(self, env: _Env, episodes: int, seed: int) -> TrainingLog:
        """Run ``episodes`` episodes of epsilon-greedy Q-learning on ``env``;
        episode ``k`` resets ``env`` with the ``k``-th seed drawn from ``seed``.

        Examples
        --------
        A price taker's day of a cheap and a dear hour, one kWh to store:

        >>> from transactive.rl.env import BiddingEnv
        >>> from transactive.rl.rivals import PriceSchedule
        >>> env = BiddingEnv(PriceSchedule([0.1, 0.3], dt_h=1.0), capacity_kwh=1.0,
        ...                  power_kw=1.0, efficiency=1.0, price_window=1)
        >>> learner = QLearner(Discretiser((2, 2, 1)), ActionGrid((-1.0, 0.0, 1.0), (0.0, 1.0)))
        >>> log = learner.train(env, 300, seed=0)
        >>> [round(r, 3) for r in learner.rollout(env, seed=1)[0]]
        [-0.1, 0.3]
        """
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) \
                or episodes < 1:
            raise InputError("episodes", f"must be an integer >= 1, got {episodes!r}")
        rng = np.random.default_rng(seed)
        seeds = rng.integers(2**31, size=episodes)
        eps = np.linspace(self.epsilon_start, self.epsilon_end, episodes)
        returns = np.zeros(episodes)
        q, visits, n_actions = self.q, self.visits, self.actions.n_actions
        for k in range(episodes):
            obs, _ = env.reset(seed=int(seeds[k]))
            s = self.discretiser.index(obs)
            steps: list[tuple[int, int, float, int, bool]] = []
            done = False
            while not done:
                a = (int(rng.integers(n_actions)) if rng.random() < eps[k]
                     else int(np.argmax(q[s])))
                obs, reward, terminated, truncated, _ = env.step(self.actions.action(a))
                s_next = self.discretiser.index(obs)
                steps.append((s, a, float(reward), s_next, bool(terminated)))
                returns[k] += reward
                s, done = s_next, terminated or truncated
            for s, a, reward, s_next, terminated in reversed(steps):
                target = reward + (0.0 if terminated else self.gamma * q[s_next].max())
                visits[s, a] += 1
                q[s, a] += visits[s, a] ** -self.omega * (target - q[s, a])
        return TrainingLog(episode_return=returns, epsilon=eps)

    def rollout(self, env: _Env, seed: int) -> tuple[list[float], list[dict[str, Any]]]:
        """One greedy episode from ``env.reset(seed=seed)``: each step's
        reward and info."""
        obs, _ = env.reset(seed=seed)
        rewards: list[float] = []
        infos: list[dict[str, Any]] = []
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(self.act(obs))
            rewards.append(float(reward))
            infos.append(info)
            done = terminated or truncated
        return rewards, infos
