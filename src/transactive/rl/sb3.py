"""stable-baselines3 on the bidding environment: a thin adapter (extra ``sb3``).

:func:`train_sb3` trains one of stable-baselines3's algorithms with its
default multilayer-perceptron policy on a
:class:`~transactive.rl.env.BiddingEnv` (a continuous ``[share, price]``
action, so ``PPO``, ``A2C``, ``SAC`` or ``TD3``), and :func:`sb3_policy` turns
the model into a policy of observations to actions, as
:meth:`~transactive.rl.qlearning.QLearner.act` is. Without the extra,
:class:`~transactive.errors.MissingExtraError` says what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, MissingExtraError

__all__ = ["ALGORITHMS", "sb3_policy", "train_sb3"]

ALGORITHMS = ("A2C", "PPO", "SAC", "TD3")


def train_sb3(env: Any, *, algorithm: str = "PPO", timesteps: int = 10_000,
              seed: int = 0) -> Any:
    """A stable-baselines3 ``algorithm`` trained on ``env`` for ``timesteps``
    steps, seeded with ``seed``."""
    if algorithm not in ALGORITHMS:
        raise InputError("algorithm", f"must be one of {', '.join(ALGORITHMS)}, "
                                      f"got {algorithm!r}")
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise InputError("timesteps", f"must be an integer >= 1, got {timesteps!r}")
    try:
        import stable_baselines3
    except ImportError:
        raise MissingExtraError("stable-baselines3", "sb3") from None
    model = getattr(stable_baselines3, algorithm)("MlpPolicy", env, seed=seed, verbose=0)
    model.learn(total_timesteps=timesteps)
    return model


def sb3_policy(model: Any) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
    """The model's deterministic action at an observation."""

    def act(observation: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        action, _ = model.predict(observation, deterministic=True)
        return np.asarray(action, dtype=np.float32)

    return act
