"""Consensus model: determinism, fault thresholds, Nakamoto's numbers, capacity, load."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from transactive.errors import InputError
from transactive.settlement.consensus import (
    ConsensusParams,
    Faults,
    compare_consensus,
    double_spend_probability,
    nakamoto_double_spend,
    plot_consensus,
    simulate_double_spend,
    simulate_pbft,
    simulate_pos,
    simulate_pow,
)
from transactive.settlement.consensus import pbft_quorum as quorum

SHORT = ConsensusParams(duration_s=300.0, warmup_s=120.0, drain_s=300.0)
LONG = ConsensusParams(duration_s=1200.0, warmup_s=150.0, drain_s=400.0)  # ~70 PoW blocks
SIMULATORS = [simulate_pow, simulate_pos, simulate_pbft]


def test_same_seed_same_table_other_seed_other_table() -> None:
    a = compare_consensus([5.0, 40.0], 7, Faults(crashed=1, byzantine=1),
                          np.random.default_rng(42), SHORT)
    b = compare_consensus([5.0, 40.0], 7, Faults(crashed=1, byzantine=1),
                          np.random.default_rng(42), SHORT)
    c = compare_consensus([5.0, 40.0], 7, Faults(crashed=1, byzantine=1),
                          np.random.default_rng(43), SHORT)
    pd.testing.assert_frame_equal(a, b)
    assert not a["latency_mean_s"].equals(c["latency_mean_s"])
    assert list(a["protocol"]) == ["PoW", "PoS", "PBFT"] * 2


# -- PBFT: safe and live below n/3 faulty, not from n/3 on ----------------------------------


def _fork_possible_brute_force(n: int, b: int) -> bool:
    """Are there two quorums whose common members are all Byzantine (nodes 0..b-1)?"""
    q = quorum(n)
    sets = [set(c) for c in itertools.combinations(range(n), q)]
    return any(all(x < b for x in s1 & s2) for s1, s2 in itertools.combinations(sets, 2))


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 10])
def test_pbft_quorums_intersect_in_an_honest_replica_up_to_f(n: int) -> None:
    f = (n - 1) // 3
    for b in range(n):
        fork = _fork_possible_brute_force(n, b)
        assert fork == (b >= 2 * quorum(n) - n), (n, b)
        if b <= f or (n == 3 * f + 1 and b > f):
            assert fork == (b > f)  # exact at n = 3f + 1


@pytest.mark.parametrize("n", [4, 5, 7])
def test_pbft_simulation_forks_exactly_when_quorums_allow(n: int) -> None:
    for b in range(n):
        run = simulate_pbft(20.0, n, Faults(byzantine=b), np.random.default_rng(b), SHORT)
        assert (run.safety_violations > 0) == _fork_possible_brute_force(n, b), (n, b)
        if b <= (n - 1) // 3:
            assert run.confirmed_share == 1.0


@pytest.mark.parametrize("n", [4, 7, 10])
def test_pbft_byzantine_threshold(n: int) -> None:
    f = (n - 1) // 3
    for seed in range(3):
        ok = simulate_pbft(30.0, n, Faults(byzantine=f), np.random.default_rng(seed), SHORT)
        assert ok.safety_violations == 0
        assert ok.confirmed_share == 1.0
        assert ok.throughput_tx_per_s == pytest.approx(30.0, rel=0.2)
        broken = simulate_pbft(30.0, n, Faults(byzantine=f + 1), np.random.default_rng(seed),
                               SHORT)
        assert broken.safety_violations > 0  # conflicting commits


@pytest.mark.parametrize("n", [4, 7, 10])
def test_pbft_crash_threshold(n: int) -> None:
    f = (n - 1) // 3
    rng = np.random.default_rng(5)
    live = simulate_pbft(30.0, n, Faults(crashed=f), rng, SHORT)
    assert live.confirmed_share == 1.0
    assert live.safety_violations == 0
    stuck = simulate_pbft(30.0, n, Faults(crashed=f + 1), rng, SHORT)
    assert stuck.throughput_tx_per_s == 0.0
    assert stuck.confirmed_share == 0.0
    assert stuck.view_changes > 0
    assert stuck.safety_violations == 0  # crashes stop progress but cannot fork


def test_pbft_sends_order_n_squared_messages_per_batch() -> None:
    for n in (4, 8, 16):
        run = simulate_pbft(20.0, n, Faults(), np.random.default_rng(0), SHORT)
        # pre-prepare n-1, prepare (n-1)^2, commit n(n-1), reply n
        assert run.messages_per_block == 2 * n * n - n
        assert run.view_changes == 0


def test_pos_finality_and_safety_threshold_with_equal_stakes() -> None:
    params = ConsensusParams(duration_s=300.0, warmup_s=120.0, drain_s=300.0, pos_stake_sigma=0.0)
    below = simulate_pos(20.0, 10, Faults(byzantine=3), np.random.default_rng(0), params)
    assert below.safety_violations == 0
    assert below.confirmed_share == 1.0
    above = simulate_pos(20.0, 10, Faults(byzantine=4), np.random.default_rng(0), params)
    assert above.safety_violations > 0
    assert above.throughput_tx_per_s == 0.0  # honest 60 % < 2/3: finality stalls
    crashed = simulate_pos(20.0, 10, Faults(crashed=4), np.random.default_rng(0), params)
    assert crashed.throughput_tx_per_s == 0.0
    assert crashed.safety_violations == 0


# -- PoW: double spending -------------------------------------------------------------------

# Nakamoto (2008), "Bitcoin: A Peer-to-Peer Electronic Cash System", section 11.
NAKAMOTO_Q10 = [1.0, 0.2045873, 0.0509779, 0.0131722, 0.0034552, 0.0009137, 0.0002428,
                0.0000647, 0.0000173, 0.0000046, 0.0000012]
NAKAMOTO_Q30 = [1.0, 0.1773523, 0.0416605, 0.0101008, 0.0024804, 0.0006132, 0.0001522,
                0.0000379, 0.0000095, 0.0000024, 0.0000006]
NAKAMOTO_Z_FOR_P_BELOW_0_1_PCT = {0.10: 5, 0.15: 8, 0.20: 11, 0.25: 15, 0.30: 24, 0.35: 41,
                                  0.40: 89, 0.45: 340}


def test_nakamoto_closed_form_matches_the_paper() -> None:
    for z, expected in enumerate(NAKAMOTO_Q10):
        assert round(nakamoto_double_spend(0.1, z), 7) == expected
    for z, expected in zip(range(0, 51, 5), NAKAMOTO_Q30, strict=True):
        assert round(nakamoto_double_spend(0.3, z), 7) == expected
    for q, z in NAKAMOTO_Z_FOR_P_BELOW_0_1_PCT.items():
        assert nakamoto_double_spend(q, z) < 0.001 <= nakamoto_double_spend(q, z - 1)
    assert nakamoto_double_spend(0.5, 100) == 1.0


@pytest.mark.parametrize(("q", "z"), [(0.1, 1), (0.25, 3), (0.3, 6)])
def test_exact_race_probability_matches_monte_carlo(q: float, z: int) -> None:
    n = 40_000
    exact = double_spend_probability(q, z)
    simulated = simulate_double_spend(q, z, n, np.random.default_rng(7))
    sigma = np.sqrt(exact * (1 - exact) / n)
    assert abs(simulated - exact) < 4 * sigma


def test_double_spend_input_checks() -> None:
    with pytest.raises(InputError, match="'q'"):
        nakamoto_double_spend(1.5, 3)
    with pytest.raises(InputError, match="'z'"):
        double_spend_probability(0.1, -1)


def test_pow_reports_attacker_double_spend_and_forks_with_slow_propagation() -> None:
    run = simulate_pow(5.0, 10, Faults(byzantine=1), np.random.default_rng(0), SHORT)
    assert run.double_spend_p == pytest.approx(nakamoto_double_spend(0.1, 6))
    fast = simulate_pow(5.0, 10, Faults(), np.random.default_rng(0), SHORT)
    laggy = ConsensusParams(duration_s=300.0, warmup_s=120.0, drain_s=300.0,
                            pow_block_interval_s=1.0, delay_median_s=0.5)
    slow = simulate_pow(5.0, 10, Faults(), np.random.default_rng(0), laggy)
    assert fast.stale_blocks <= 1
    assert slow.stale_blocks / (slow.blocks + slow.stale_blocks) > 0.1


# -- load ------------------------------------------------------------------------------------


@pytest.mark.parametrize("simulate", SIMULATORS)
def test_throughput_never_beyond_capacity(simulate) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    cap = simulate(1.0, 7, Faults(), rng, LONG).capacity_tx_per_s
    low = simulate(0.3 * cap, 7, Faults(), rng, LONG)
    assert low.throughput_tx_per_s == pytest.approx(0.3 * cap, rel=0.25)
    over = simulate(3.0 * cap, 7, Faults(), rng, LONG)
    if simulate is simulate_pow:  # Poisson blocks: a bound on the mean only
        assert over.throughput_tx_per_s <= 1.25 * cap
    else:  # blocks on a clock: at most one block more than the window holds
        window = LONG.duration_s - LONG.warmup_s
        assert over.throughput_tx_per_s <= cap + LONG.block_size_tx / window
    assert over.throughput_tx_per_s >= 0.5 * cap
    assert over.confirmed_share < 1.0


@pytest.mark.parametrize("simulate", SIMULATORS)
def test_latency_increases_with_load(simulate) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    # PoW block times are exponential: a long run (~200 blocks) to average them out
    span = 3000.0 if simulate is simulate_pow else 300.0
    params = ConsensusParams(duration_s=span, warmup_s=150.0, drain_s=span)
    cap = simulate(1.0, 7, Faults(), rng, params).capacity_tx_per_s
    runs = [simulate(x * cap, 7, Faults(), rng, params) for x in (0.25, 1.0, 1.5)]
    assert [r.confirmed_share for r in runs] == [1.0, 1.0, 1.0]  # no censoring
    assert runs[0].latency_mean_s < runs[1].latency_mean_s < runs[2].latency_mean_s


def test_energy_per_tx_is_validator_power_over_throughput() -> None:
    table = compare_consensus(20.0, 7, Faults(crashed=1), np.random.default_rng(0), LONG)
    power = table["energy_per_tx_j"] * table["throughput_tx_per_s"]
    assert power.tolist() == pytest.approx([6 * 3250.0, 6 * 100.0, 6 * 100.0])


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="faults"):
        simulate_pbft(1.0, 4, Faults(crashed=3, byzantine=2), rng)
    with pytest.raises(InputError, match="load_tx_per_s"):
        simulate_pos(float("nan"), 4, Faults(), rng)
    with pytest.raises(InputError, match="n_validators"):
        simulate_pow(1.0, 3, Faults(), rng)
    with pytest.raises(InputError, match="warmup_s"):
        ConsensusParams(duration_s=10.0, warmup_s=20.0)
    with pytest.raises(InputError, match="pos_slot_s"):
        ConsensusParams(pos_slot_s=0.0)


def test_plot_has_one_line_per_protocol_in_each_panel() -> None:
    table = compare_consensus([5.0, 20.0], 4, Faults(), np.random.default_rng(0), SHORT)
    fig = plot_consensus(table)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert all(len(ax.get_lines()) == 3 for ax in fig.axes)
