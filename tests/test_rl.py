"""The bidding environment and the tabular Q-learner: Gymnasium's checks, seeding,
a price taker's closed-form best bidding learned, refusals, the sb3 adapter."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from transactive.errors import InputError, MissingExtraError
from transactive.rl.env import BiddingEnv
from transactive.rl.qlearning import ActionGrid, Discretiser, QLearner
from transactive.rl.rivals import CommunityRivals, PriceSchedule
from transactive.rl.sb3 import train_sb3
from transactive.sim.scenario import Scenario


@pytest.fixture(scope="module")
def small() -> Scenario:
    return Scenario().with_overrides(**{"community.households": 8, "time.days": 3.0,
                                        "time.step_minutes": 60})


@pytest.mark.parametrize(("strategy", "mechanism"),
                         [("truthful", "uniform"), ("zic", "muda"), ("zic", "pay_as_bid")])
def test_passes_gymnasiums_checks(small: Scenario, strategy: str, mechanism: str) -> None:
    env = BiddingEnv(CommunityRivals.from_scenario(small, strategy=strategy),
                     mechanism=mechanism)
    check_env(env, skip_render_check=True)


def _episode(env: BiddingEnv, seed: int, actions: np.ndarray) -> tuple[list[float], list[int]]:
    obs, _ = env.reset(seed=seed)
    rewards, observations = [], [obs.tobytes()]
    for a in actions:
        obs, reward, done, _, _info = env.step(a)
        rewards.append(reward)
        observations.append(obs.tobytes())
    assert done
    return rewards, [hash(o) for o in observations]


def test_seeded_reset_replays_the_day(small: Scenario) -> None:
    env = BiddingEnv(CommunityRivals.from_scenario(small, strategy="zic"))
    actions = np.random.default_rng(3).uniform([-1, 0], [1, 1], (24, 2)).astype(np.float32)
    first = _episode(env, 11, actions)
    assert _episode(env, 11, actions) == first
    days = {env.reset(seed=s)[1]["day"] for s in range(20)}
    assert days == {0, 1, 2}  # every day of the rivals is drawn
    feed = env.feed_per_kwh()
    assert feed.shape == (24,)
    assert np.isfinite(feed).any()


def test_step_books_the_trade_and_the_money() -> None:
    env = BiddingEnv(PriceSchedule([0.10, 0.40], dt_h=0.5), capacity_kwh=4.0, power_kw=2.0,
                     efficiency=0.9, price_window=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([1.0, 1.0], np.float32))
    assert info["traded_kwh"] == pytest.approx(1.0)  # 2 kW for half an hour
    assert reward == pytest.approx(-0.10)
    assert info["soc_kwh"] == pytest.approx(0.9)
    obs, reward, done, _, info = env.step(np.array([-1.0, 0.0], np.float32))
    assert info["traded_kwh"] == pytest.approx(-0.81)  # all it holds, after losses
    assert reward == pytest.approx(0.81 * 0.40)
    assert done
    assert env.soc_kwh == pytest.approx(0.0)
    assert obs[2:].tolist() == pytest.approx([0.10 / 0.80, 0.40 / 0.80])  # range 0 to 0.80


def _closed_form(prices: list[float], capacity_kwh: float, step_kwh: float, eta: float
                 ) -> tuple[list[float], float]:
    """A price taker facing a known cycle of a cheap and a dear price: when a
    cycle gains (``dear * eta**2 > cheap``) it buys all it can store at the
    cheap price and sells all it holds at the dear one; else it never trades."""
    cheap, dear = min(prices), max(prices)
    if dear * eta**2 <= cheap:
        return [0.0] * len(prices), 0.0
    soc, trades = 0.0, []
    for p in prices:
        if p == cheap:
            q = min(step_kwh, (capacity_kwh - soc) / eta)
            soc += q * eta
        else:
            q = -min(step_kwh, soc * eta)
            soc += q / eta
        trades.append(q)
    return trades, -float(np.dot(prices, trades))


@pytest.mark.parametrize(("prices", "eta"), [
    ([0.08, 0.08, 0.30, 0.30] * 2, 1.0),
    ([0.08, 0.08, 0.30, 0.30] * 2, 0.9),
    ([0.20, 0.20, 0.22, 0.22], 0.9),  # 0.22 * 0.81 < 0.20: a cycle loses
])
def test_q_learning_finds_the_price_takers_closed_form_policy(prices: list[float],
                                                              eta: float) -> None:
    env = BiddingEnv(PriceSchedule(prices, dt_h=1.0), capacity_kwh=2.0, power_kw=1.0,
                     efficiency=eta, price_window=1)
    learner = QLearner(Discretiser((3, len(prices), 1)),
                       ActionGrid(shares=(-1.0, 0.0, 1.0), prices=(0.0, 1.0)))
    log = learner.train(env, 300, seed=0)
    rewards, infos = learner.rollout(env, seed=1)
    trades, optimum = _closed_form(prices, 2.0, 1.0, eta)
    assert [i["traded_kwh"] for i in infos] == pytest.approx(trades, abs=1e-9)
    assert sum(rewards) == pytest.approx(optimum, abs=1e-9)
    assert optimum >= 0
    assert log.episode_return[-50:].max() == pytest.approx(optimum)


def test_refusals(small: Scenario) -> None:
    market = PriceSchedule([0.1, 0.2], dt_h=1.0)
    with pytest.raises(InputError, match="price_window"):
        BiddingEnv(market, price_window=0)
    with pytest.raises(InputError, match="'mechanism'"):
        BiddingEnv(market, mechanism="nonesuch")
    with pytest.raises(InputError, match="'k'"):
        BiddingEnv(market, mechanism_options={"k": 2.0})
    with pytest.raises(InputError, match="capacity_kwh"):
        BiddingEnv(market, capacity_kwh=0.0)
    with pytest.raises(InputError, match="strategy"):
        CommunityRivals.from_scenario(small, strategy="greedy")
    with pytest.raises(InputError, match="prices_per_kwh"):
        PriceSchedule([np.nan], dt_h=1.0)
    env = BiddingEnv(market)
    with pytest.raises(InputError, match="reset"):
        env.step(np.zeros(2))
    env.reset(seed=0)
    with pytest.raises(InputError, match="'action'"):
        env.step(np.array([np.nan, 0.5]))
    env.step(np.zeros(2))
    env.step(np.zeros(2))
    with pytest.raises(InputError, match="reset"):
        env.step(np.zeros(2))
    with pytest.raises(InputError, match="bins"):
        Discretiser((3, 0))
    with pytest.raises(InputError, match="shares"):
        ActionGrid(shares=(2.0,))
    with pytest.raises(InputError, match="omega"):
        QLearner(Discretiser((2,)), ActionGrid(), omega=0.5)
    with pytest.raises(InputError, match="episodes"):
        QLearner(Discretiser((2, 2, 1, 1, 1, 1)), ActionGrid()).train(env, 0, seed=0)


@pytest.mark.skipif(importlib.util.find_spec("stable_baselines3") is not None,
                    reason="stable-baselines3 is installed")
def test_sb3_adapter_names_its_extra() -> None:
    env = BiddingEnv(PriceSchedule([0.1, 0.2], dt_h=1.0))
    with pytest.raises(MissingExtraError, match=r"transactive\[sb3\]"):
        train_sb3(env, timesteps=10)
    with pytest.raises(InputError, match="algorithm"):
        train_sb3(env, algorithm="DQN")


def test_the_rooms_face_resolves_and_costs_nothing_to_import() -> None:
    import subprocess
    import sys

    import transactive.rl as rl

    assert rl.__all__ == sorted(rl.__all__, key=lambda n: (n[0].islower(), n))
    for name in rl.__all__:
        assert not isinstance(getattr(rl, name), type(sys))
    code = ("import sys, transactive.rl; print(any(m in sys.modules for m in "
            "('gymnasium', 'pandas', 'scipy', 'plotly')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_sb3_policy_reads_a_models_deterministic_action() -> None:
    from transactive.rl.sb3 import sb3_policy

    class Model:
        def predict(self, observation: np.ndarray, deterministic: bool = False
                    ) -> tuple[np.ndarray, None]:
            assert deterministic
            return np.array([observation[0] - 1.0, 0.5]), None

    act = sb3_policy(Model())
    env = BiddingEnv(PriceSchedule([0.1, 0.2], dt_h=1.0), price_window=1)
    obs, _ = env.reset(seed=0)
    action = act(obs)
    assert action.dtype == np.float32
    assert action.tolist() == [-1.0, 0.5]
    assert env.action_space.contains(action)
