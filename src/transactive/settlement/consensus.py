"""PoW, PoS and PBFT carrying the market's settlement transactions: a seeded model.

A discrete-event model of ``n`` validators running one of three consensus
protocols while settlement transactions arrive as a Poisson stream of rate
``load_tx_per_s``. Every random draw (arrivals, network delays, block discovery,
proposers, which validators are faulty) comes from the caller's
:class:`numpy.random.Generator`. What is modelled, per protocol:

PoW (Nakamoto longest chain)
    Block discoveries are a Poisson process, each found by a miner in proportion
    to hash power (equal shares). A miner extends the longest chain it has seen;
    blocks reach the others after a network delay, so two miners can extend the
    same parent: a fork, resolved by the longest chain, its losers stale. A
    transaction is confirmed when ``pow_confirmations`` blocks are linked after
    its block. Crashed miners find nothing; Byzantine miners withhold their
    blocks for a private double-spend chain, with success probability
    :func:`nakamoto_double_spend` (share ``q``, depth ``z``). Difficulty is set for
    all ``n`` miners and does not retarget within the run.
PoS (slots, stake-weighted proposers, Casper-FFG-like finality)
    One proposer per slot, drawn with probability proportional to stake
    (lognormal stakes). A block counts if it reaches validators holding more than
    half of the live honest stake within a third of the slot (the attestation
    deadline); otherwise the slot is missed. A block is final at the end of the
    epoch after its own, provided at least 2/3 of stake is live and honest;
    otherwise finality stalls. A Byzantine proposer equivocates (two blocks, the
    honest validators split evenly between them by the adversary): both can be
    finalized, a safety violation, exactly when each half plus the Byzantine
    stake reaches 2/3.
PBFT (Castro & Liskov 1999, normal case and view change)
    The primary of view ``v`` is validator ``v mod n``. Each batch runs
    PRE-PREPARE, PREPARE and COMMIT; a replica is prepared after the
    pre-prepare and ``q - 1`` prepares and commits after ``q`` commits, with
    ``q = ceil((n + f + 1) / 2)`` (``2f + 1`` for ``n = 3f + 1``), ``f = (n - 1) // 3``.
    Phase times are order statistics of sampled delays plus a CPU cost per
    message received; the client takes the result at the ``f + 1``-th reply.
    Messages per batch are ``O(n^2)``. A crashed primary, or one that cannot
    gather a quorum, triggers a view change after a timeout (doubled after each
    failed view). Byzantine replicas withhold votes from honest primaries; a
    Byzantine primary equivocates to two halves of the honest replicas and the
    Byzantine replicas vote for both: conflicting commits happen exactly when
    ``floor(h / 2) + b >= q`` (``h`` live honest, ``b`` Byzantine), i.e. from
    ``b >= n / 3`` on; below that the protocol is safe and live.

Energy per transaction (joules) = power drawn by all non-crashed validators over
the run divided by the transactions confirmed in it: a mining rig of
``pow_miner_power_w`` per PoW validator (default 3,250 W, a Bitmain Antminer
S19 Pro-class ASIC at its rated power), a server of ``server_power_w`` per PoS or
PBFT validator (default 100 W). Networking energy is not counted.

Simplifications: no transaction fees or ordering other than FIFO; transactions
propagate instantly to block producers; PBFT batches are not pipelined (one in
flight at a time); PoW block propagation assumes full-to-expected-fill blocks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from transactive.errors import InputError

__all__ = [
    "ConsensusParams",
    "ConsensusRun",
    "Faults",
    "compare_consensus",
    "double_spend_probability",
    "nakamoto_double_spend",
    "pbft_quorum",
    "plot_consensus",
    "simulate_double_spend",
    "simulate_pbft",
    "simulate_pos",
    "simulate_pow",
]

_HONEST, _CRASHED, _BYZANTINE = 0, 1, 2
_MAX_BACKOFF_DOUBLINGS = 6
_TWO_THIRDS = 2 / 3 - 1e-9  # stake shares are floats: n/3 of n equal stakes must reach it

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Faults:
    """How many validators are crashed (silent) and how many are Byzantine."""

    crashed: int = 0
    byzantine: int = 0


NO_FAULTS = Faults()


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Protocol, network and energy assumptions (defaults: a community chain on a LAN/WAN)."""

    duration_s: float = 600.0
    warmup_s: float = 150.0
    drain_s: float = 600.0
    block_size_tx: int = 500
    tx_bytes: int = 250
    delay_median_s: float = 0.05
    delay_sigma: float = 0.5
    bandwidth_bytes_per_s: float = 12.5e6
    pow_block_interval_s: float = 15.0
    pow_confirmations: int = 6
    pow_miner_power_w: float = 3250.0
    pos_slot_s: float = 4.0
    pos_epoch_slots: int = 8
    pos_stake_sigma: float = 1.0
    pbft_batch_interval_s: float = 0.5
    pbft_view_timeout_s: float = 2.0
    pbft_verify_s: float = 50e-6
    server_power_w: float = 100.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value) or value < 0:
                raise InputError(name, f"must be finite and non-negative, got {value}")
        positive = ("duration_s", "block_size_tx", "delay_median_s", "bandwidth_bytes_per_s",
                    "pow_block_interval_s", "pos_slot_s", "pos_epoch_slots",
                    "pbft_batch_interval_s", "pbft_view_timeout_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise InputError(name, "must be positive")
        if self.warmup_s >= self.duration_s:
            raise InputError("warmup_s", "must be shorter than duration_s")

    @property
    def horizon_s(self) -> float:
        """How long the validators run: the load's duration plus the drain."""
        return self.duration_s + self.drain_s


DEFAULT_PARAMS = ConsensusParams()


@dataclass(frozen=True, slots=True)
class ConsensusRun:
    """Outcome of one simulated run (one row of :func:`compare_consensus`)."""

    protocol: str
    n_validators: int
    crashed: int
    byzantine: int
    load_tx_per_s: float
    capacity_tx_per_s: float
    throughput_tx_per_s: float
    confirmed_share: float
    latency_mean_s: float
    latency_p95_s: float
    energy_per_tx_j: float
    messages_per_block: float
    blocks: int
    stale_blocks: int
    view_changes: int
    safety_violations: int
    double_spend_p: float

    @property
    def live(self) -> bool:
        """Whether any transaction was confirmed."""
        return bool(self.throughput_tx_per_s > 0)


# -- shared pieces ------------------------------------------------------------------------


def _check(load_tx_per_s: float, n_validators: int, faults: Faults) -> None:
    if not math.isfinite(load_tx_per_s) or load_tx_per_s < 0:
        raise InputError("load_tx_per_s", f"must be finite and non-negative, got {load_tx_per_s}")
    if isinstance(n_validators, bool) or not isinstance(n_validators, int | np.integer):
        raise InputError("n_validators", "must be an integer")
    if n_validators < 4:
        raise InputError("n_validators", f"must be at least 4 (3f + 1), got {n_validators}")
    if faults.crashed < 0 or faults.byzantine < 0:
        raise InputError("faults", "counts must be non-negative")
    if faults.crashed + faults.byzantine > n_validators:
        raise InputError("faults", f"more faulty validators than the {n_validators} there are")


def _roles(n: int, faults: Faults, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Which validators are crashed / Byzantine: a random subset of each size."""
    roles = np.full(n, _HONEST, dtype=np.int64)
    perm = rng.permutation(n)
    roles[perm[: faults.crashed]] = _CRASHED
    roles[perm[faults.crashed : faults.crashed + faults.byzantine]] = _BYZANTINE
    return roles


def _arrivals(load_tx_per_s: float, duration_s: float, rng: np.random.Generator) -> FloatArray:
    n = int(rng.poisson(load_tx_per_s * duration_s))
    return np.sort(rng.uniform(0.0, duration_s, n))


def _delays(
    rng: np.random.Generator, p: ConsensusParams, shape: int | tuple[int, ...], n_bytes: float
) -> FloatArray:
    """One-way delays: lognormal latency plus transmission of ``n_bytes``."""
    latency = rng.lognormal(math.log(p.delay_median_s), p.delay_sigma, shape)
    return latency + n_bytes / p.bandwidth_bytes_per_s


def _fill(arrivals: FloatArray, block_times: FloatArray, block_size: int) -> npt.NDArray[np.int64]:
    """Transactions per block when each block takes the oldest waiting ones (FIFO)."""
    available = np.searchsorted(arrivals, block_times, side="right")
    counts = np.zeros(len(block_times), dtype=np.int64)
    taken = 0
    for i, avail in enumerate(available):  # one step per block, not per transaction
        counts[i] = min(block_size, avail - taken)
        taken += counts[i]
    return counts


def _run(
    protocol: str, load: float, n: int, faults: Faults, p: ConsensusParams,
    arrivals: FloatArray, counts: npt.NDArray[np.int64], block_s: FloatArray,
    confirm_s: FloatArray, *,
    capacity: float, power_w: float, messages: float, stale: int = 0, view_changes: int = 0,
    safety_violations: int = 0, double_spend_p: float = math.nan,
) -> ConsensusRun:
    """Steady-state metrics.

    Throughput counts the transactions put in a block between ``warmup_s`` and
    ``duration_s`` (while the load lasts) that are confirmed before the horizon;
    latency (arrival to confirmation) covers every transaction confirmed before
    the horizon; energy per transaction is the validators' power over the
    throughput.
    """
    tx_confirm = np.repeat(confirm_s, counts)
    tx_block = np.repeat(block_s, counts)
    done = tx_confirm <= p.horizon_s
    latency = (tx_confirm - arrivals[: len(tx_confirm)])[done]
    in_window = done & (tx_block >= p.warmup_s) & (tx_block < p.duration_s)
    throughput = np.count_nonzero(in_window) / (p.duration_s - p.warmup_s)
    n_blocks = len(counts)
    return ConsensusRun(
        protocol=protocol, n_validators=n, crashed=faults.crashed, byzantine=faults.byzantine,
        load_tx_per_s=load, capacity_tx_per_s=capacity,
        throughput_tx_per_s=float(throughput),
        confirmed_share=latency.size / arrivals.size if arrivals.size else math.nan,
        latency_mean_s=float(latency.mean()) if latency.size else math.nan,
        latency_p95_s=float(np.percentile(latency, 95)) if latency.size else math.nan,
        energy_per_tx_j=power_w / throughput if throughput > 0 else math.inf,
        messages_per_block=messages / n_blocks if n_blocks else math.nan,
        blocks=n_blocks, stale_blocks=stale, view_changes=view_changes,
        safety_violations=safety_violations, double_spend_p=double_spend_p,
    )


# -- PoW ----------------------------------------------------------------------------------


def simulate_pow(
    load_tx_per_s: float, n_validators: int, faults: Faults, rng: np.random.Generator,
    params: ConsensusParams = DEFAULT_PARAMS,
) -> ConsensusRun:
    """Longest-chain proof of work with propagation forks (see the module docstring).

    Examples
    --------
    >>> run = simulate_pow(10.0, 8, Faults(), np.random.default_rng(1))
    >>> run.protocol, run.throughput_tx_per_s <= run.capacity_tx_per_s * 1.5
    ('PoW', True)
    """
    _check(load_tx_per_s, n_validators, faults)
    p, n = params, n_validators
    roles = _roles(n, faults, rng)
    arrivals = _arrivals(load_tx_per_s, p.duration_s, rng)
    miners = np.flatnonzero(roles == _HONEST)
    rate = miners.size / n / p.pow_block_interval_s  # blocks per second on the public chain
    n_found = int(rng.poisson(rate * p.horizon_s))
    found_s = np.sort(rng.uniform(0.0, p.horizon_s, n_found))
    finder = rng.choice(miners, n_found) if miners.size else np.zeros(0, dtype=np.int64)
    fill = min(p.block_size_tx, load_tx_per_s * p.pow_block_interval_s)
    block_bytes = fill * p.tx_bytes

    # Each miner's view of the chain tip; block arrivals in a heap ordered by time.
    tip_height = np.zeros(n, dtype=np.int64)
    tip_block = np.full(n, -1, dtype=np.int64)
    parent = np.full(n_found, -1, dtype=np.int64)
    height = np.zeros(n_found, dtype=np.int64)
    pending: list[tuple[float, int, int]] = []  # (arrival time, block, miner)
    for b in range(n_found):
        while pending and pending[0][0] <= found_s[b]:
            _, blk, j = heapq.heappop(pending)
            if height[blk] > tip_height[j]:
                tip_height[j], tip_block[j] = height[blk], blk
        m = finder[b]
        parent[b], height[b] = tip_block[m], tip_height[m] + 1
        tip_height[m], tip_block[m] = height[b], b
        arrive = found_s[b] + _delays(rng, p, n, block_bytes)
        for j in miners[miners != m]:
            heapq.heappush(pending, (float(arrive[j]), b, int(j)))

    chain: list[int] = []
    b = int(np.argmax(height)) if n_found else -1  # first (earliest) of the highest
    while b >= 0:
        chain.append(b)
        b = int(parent[b])
    chain.reverse()
    main_s = found_s[chain]
    counts = _fill(arrivals, main_s, p.block_size_tx)
    z = p.pow_confirmations
    confirm = np.full(len(chain), np.inf)
    if len(chain) > z:
        confirm[: len(chain) - z] = main_s[z:] + p.delay_median_s + block_bytes / (
            p.bandwidth_bytes_per_s
        )
    working = np.count_nonzero(roles != _CRASHED)
    q = faults.byzantine / n
    return _run(
        "PoW", load_tx_per_s, n, faults, p, arrivals, counts, main_s, confirm,
        capacity=p.block_size_tx / p.pow_block_interval_s,
        power_w=working * p.pow_miner_power_w,
        messages=n_found * (miners.size - 1), stale=n_found - len(chain),
        double_spend_p=nakamoto_double_spend(q, z),
    )


# -- PoS ----------------------------------------------------------------------------------


def _conflicting_quorums(honest_weights: FloatArray, byzantine_weight: float, quorum: float
                         ) -> bool:
    """Can an equivocating adversary get two disjoint honest halves both to a quorum?

    The adversary splits the honest weights as evenly as it can (greedy, heaviest
    first) and adds all Byzantine weight to each side.
    """
    sides = [0.0, 0.0]
    for w in np.sort(honest_weights)[::-1]:
        sides[int(sides[1] < sides[0])] += float(w)
    return min(sides) + byzantine_weight >= quorum


def simulate_pos(
    load_tx_per_s: float, n_validators: int, faults: Faults, rng: np.random.Generator,
    params: ConsensusParams = DEFAULT_PARAMS,
) -> ConsensusRun:
    """Slot-based proof of stake with stake-weighted proposers and epoch finality.

    Examples
    --------
    >>> run = simulate_pos(10.0, 8, Faults(), np.random.default_rng(1))
    >>> run.protocol, run.safety_violations, run.live
    ('PoS', 0, True)
    """
    _check(load_tx_per_s, n_validators, faults)
    p, n = params, n_validators
    roles = _roles(n, faults, rng)
    arrivals = _arrivals(load_tx_per_s, p.duration_s, rng)
    stake = rng.lognormal(0.0, p.pos_stake_sigma, n)
    stake /= stake.sum()
    honest = roles == _HONEST
    byz_stake = float(stake[roles == _BYZANTINE].sum())
    n_slots = int(p.horizon_s // p.pos_slot_s)
    slot_start = np.arange(n_slots) * p.pos_slot_s
    proposer = rng.choice(n, n_slots, p=stake)
    fill = min(p.block_size_tx, load_tx_per_s * p.pos_slot_s)
    arrive = _delays(rng, p, (n_slots, n), fill * p.tx_bytes)
    on_time = (arrive <= p.pos_slot_s / 3) & honest
    attested = on_time.astype(np.float64) @ stake
    kind = roles[proposer]
    canonical = (kind == _HONEST) & (attested > 0.5 * stake[honest].sum())
    equivocations = np.count_nonzero(kind == _BYZANTINE)
    violations = equivocations * _conflicting_quorums(stake[honest], byz_stake, _TWO_THIRDS)

    block_s = slot_start[canonical]
    counts = _fill(arrivals, block_s, p.block_size_tx)
    finality_ok = stake[honest].sum() >= _TWO_THIRDS
    epoch = (np.flatnonzero(canonical) // p.pos_epoch_slots).astype(np.float64)
    final_s = (epoch + 2) * p.pos_epoch_slots * p.pos_slot_s + p.pos_slot_s / 3
    confirm = final_s if finality_ok else np.full(block_s.size, np.inf)
    live = int(np.count_nonzero(roles != _CRASHED))
    # per slot: proposal to all, one attestation per live validator, aggregate to all
    messages = n_slots * (2 * (n - 1) + live)
    return _run(
        "PoS", load_tx_per_s, n, faults, p, arrivals, counts, block_s, confirm,
        capacity=p.block_size_tx / p.pos_slot_s,
        power_w=live * p.server_power_w, messages=messages,
        stale=n_slots - int(canonical.sum()), safety_violations=int(violations),
    )


# -- PBFT ---------------------------------------------------------------------------------


def pbft_quorum(n_validators: int) -> int:
    """PBFT quorum ``ceil((n + f + 1) / 2)``, ``f = (n - 1) // 3``: ``2f + 1`` at ``n = 3f + 1``.

    Examples
    --------
    >>> [pbft_quorum(n) for n in (4, 5, 6, 7, 10)]
    [3, 4, 4, 5, 7]
    """
    f = (n_validators - 1) // 3
    return (n_validators + f + 2) // 2


def _pbft_round(
    start_s: float, live: npt.NDArray[np.int64], primary: int, n: int, q: int, n_tx: int,
    p: ConsensusParams, rng: np.random.Generator,
) -> tuple[float, float, int]:
    """One normal-case batch among the live honest replicas ``live`` (primary included).

    Returns the time the primary has committed, the time the client holds
    ``f + 1`` matching replies, and the messages sent.
    """
    m = live.size
    f = (n - 1) // 3
    cpu = (n - 1) * p.pbft_verify_s  # verifying one phase's messages
    pre = start_s + _delays(rng, p, m, n_tx * p.tx_bytes)
    me = int(np.flatnonzero(live == primary)[0])
    pre[me] = start_s
    backups = np.arange(m) != me
    # PREPARE: backups broadcast; replica k needs q - 1 of them (its own counts)
    prep_arrive = pre[:, None] + cpu + _delays(rng, p, (m, m), 0.0)
    np.fill_diagonal(prep_arrive, pre)
    prep_arrive = prep_arrive[backups]
    prepared = np.maximum(pre, np.partition(prep_arrive, q - 2, axis=0)[q - 2]) + cpu
    # COMMIT: everyone broadcasts; committed after q commits (its own counts)
    com_arrive = prepared[:, None] + _delays(rng, p, (m, m), 0.0)
    np.fill_diagonal(com_arrive, prepared)
    committed = np.partition(com_arrive, q - 1, axis=0)[q - 1] + cpu
    replies = committed + _delays(rng, p, m, 0.0)
    confirmed = float(np.partition(replies, f)[f])
    messages = (n - 1) + (m - 1) * (n - 1) + m * (n - 1) + m
    return float(committed[me]), confirmed, messages


def simulate_pbft(
    load_tx_per_s: float, n_validators: int, faults: Faults, rng: np.random.Generator,
    params: ConsensusParams = DEFAULT_PARAMS,
) -> ConsensusRun:
    """PBFT with batching, view changes, crashed and Byzantine replicas.

    Examples
    --------
    >>> safe = simulate_pbft(50.0, 4, Faults(byzantine=1), np.random.default_rng(1))
    >>> broken = simulate_pbft(50.0, 4, Faults(byzantine=2), np.random.default_rng(1))
    >>> safe.safety_violations, safe.live, broken.safety_violations > 0
    (0, True, True)
    """
    _check(load_tx_per_s, n_validators, faults)
    p, n = params, n_validators
    roles = _roles(n, faults, rng)
    arrivals = _arrivals(load_tx_per_s, p.duration_s, rng)
    q = pbft_quorum(n)
    live = np.flatnonzero(roles == _HONEST)
    b = faults.byzantine
    fork_possible = live.size // 2 + b >= q  # the adversary's even split of the honest

    t, view, failures, taken = 0.0, 0, 0, 0
    view_changes = violations = 0
    messages = 0.0
    counts: list[int] = []
    starts: list[float] = []
    confirms: list[float] = []
    while t < p.horizon_s:
        if taken == arrivals.size:
            break
        t = max(t, float(arrivals[taken]))
        if t >= p.horizon_s:
            break
        n_tx = min(p.block_size_tx, int(np.searchsorted(arrivals, t, side="right")) - taken)
        primary = view % n
        role = roles[primary]
        if role == _HONEST and live.size >= q:
            done_s, confirm_s, sent = _pbft_round(t, live, primary, n, q, n_tx, p, rng)
        elif role == _BYZANTINE and fork_possible:
            # two conflicting batches, each committed by one half of the honest replicas
            voters = np.flatnonzero(roles != _CRASHED)
            done_s, confirm_s, sent = _pbft_round(t, voters, primary, n, q, n_tx, p, rng)
            violations += 1
        else:  # crashed or equivocating primary, or no honest quorum: time out, change view
            t += p.pbft_view_timeout_s * 2.0 ** min(failures, _MAX_BACKOFF_DOUBLINGS)
            failures += 1
            view += 1
            view_changes += 1
            messages += live.size * (n - 1) + (n - 1)
            continue
        failures = 0
        messages += sent
        counts.append(n_tx)
        starts.append(t)
        confirms.append(confirm_s)
        taken += n_tx
        t = max(done_s, t + p.pbft_batch_interval_s)
    return _run(
        "PBFT", load_tx_per_s, n, faults, p, arrivals, np.asarray(counts, dtype=np.int64),
        np.asarray(starts), np.asarray(confirms),
        capacity=p.block_size_tx / p.pbft_batch_interval_s,
        power_w=np.count_nonzero(roles != _CRASHED) * p.server_power_w,
        messages=messages, view_changes=view_changes, safety_violations=violations,
    )


# -- double spending ----------------------------------------------------------------------


def _check_attack(q: float, z: int) -> None:
    if not math.isfinite(q) or not 0 <= q <= 1:
        raise InputError("q", f"must be an attacker hash share in [0, 1], got {q}")
    if isinstance(z, bool) or not isinstance(z, int | np.integer) or z < 0:
        raise InputError("z", f"must be a non-negative integer, got {z}")


def nakamoto_double_spend(q: float, z: int) -> float:
    """Nakamoto's (2008, section 11) probability that an attacker with hash share ``q``
    ever catches up from ``z`` blocks behind; attacker progress taken as Poisson.

    Examples
    --------
    >>> round(nakamoto_double_spend(0.1, 5), 7), round(nakamoto_double_spend(0.3, 10), 7)
    (0.0009137, 0.0416605)
    """
    _check_attack(q, z)
    p = 1.0 - q
    if q >= p:
        return 1.0
    k = np.arange(z + 1)
    progress = stats.poisson.pmf(k, z * q / p)
    return float(1.0 - np.sum(progress * (1.0 - (q / p) ** (z - k))))


def double_spend_probability(q: float, z: int) -> float:
    """The same race with the attacker's progress counted exactly (negative binomial:
    attacker blocks found while the honest network finds ``z``), as in Rosenfeld (2014).

    Examples
    --------
    >>> round(double_spend_probability(0.1, 5), 6)  # Poisson approximation: 0.000914
    0.001782
    """
    _check_attack(q, z)
    p = 1.0 - q
    if q >= p:
        return 1.0
    if z == 0:
        return 1.0
    k = np.arange(z + 1)
    progress = stats.nbinom.pmf(k, z, p)
    return float(1.0 - np.sum(progress * (1.0 - (q / p) ** (z - k))))


def simulate_double_spend(q: float, z: int, n_trials: int, rng: np.random.Generator) -> float:
    """Monte Carlo of the race: block by block, until the attacker draws level or
    falls 80 blocks behind (a bias below ``(q/p)^80``); the success fraction.

    Examples
    --------
    >>> 0.0 < simulate_double_spend(0.3, 5, 2000, np.random.default_rng(0)) < 0.5
    True
    """
    _check_attack(q, z)
    if n_trials < 1:
        raise InputError("n_trials", f"must be positive, got {n_trials}")
    if q >= 0.5 or z == 0:
        return 1.0
    behind = z - rng.negative_binomial(z, 1.0 - q, n_trials)  # after the honest z blocks
    racing = behind > 0
    while racing.any():
        step = np.where(rng.random(int(racing.sum())) < q, -1, 1)
        behind[racing] += step
        racing &= (behind > 0) & (behind < 80)
    return float(np.mean(behind <= 0))


# -- comparison ---------------------------------------------------------------------------


def compare_consensus(
    load_tx_per_s: float | Sequence[float], n_validators: int, faults: Faults,
    rng: np.random.Generator, params: ConsensusParams = DEFAULT_PARAMS,
) -> pd.DataFrame:
    """PoW, PoS and PBFT on the same load(s): one row per (load, protocol).

    Each protocol draws from its own child of ``rng`` (``rng.spawn``), so a
    change to one model leaves the others' draws alone.

    Examples
    --------
    >>> table = compare_consensus([5.0, 20.0], 7, Faults(crashed=1), np.random.default_rng(0))
    >>> table[["load_tx_per_s", "protocol"]].values.tolist()[:3]
    [[5.0, 'PoW'], [5.0, 'PoS'], [5.0, 'PBFT']]
    >>> bool((table.throughput_tx_per_s > 0).all())
    True
    """
    loads = [load_tx_per_s] if isinstance(load_tx_per_s, int | float) else list(load_tx_per_s)
    rows = []
    for load in loads:
        children = rng.spawn(3)
        for sim, child in zip((simulate_pow, simulate_pos, simulate_pbft), children, strict=True):
            rows.append(asdict(sim(float(load), n_validators, faults, child, params)))
    return pd.DataFrame(rows)


def plot_consensus(table: pd.DataFrame) -> Figure:
    """Throughput, p95 latency, energy per transaction and messages per block against
    load, one line per protocol (a table from :func:`compare_consensus`).

    Examples
    --------
    >>> table = compare_consensus([5.0, 20.0], 4, Faults(), np.random.default_rng(0))
    >>> [ax.get_ylabel() for ax in plot_consensus(table).axes][:2]
    ['throughput (tx/s)', 'latency p95 (s)']
    """
    fig = Figure(figsize=(10, 7), layout="constrained")
    panels = [
        ("throughput_tx_per_s", "throughput (tx/s)", "linear"),
        ("latency_p95_s", "latency p95 (s)", "log"),
        ("energy_per_tx_j", "energy per tx (J)", "log"),
        ("messages_per_block", "messages per block", "log"),
    ]
    for ax, (column, label, scale) in zip(fig.subplots(2, 2).ravel(), panels, strict=True):
        for protocol, rows in table.groupby("protocol", sort=False):
            rows = rows.sort_values("load_tx_per_s")
            values = rows[column].replace([np.inf, -np.inf], np.nan)
            ax.plot(rows["load_tx_per_s"], values, marker="o", label=str(protocol))
        ax.set_xlabel("offered load (tx/s)")
        ax.set_ylabel(label)
        ax.set_yscale(scale)
        ax.grid(alpha=0.3)
    fig.axes[0].legend()
    n = table["n_validators"].iloc[0] if len(table) else 0
    fig.suptitle(f"consensus under load: {n} validators")
    return fig
