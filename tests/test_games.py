"""Best-response dynamics: worked by hand, equilibrium checked by brute force
with the public ``clear``, truthful mechanisms stay truthful, errors."""

from __future__ import annotations

import numpy as np
import pytest

import transactive as te
from transactive.errors import InputError
from transactive.markets.games import DEFAULT_SHADING, best_response_dynamics


def test_pay_as_bid_pair_by_hand():
    # one buyer (value 1.0), one seller (cost 0.2), factors 0.5..1.5, pay-as-bid:
    # round 1: the buyer bids as low as still trades: 0.5 * 1.0 = 0.5 >= 0.2;
    #          the seller then asks as high as still trades: 1.5 * 0.2 = 0.3 <= 0.5;
    # round 2: nobody moves. Utilities: 1.0 - 0.5 and 0.3 - 0.2.
    game = best_response_dynamics([1.0], [0.2], mechanism="pay_as_bid")
    assert game.status == "converged"
    assert game.converged
    assert game.rounds == 2
    assert game.factors.tolist() == [0.5, 1.5]
    assert game.utilities == pytest.approx([0.5, 0.1])
    assert game.efficiency == pytest.approx(1.0)
    first = game.trajectory[game.trajectory["round"] == 1]
    assert first["factor"].tolist() == [0.5, 1.5]
    assert first["welfare"].tolist() == pytest.approx([0.8, 0.8])


def brute_force_gain(values, costs, factors, mechanism):
    """Most any player gains by a unilateral switch on the grid, via te.clear."""
    true = np.r_[values, costs]
    n, side = true.size, np.r_[np.ones(len(values)), -np.ones(len(costs))]

    def utility(profile, i):
        ob = te.OrderBatch(id=np.arange(n), participant=np.arange(n), side=side,
                           price=true * profile, quantity=np.ones(n))
        c = te.clear(ob, mechanism)
        return c.accepted[i] * side[i] * true[i] - c.payment[i]

    worst = 0.0
    for i in range(n):
        now = utility(factors, i)
        for f in DEFAULT_SHADING:
            trial = factors.copy()
            trial[i] = f
            worst = max(worst, utility(trial, i) - now)
    return worst


@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
def test_converged_profile_is_an_equilibrium_on_the_grid(mechanism):
    rng = np.random.default_rng(5)
    values, costs = rng.random(5), rng.random(5)
    game = best_response_dynamics(values, costs, mechanism=mechanism)
    assert game.status == "converged"
    assert game.max_gain <= 1e-9
    assert brute_force_gain(values, costs, game.factors, mechanism) <= 1e-9
    # somebody shades: truthful reporting is not an equilibrium here
    assert np.any(game.factors != 1.0)
    assert len(game.trajectory) == game.rounds * 10


@pytest.mark.parametrize("mechanism", ["vcg", "mcafee", "muda"])
def test_truthful_mechanisms_stay_truthful(mechanism):
    rng = np.random.default_rng(8)
    game = best_response_dynamics(rng.random(5), rng.random(4), mechanism=mechanism,
                                  rng=np.random.default_rng(1))
    assert game.status == "converged"
    assert game.rounds == 1
    assert game.factors.tolist() == [1.0] * 9
    assert game.max_gain <= 1e-9


def test_round_limit_is_reported():
    game = best_response_dynamics([1.0, 0.8], [0.1, 0.3], mechanism="pay_as_bid",
                                  max_rounds=1)
    assert game.status == "max_rounds"
    assert game.rounds == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"values": []}, "values"),
        ({"costs": [float("nan")]}, "costs"),
        ({"start": 0.97}, "start"),
        ({"max_rounds": 0}, "max_rounds"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"factors": [-0.5, 1.0]}, "factors"),
        ({"mechanism": "muda"}, "rng"),
        ({"mechanism": "vickery"}, "mechanism"),
    ],
)
def test_bad_input(kwargs, field):
    args = {"values": [1.0, 0.5], "costs": [0.2]}
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        best_response_dynamics(args.pop("values"), args.pop("costs"), **args)
    assert info.value.field == field
