"""Network matrices of the DC (linearised, lossless) power-flow model.

All matrices keep one row per branch of ``net.branch`` and one column per bus
position of ``net.bus``; an out-of-service branch has an all-zero row. Flows
are from-to, in MW; injections are generation minus load, in MW.

DC model (as MATPOWER ``makeBdc``): branch ``k`` with reactance ``x``, tap
``t`` and phase shift ``phi`` carries ``f_k = b_k (theta_from - theta_to - phi)``
with ``b_k = 1 / (x t)`` (per unit), so ``f = Bf theta + f_shift`` and the bus
balance is ``B theta = p - A^T f_shift``.

Examples
--------
>>> from transactive.grid.network import Network
>>> net = Network(bus={"bus": [1, 2, 3], "type": [3, 1, 1]},
...               branch={"from_bus": [1, 2, 1], "to_bus": [2, 3, 3], "x_pu": [0.1, 0.1, 0.1]},
...               gen={"bus": [1], "p_max_mw": [10.0]}, load={"bus": [3], "p_mw": [1.0]})
>>> ptdf(net).round(4).tolist()  # 1 MW injected at a bus, taken out at bus 1
[[0.0, -0.6667, -0.3333], [0.0, 0.3333, -0.3333], [0.0, -0.3333, -0.6667]]
>>> lodf(net).matrix.round(4).tolist()  # outage of the column branch
[[-1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from transactive.errors import InputError
from transactive.grid.network import Network

__all__ = [
    "LODF",
    "DCPowerFlow",
    "bbus",
    "bf",
    "branch_susceptance",
    "incidence",
    "lodf",
    "ptdf",
    "radial_branches",
    "shift_injection",
    "slack_weights",
]

Slack = int | npt.ArrayLike | None


def incidence(net: Network) -> sp.csr_matrix:
    """Branch-bus incidence ``A`` (n_branch x n_bus): +1 at the from bus, -1 at
    the to bus; zero rows for out-of-service branches."""
    on = net.column("branch", "in_service").astype(np.float64)
    rows = np.arange(net.n_branch)
    data = np.r_[on, -on]
    return sp.csr_matrix((data, (np.r_[rows, rows], np.r_[net.from_position, net.to_position])),
                         shape=(net.n_branch, net.n_bus))


def branch_susceptance(net: Network) -> npt.NDArray[np.float64]:
    """Series susceptance ``1 / (x_pu * tap)`` per branch, pu (0 when out of service)."""
    on = net.column("branch", "in_service")
    x = net.column("branch", "x_pu") * net.column("branch", "tap")
    return np.where(on, 1.0 / np.where(on, x, 1.0), 0.0)


def bf(net: Network) -> sp.csr_matrix:
    """``Bf = diag(b) A`` (n_branch x n_bus), pu: branch flow per bus angle (rad)."""
    return sp.diags(branch_susceptance(net)) @ incidence(net)


def bbus(net: Network) -> sp.csc_matrix:
    """Bus susceptance matrix ``B = A^T diag(b) A`` (n_bus x n_bus), pu."""
    a = incidence(net)
    return (a.T @ sp.diags(branch_susceptance(net)) @ a).tocsc()


def shift_injection(net: Network) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Flows and bus injections caused by phase shifters, in MW.

    Returns ``(f_shift, p_shift)``: ``f_shift = -b phi base_mva`` per branch and
    ``p_shift = A^T f_shift`` per bus, so that ``f = Bf theta * base + f_shift``
    and ``B theta * base = p - p_shift``.
    """
    phi = np.deg2rad(net.column("branch", "shift_deg"))
    f_shift = -branch_susceptance(net) * phi * net.base_mva
    return f_shift, incidence(net).T @ f_shift


def slack_weights(net: Network, slack: Slack = None) -> npt.NDArray[np.float64]:
    """Slack weights per bus position, summing to 1.

    ``None`` is the reference bus, an int is that bus number, an array gives
    ``n_bus`` weights >= 0 (a distributed slack), normalised here.
    """
    if slack is None:
        out = np.zeros(net.n_bus)
        out[net.ref_position] = 1.0
        return out
    arr = np.asarray(slack, dtype=np.float64)
    if arr.ndim == 0:
        out = np.zeros(net.n_bus)
        out[net.bus_position([int(arr)], "slack")[0]] = 1.0
        return out
    if arr.shape != (net.n_bus,) or not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError("slack", f"weights must be {net.n_bus} finite values >= 0")
    if arr.sum() <= 0:
        raise InputError("slack", "weights must not all be zero")
    return arr / arr.sum()


