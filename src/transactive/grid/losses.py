"""Losses and marginal loss factors from the AC power flow.

:func:`ac_power_flow` solves the full AC power flow (Newton-Raphson in polar
form on the bus admittance matrix, MATPOWER's branch model with taps, phase
shifters, line charging and shunts), for radial and meshed networks alike.
The reference bus is the slack and keeps its angle from the case (``va_deg``,
as in MATPOWER); buses of type 2 with an in-service generator hold their
voltage set point (PV); every other bus is PQ. The tests hold it, on every
built-in case, against PYPOWER's Newton power flow and pandapower's ``runpp``.

:func:`marginal_loss_factors` gives, for every bus, the change in total
active losses per MW more injected at that bus, the slack taking up the
balance: ``mlf_k = dLoss/dP_k`` (0 at the slack bus; negative where more
injection relieves the lines, as at the far end of a loaded feeder). The
method is the adjoint of the power-flow Jacobian at the solution, exact to
first order: with ``F(x) = 0`` the power-flow equations in the voltage
angles and magnitudes ``x`` and ``P_s(x)`` the slack's injection, the total
loss is ``P_s + sum_k P_k``, so ``dLoss/dP_k = 1 + dP_s/dP_k`` and one sparse
solve ``J^T w = grad P_s`` gives ``dP_s/dP_k = w_k`` for every bus at once
(the reactive factors ``dLoss/dQ_k`` come from the same solve). The tests
check the factors against finite differences of pandapower's ``runpp`` and
against the loss parts of the DistFlow SOC prices.

A price at the slack ``pi`` becomes ``pi * (1 - mlf_k)`` at bus ``k`` (the
marginal cost of serving load there, when no other limit binds).

Examples
--------
>>> from transactive.grid.network import Network
>>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
...               branch={"from_bus": [1], "to_bus": [2], "r_pu": [0.05], "x_pu": [0.04]},
...               gen={"bus": [1], "p_max_mw": [10.0]},
...               load={"bus": [2], "p_mw": [40.0], "q_mvar": [20.0]})
>>> pf = ac_power_flow(net)
>>> round(pf.losses_mw, 3), pf.vm_pu.round(4).tolist()
(1.06, [1.0, 0.9711])
>>> marginal_loss_factors(net).round(4).tolist()
[0.0, -0.0436]
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from transactive.errors import SolverError
from transactive.grid.network import Network, bus_values

__all__ = ["LossSensitivity", "PowerFlow", "ac_power_flow", "loss_sensitivities",
           "marginal_loss_factors"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class PowerFlow:
    """An AC power-flow solution (bus arrays in position order, branch arrays
    in row order with ``nan`` for branches out of service).

    ``p_inj_mw``/``q_inj_mvar`` are the net injections at the solution
    (generation minus load, the slack's and PV buses' reactive power as
    solved); ``loss_mw`` is each branch's active loss.
    """

    vm_pu: Array
    va_deg: Array
    p_inj_mw: Array
    q_inj_mvar: Array
    loss_mw: Array
    iterations: int

    @property
    def losses_mw(self) -> float:
        """Total active losses, MW (the sum of all injections)."""
        return float(self.p_inj_mw.sum())


@dataclass(frozen=True, eq=False)
class LossSensitivity:
    """Marginal loss factors at an operating point: ``dloss_dp[k]`` and
    ``dloss_dq[k]`` are the MW of extra losses per MW / MVAr more injected at
    bus position ``k`` (0 where the injection is not free: the slack, and
    reactive power at PV buses)."""

    dloss_dp: Array
    dloss_dq: Array
    power_flow: PowerFlow


_DENSE_BUSES = 200
"""Networks up to this size use dense algebra: faster than sparse overheads."""
_YBUS: weakref.WeakKeyDictionary[Network, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _ybus(net: Network) -> tuple[Any, sp.csr_matrix, sp.csr_matrix, npt.NDArray[np.int64]]:
    """Bus admittance matrix (dense for small networks) and the from/to branch
    admittances (MATPOWER), built once per network."""
    cached = _YBUS.get(net)
    if cached is None:
        ybus, yf, yt, on = _build_ybus(net)
        cached = _YBUS[net] = (ybus.toarray() if net.n_bus <= _DENSE_BUSES else ybus,
                               yf, yt, on)
    return cached


def _build_ybus(net: Network) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix,
                                       npt.NDArray[np.int64]]:
    on = np.flatnonzero(net.branch["in_service"].to_numpy())
    br = net.branch.iloc[on]
    n, nb = net.n_bus, on.size
    ys = 1.0 / (br["r_pu"].to_numpy() + 1j * br["x_pu"].to_numpy())
    bc = br["b_pu"].to_numpy()
    tap = br["tap"].to_numpy() * np.exp(1j * np.deg2rad(br["shift_deg"].to_numpy()))
    ytt = ys + 0.5j * bc
    yff = ytt / (tap * np.conj(tap))
    yft = -ys / np.conj(tap)
    ytf = -ys / tap
    f, t = net.from_position[on], net.to_position[on]
    rows = np.arange(nb)
    cf = sp.csr_matrix((np.ones(nb), (rows, f)), shape=(nb, n))
    ct = sp.csr_matrix((np.ones(nb), (rows, t)), shape=(nb, n))
    yf = sp.diags(yff) @ cf + sp.diags(yft) @ ct
    yt = sp.diags(ytf) @ cf + sp.diags(ytt) @ ct
    ysh = (net.bus["gs_mw"].to_numpy() + 1j * net.bus["bs_mvar"].to_numpy()) / net.base_mva
    ybus = (cf.T @ yf + ct.T @ yt + sp.diags(ysh)).tocsr()
    return ybus, yf.tocsr(), yt.tocsr(), on


def _ds_dv(ybus: Any, v: npt.NDArray[np.complex128]) -> tuple[Any, Any]:
    """Derivatives of the complex injections with respect to voltage angle and
    magnitude (polar form); dense for a dense ``ybus``."""
    ibus = ybus @ v
    if isinstance(ybus, np.ndarray):
        vn = v / np.abs(v)
        ds_dvm = v[:, None] * np.conj(ybus * vn[None, :]) + np.diag(np.conj(ibus) * vn)
        ds_dva = 1j * v[:, None] * np.conj(np.diag(ibus) - ybus * v[None, :])
        return ds_dva, ds_dvm
    dv, di = sp.diags(v), sp.diags(ibus)
    dvn = sp.diags(v / np.abs(v))
    ds_dvm = dv @ (ybus @ dvn).conj() + di.conj() @ dvn
    ds_dva = 1j * dv @ (di - ybus @ dv).conj()
    return ds_dva.tocsr(), ds_dvm.tocsr()


def _jacobian(ds_dva: Any, ds_dvm: Any, pvpq: npt.NDArray[np.int64],
              pq: npt.NDArray[np.int64]) -> Any:
    """The Newton Jacobian of the mismatches (P at PV and PQ buses, Q at PQ)."""
    if isinstance(ds_dva, np.ndarray):
        return np.block([[ds_dva[np.ix_(pvpq, pvpq)].real, ds_dvm[np.ix_(pvpq, pq)].real],
                         [ds_dva[np.ix_(pq, pvpq)].imag, ds_dvm[np.ix_(pq, pq)].imag]])
    return sp.bmat([[ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real],
                    [ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag]], format="csc")


def _solve(jac: Any, rhs: Array, *, transpose: bool = False) -> Array:
    if isinstance(jac, np.ndarray):
        try:
            return np.asarray(np.linalg.solve(jac.T if transpose else jac, rhs), dtype=np.float64)
        except np.linalg.LinAlgError:
            return np.full(rhs.shape, np.nan)
    return spla.spsolve(jac.T.tocsc() if transpose else jac, rhs)


def _injections(net: Network, p_inj_mw: npt.ArrayLike | None,
                q_inj_mvar: npt.ArrayLike | None) -> tuple[Array, Array]:
    n = net.n_bus
    gen_on = net.gen["in_service"].to_numpy()
    load_q = np.bincount(net.load_position, net.load["q_mvar"].to_numpy(), n)
    load_p = np.bincount(net.load_position, net.load["p_mw"].to_numpy(), n)
    default_p = np.bincount(net.gen_position[gen_on], net.gen["p_mw"].to_numpy()[gen_on], n)
    default_q = np.bincount(net.gen_position[gen_on], net.gen["q_mvar"].to_numpy()[gen_on], n)
    return (bus_values("p_inj_mw", p_inj_mw, n, default_p - load_p),
            bus_values("q_inj_mvar", q_inj_mvar, n, default_q - load_q))


def _bus_types(net: Network) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64], Array]:
    """Slack position, PV and PQ positions, and the voltage set points."""
    ref = net.ref_position
    gen_on = net.gen["in_service"].to_numpy()
    vset = net.bus["vm_pu"].to_numpy().copy()
    gpos = net.gen_position[gen_on]
    vset[gpos] = net.gen["vm_pu"].to_numpy()[gen_on]
    pv = net.pv_with_generator[net.pv_with_generator != ref]
    pq = np.setdiff1d(np.arange(net.n_bus), np.r_[pv, ref])
    return ref, pv, pq, vset


def ac_power_flow(
    network: Network,
    p_inj_mw: npt.ArrayLike | None = None,
    q_inj_mvar: npt.ArrayLike | None = None,
    *,
    tol_mva: float = 1e-9,
    max_iter: int = 30,
) -> PowerFlow:
    """Solve the AC power flow by Newton-Raphson.

    Parameters
    ----------
    network : Network
        A connected network; the reference bus is the slack.
    p_inj_mw, q_inj_mvar : array of length ``n_bus``, optional
        Net injection per bus position (generation minus load). Defaults:
        the generators' set points minus the loads. The slack's entries, and
        the reactive entries of PV buses, are ignored (solved for).
    tol_mva : float
        Largest power mismatch accepted, MVA.
    max_iter : int
        Newton iterations before giving up.

    Raises
    ------
    SolverError
        If Newton's method does not converge (often: a load the network
        cannot carry).
    """
    network.check_connected()
    ybus, yf, yt, on = _ybus(network)
    p_spec, q_spec = _injections(network, p_inj_mw, q_inj_mvar)
    ref, pv, pq, vset = _bus_types(network)
    base = network.base_mva
    s_spec = (p_spec + 1j * q_spec) / base
    # flat start at the reference bus's angle, which stays fixed (MATPOWER)
    va = np.full(network.n_bus, np.deg2rad(network.bus["va_deg"].to_numpy()[ref]))
    vm = np.where(np.isin(np.arange(network.n_bus), pv) | (np.arange(network.n_bus) == ref),
                  vset, 1.0)
    pvpq = np.r_[pv, pq]
    n1 = pvpq.size
    v = vm * np.exp(1j * va)
    for it in range(max_iter + 1):
        mis = v * np.conj(ybus @ v) - s_spec
        f = np.r_[mis.real[pvpq], mis.imag[pq]]
        worst = float(np.abs(f).max(initial=0.0)) * base
        if worst < tol_mva:
            break
        if it == max_iter:
            raise SolverError(f"the AC power flow did not converge in {max_iter} iterations "
                              f"(largest mismatch {worst:.3g} MVA)")
        ds_dva, ds_dvm = _ds_dv(ybus, v)
        dx = _solve(_jacobian(ds_dva, ds_dvm, pvpq, pq), -f)
        if not np.isfinite(dx).all():
            raise SolverError("the AC power flow hit a singular Jacobian")
        va[pvpq] += dx[:n1]
        vm[pq] += dx[n1:]
        v = vm * np.exp(1j * va)
    s = v * np.conj(ybus @ v) * base
    loss = np.full(network.n_branch, np.nan)
    s_from = v[network.from_position[on]] * np.conj(yf @ v)
    s_to = v[network.to_position[on]] * np.conj(yt @ v)
    loss[on] = (s_from + s_to).real * base
    return PowerFlow(vm_pu=np.abs(v), va_deg=np.rad2deg(np.angle(v)), p_inj_mw=s.real,
                     q_inj_mvar=s.imag, loss_mw=loss, iterations=it)


def loss_sensitivities(
    network: Network,
    p_inj_mw: npt.ArrayLike | None = None,
    q_inj_mvar: npt.ArrayLike | None = None,
) -> LossSensitivity:
    """Marginal loss factors for active and reactive injections at every bus,
    by the adjoint of the power-flow Jacobian (see the module notes).

    Parameters are those of :func:`ac_power_flow`.
    """
    pf = ac_power_flow(network, p_inj_mw, q_inj_mvar)
    ybus, _, _, _ = _ybus(network)
    ref, pv, pq, _ = _bus_types(network)
    pvpq = np.r_[pv, pq]
    v = (pf.vm_pu * np.exp(1j * np.deg2rad(pf.va_deg))).astype(np.complex128)
    ds_dva, ds_dvm = _ds_dv(ybus, v)
    jac = _jacobian(ds_dva, ds_dvm, pvpq, pq)
    if isinstance(ds_dva, np.ndarray):
        grad = np.r_[ds_dva[ref, pvpq].real, ds_dvm[ref, pq].real]
    else:
        grad = np.r_[ds_dva[[ref]][:, pvpq].real.toarray().ravel(),
                     ds_dvm[[ref]][:, pq].real.toarray().ravel()]
    w = _solve(jac, grad, transpose=True)
    dp, dq = np.zeros(network.n_bus), np.zeros(network.n_bus)
    # F(x, u) = g(x) - u = 0 gives dx/du = J^-1, so dP_slack/du = J^-T grad = w;
    # the loss is P_slack + sum of the other injections: dLoss/dP_k = 1 + w_k
    dp[pvpq] = 1.0 + w[:pvpq.size]
    dq[pq] = w[pvpq.size:]
    return LossSensitivity(dloss_dp=dp, dloss_dq=dq, power_flow=pf)


def marginal_loss_factors(
    network: Network,
    p_inj_mw: npt.ArrayLike | None = None,
    q_inj_mvar: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Marginal loss factor of active power at every bus position:
    ``dLoss/dP_k`` (MW per MW), 0 at the slack.

    Parameters are those of :func:`ac_power_flow`: the operating point as
    net injections per bus (defaults: the network's own generators and
    loads). A delivered price at bus ``k`` is ``price_slack * (1 - mlf_k)``.
    """
    return loss_sensitivities(network, p_inj_mw, q_inj_mvar).dloss_dp