@dataclass(eq=False)
class DCPowerFlow:
    """The DC power flow of a connected network, factorised once (sparse LU).

    Angles are in radians with the reference bus at 0; flows in MW from -> to.

    Examples
    --------
    >>> from transactive.grid.network import Network
    >>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
    ...               branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]},
    ...               gen={"bus": [1], "p_max_mw": [10.0]}, load={"bus": [2], "p_mw": [5.0]})
    >>> DCPowerFlow(net).flows(np.array([5.0, -5.0])).tolist()
    [5.0]
    """

    net: Network
    bf: sp.csr_matrix = field(init=False, repr=False)
    f_shift: npt.NDArray[np.float64] = field(init=False, repr=False)
    p_shift: npt.NDArray[np.float64] = field(init=False, repr=False)
    _b: npt.NDArray[np.float64] = field(init=False, repr=False)
    _pos: npt.NDArray[np.int64] = field(init=False, repr=False)
    _keep: npt.NDArray[np.int64] = field(init=False, repr=False)
    _lu: Any = field(init=False, repr=False)

    #: columns per triangular solve: one wide solve goes through a threaded
    #: BLAS path that is far slower than narrow ones on a busy machine
    CHUNK = 32

    def __post_init__(self) -> None:
        net = self.net
        net.check_connected()
        n, m = net.n_bus, net.n_branch
        f, t = net.from_position, net.to_position
        b = branch_susceptance(net) * net.base_mva  # MW per rad
        self._b = b
        self.bf = sp.csr_matrix((np.column_stack([b, -b]).ravel(),
                                 np.column_stack([f, t]).ravel(),
                                 np.arange(0, 2 * m + 1, 2)), shape=(m, n))
        self._keep = np.flatnonzero(np.arange(n) != net.ref_position)
        pos = np.full(n, -1, dtype=np.int64)  # position in the reduced system
        pos[self._keep] = np.arange(self._keep.size)
        self._pos = pos
        rows, cols = np.concatenate([f, t, f, t]), np.concatenate([f, t, t, f])
        data = np.concatenate([b, b, -b, -b])
        ok = (pos[rows] >= 0) & (pos[cols] >= 0)
        bred = sp.csc_matrix((data[ok], (pos[rows[ok]], pos[cols[ok]])),
                             shape=(n - 1, n - 1))
        self._lu = (spla.splu(bred, permc_spec="MMD_AT_PLUS_A",
                              options={"SymmetricMode": True}) if self._keep.size else None)
        self.f_shift = -b * np.deg2rad(net.column("branch", "shift_deg"))
        self.p_shift = (np.bincount(f, self.f_shift, n)
                        - np.bincount(t, self.f_shift, n)).astype(np.float64)

    def angles(self, injection_mw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Bus angles, rad, for a balanced injection (MW per bus position)."""
        theta = np.zeros(self.net.n_bus)
        if self._keep.size:
            theta[self._keep] = self._lu.solve((injection_mw - self.p_shift)[self._keep])
        return theta

    def flows(self, injection_mw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Branch flows, MW, for a balanced injection (MW per bus position)."""
        return self.bf @ self.angles(injection_mw) + self.f_shift

    def ptdf_rows(self, branches: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Dense PTDF rows (reference-bus slack) of the given branch rows."""
        out = np.zeros((branches.size, self.net.n_bus))
        if not (self._keep.size and branches.size):
            return out
        # B is symmetric, so row k of Bf B^-1 is B^-1 (column k of Bf^T)
        cols = np.arange(branches.size)
        rhs = np.zeros((self._keep.size, branches.size), order="F")
        b = self._b[branches]
        for ends, sign in ((self.net.from_position, 1.0), (self.net.to_position, -1.0)):
            at = self._pos[ends[branches]]
            ok = at >= 0
            rhs[at[ok], cols[ok]] += sign * b[ok]
        sol = np.empty_like(rhs)
        for j in range(0, branches.size, self.CHUNK):
            sol[:, j:j + self.CHUNK] = self._lu.solve(rhs[:, j:j + self.CHUNK])
        out[:, self._keep] = sol.T
        return out


def ptdf(net: Network, slack: Slack = None) -> npt.NDArray[np.float64]:
    """Power transfer distribution factors (dense, n_branch x n_bus).

    ``ptdf[k, i]`` is the MW flow on branch ``k`` when 1 MW is injected at bus
    position ``i`` and withdrawn at the slack.

    Parameters
    ----------
    net : Network
        A connected network (InputError naming the islands otherwise).
    slack : int, array or None
        ``None``: the reference bus; an int: that bus number; an array of
        ``n_bus`` weights: a distributed slack (withdrawn in proportion).
    """
    weights = slack_weights(net, slack)
    out = DCPowerFlow(net).ptdf_rows(np.arange(net.n_branch))
    return out - (out @ weights)[:, None]


@dataclass(frozen=True)
class LODF:
    """Line outage distribution factors.

    Attributes
    ----------
    matrix : ndarray (n_branch x n_branch)
        ``matrix[l, k]`` is the change of flow on branch ``l`` per MW flowing on
        branch ``k`` before ``k`` is switched out; ``matrix[k, k] = -1``.
        Columns of islanding and out-of-service branches are all zero.
    islanding : ndarray of bool (n_branch)
        Branches whose outage splits the network (their LODF is undefined).
    """

    matrix: npt.NDArray[np.float64]
    islanding: npt.NDArray[np.bool_]


def lodf(net: Network, ptdf_matrix: npt.NDArray[np.float64] | None = None) -> LODF:
    """Line outage distribution factors, with islanding outages flagged.

    Parameters
    ----------
    net : Network
        A connected network.
    ptdf_matrix : ndarray, optional
        ``ptdf(net)`` if already computed (any slack gives the same LODF).
    """
    h_bus = ptdf(net) if ptdf_matrix is None else ptdf_matrix
    h = h_bus[:, net.from_position] - h_bus[:, net.to_position]  # flow per from->to transfer
    on = net.column("branch", "in_service")
    islanding = np.zeros(net.n_branch, dtype=bool)
    islanding[radial_branches(net)] = True
    ok = on & ~islanding
    denom = np.where(ok, 1.0 - np.diag(h), 1.0)
    matrix = np.where(ok[None, :] & on[:, None], h / denom[None, :], 0.0)
    idx = np.flatnonzero(ok)
    matrix[idx, idx] = -1.0
    return LODF(matrix=matrix, islanding=islanding)


def radial_branches(net: Network) -> npt.NDArray[np.int64]:
    """Rows of in-service branches whose outage splits the network (bridges).

    Parallel branches are not bridges. Uses an iterative depth-first search
    (Tarjan's bridge algorithm), linear in the network size.
    """
    on = np.flatnonzero(net.column("branch", "in_service"))
    f, t, n = net.from_position[on], net.to_position[on], net.n_bus
    ends = np.r_[f, t]
    other = np.r_[t, f]
    edge = np.r_[np.arange(on.size), np.arange(on.size)]
    order = np.argsort(ends, kind="stable")
    start = np.searchsorted(ends[order], np.arange(n + 1))
    nbr, nedge = other[order].tolist(), edge[order].tolist()
    starts = start.tolist()
    disc = [-1] * n
    low = [0] * n
    bridges: list[int] = []
    clock = 0
    for root in range(n):
        if disc[root] >= 0:
            continue
        disc[root] = low[root] = clock
        clock += 1
        stack = [(root, -1, starts[root])]
        while stack:
            v, via, i = stack[-1]
            if i < starts[v + 1]:
                stack[-1] = (v, via, i + 1)
                w, e = nbr[i], nedge[i]
                if e == via:
                    continue
                if disc[w] < 0:
                    disc[w] = low[w] = clock
                    clock += 1
                    stack.append((w, e, starts[w]))
                else:
                    low[v] = min(low[v], disc[w])
            else:
                stack.pop()
                if stack:
                    u = stack[-1][0]
                    low[u] = min(low[u], low[v])
                    if low[v] > disc[u]:
                        bridges.append(via)
    return np.sort(on[np.asarray(bridges, dtype=np.int64)])
