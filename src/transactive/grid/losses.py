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

import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
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


@dataclass(frozen=True, eq=False)
class _Model:
    """Everything the power flow of one network needs that does not depend on
    the injections, built once per network (:func:`_model`).

    ``pvpq`` is ``pv`` then ``pq``, so the PQ buses are its last ``pq.size``
    entries; the unknowns are the angles at ``pvpq`` then the magnitudes at
    ``pq``. Dense networks keep ``y_sub`` (the rows and columns of ``pvpq``
    of the Y-bus) and the flat positions of the Jacobian's four block
    diagonals in ``diag``. The Jacobian at the flat start does not depend on
    the injections either: ``flat_step`` solves with its factors (None if it
    is singular), so the first Newton step costs one triangular solve.
    """

    ybus: Any
    yf: sp.csr_matrix
    yt: sp.csr_matrix
    on: npt.NDArray[np.int64]
    ref: int
    pv: npt.NDArray[np.int64]
    pq: npt.NDArray[np.int64]
    pvpq: npt.NDArray[np.int64]
    va_start: Array
    vm_start: Array
    p_default_mw: Array
    q_default_mvar: Array
    base_mva: float
    y_sub: npt.NDArray[np.complex128] | None
    y_ref: npt.NDArray[np.complex128] | None
    diag: tuple[npt.NDArray[np.int64], ...]
    flat_step: Callable[[Array], Array] | None = None


_MODELS: weakref.WeakKeyDictionary[Network, _Model] = weakref.WeakKeyDictionary()


def _model(net: Network) -> _Model:
    """The cached :class:`_Model` of ``net`` (networks are immutable), built and
    checked for connectivity on first use."""
    model = _MODELS.get(net)
    if model is None:
        model = _MODELS[net] = _build_model(net)
    return model


def _build_model(net: Network) -> _Model:
    net.check_connected()
    n = net.n_bus
    ybus, yf, yt, on = _build_ybus(net)
    ref = net.ref_position
    gen_on = net.gen["in_service"].to_numpy()
    gpos = net.gen_position[gen_on]
    vset = net.bus["vm_pu"].to_numpy().astype(np.float64)
    vset[gpos] = net.gen["vm_pu"].to_numpy()[gen_on]
    pv = net.pv_with_generator[net.pv_with_generator != ref]
    pq = np.setdiff1d(np.arange(n), np.r_[pv, ref])
    pvpq = np.r_[pv, pq]
    # flat start at the reference bus's angle, which stays fixed (MATPOWER)
    va = np.full(n, np.deg2rad(net.bus["va_deg"].to_numpy()[ref]))
    vm = np.ones(n)
    vm[pv], vm[ref] = vset[pv], vset[ref]
    load_p = np.bincount(net.load_position, net.load["p_mw"].to_numpy(), n)
    load_q = np.bincount(net.load_position, net.load["q_mvar"].to_numpy(), n)
    p_default = np.bincount(gpos, net.gen["p_mw"].to_numpy()[gen_on], n) - load_p
    q_default = np.bincount(gpos, net.gen["q_mvar"].to_numpy()[gen_on], n) - load_q
    y_sub = y_ref = None
    diag: tuple[npt.NDArray[np.int64], ...] = ()
    if n <= _DENSE_BUSES:
        ybus = ybus.toarray()
        y_sub, y_ref = ybus[np.ix_(pvpq, pvpq)], ybus[ref, pvpq]
        n1, m, k = pvpq.size, pvpq.size + pq.size, np.arange(pq.size)
        at_pq = pv.size + k  # positions of the PQ buses within pvpq
        diag = (np.arange(n1) * (m + 1),          # dP/dva
                at_pq * m + n1 + k,                # dP/dvm
                (n1 + k) * m + at_pq,              # dQ/dva
                (n1 + k) * (m + 1))                # dQ/dvm
    model = _Model(ybus=ybus, yf=yf, yt=yt, on=on, ref=ref, pv=pv, pq=pq, pvpq=pvpq,
                   va_start=va, vm_start=vm, p_default_mw=p_default,
                   q_default_mvar=q_default, base_mva=net.base_mva, y_sub=y_sub, y_ref=y_ref,
                   diag=diag)
    v = vm * np.exp(1j * va)
    return replace(model, flat_step=_factorize(_jacobian(model, v, v * np.conj(ybus @ v))[0]))


def _factorize(jac: Any) -> Callable[[Array], Array] | None:
    """A solver of ``jac x = b`` from its LU factors, None if ``jac`` is singular."""
    if isinstance(jac, np.ndarray):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            lu = sla.lu_factor(jac, check_finite=False)
        if not np.all(np.diag(lu[0])):
            return None
        return partial(sla.lu_solve, lu, check_finite=False)
    try:
        return spla.splu(jac).solve
    except RuntimeError:  # "Factor is exactly singular"
        return None


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


def _sparse_ds_dv(ybus: sp.csr_matrix,
                  v: npt.NDArray[np.complex128]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Derivatives of the complex injections with respect to voltage angle and
    magnitude (polar form, MATPOWER's ``dSbus_dV``), sparse."""
    ibus = ybus @ v
    dv, di = sp.diags(v), sp.diags(ibus)
    dvn = sp.diags(v / np.abs(v))
    ds_dvm = dv @ (ybus @ dvn).conj() + di.conj() @ dvn
    ds_dva = 1j * dv @ (di - ybus @ dv).conj()
    return ds_dva.tocsr(), ds_dvm.tocsr()


def _jacobian(model: _Model, v: npt.NDArray[np.complex128],
              s: npt.NDArray[np.complex128]) -> tuple[Any, Array]:
    """The Newton Jacobian of the mismatches (P at PV and PQ buses, Q at PQ; in
    the angles at ``pvpq`` and the magnitudes at ``pq``) at voltages ``v`` with
    injections ``s = v * conj(Y v)`` (pu), and the gradient of the slack's
    active injection in the same unknowns."""
    pvpq, pq, ref = model.pvpq, model.pq, model.ref
    if model.y_sub is None or model.y_ref is None:
        ds_dva, ds_dvm = _sparse_ds_dv(model.ybus, v)
        jac = sp.bmat([[ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real],
                       [ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag]], format="csc")
        grad = np.r_[ds_dva[[ref]][:, pvpq].real.toarray().ravel(),
                     ds_dvm[[ref]][:, pq].real.toarray().ravel()]
        return jac, grad
    # dS_i/dva_j = j S_i [i = j] - j M_ij and dS_i/d|v_j| = M_ij / |v_j| + S_i / |v_i| [i = j],
    # with M_ij = v_i conj(Y_ij v_j): MATPOWER's dSbus_dV, restricted to the unknowns
    npv, n1 = model.pv.size, pvpq.size
    m = n1 + pq.size
    vr = v[pvpq]
    vm = np.abs(vr[npv:])
    mij = vr[:, None] * np.conj(model.y_sub * vr)
    jac = np.empty((m, m))
    jac[:n1, :n1] = mij.imag
    jac[:n1, n1:] = mij.real[:, npv:] / vm
    jac[n1:, :n1] = -mij.real[npv:]
    jac[n1:, n1:] = mij.imag[npv:, npv:] / vm
    flat, (d_pa, d_pm, d_qa, d_qm) = jac.ravel(), model.diag
    sr = s[pvpq]
    sq = sr[npv:]
    flat[d_pa] -= sr.imag
    flat[d_pm] += sq.real / vm
    flat[d_qa] += sq.real
    flat[d_qm] += sq.imag / vm
    mref = v[ref] * np.conj(model.y_ref * vr)
    return jac, np.r_[mref.imag, mref.real[npv:] / vm]


def _solve(jac: Any, rhs: Array, *, transpose: bool = False) -> Array:
    if isinstance(jac, np.ndarray):
        try:
            return np.asarray(np.linalg.solve(jac.T if transpose else jac, rhs), dtype=np.float64)
        except np.linalg.LinAlgError:
            return np.full(rhs.shape, np.nan)
    return spla.spsolve(jac.T.tocsc() if transpose else jac, rhs)


def _newton(model: _Model, p_inj_mw: npt.ArrayLike | None, q_inj_mvar: npt.ArrayLike | None,
            tol_mva: float, max_iter: int) -> tuple[npt.NDArray[np.complex128],
                                                    npt.NDArray[np.complex128], int]:
    """Newton-Raphson from the flat start: the voltages, the complex injections
    (pu) at the solution, and the number of iterations."""
    n = model.va_start.size
    base, ybus, pvpq, pq = model.base_mva, model.ybus, model.pvpq, model.pq
    p_spec = bus_values("p_inj_mw", p_inj_mw, n, model.p_default_mw)
    q_spec = bus_values("q_inj_mvar", q_inj_mvar, n, model.q_default_mvar)
    s_spec = (p_spec + 1j * q_spec) / base
    va, vm = model.va_start.copy(), model.vm_start.copy()
    n1 = pvpq.size
    v = vm * np.exp(1j * va)
    for it in range(max_iter + 1):
        s = v * np.conj(ybus @ v)
        mis = s - s_spec
        f = np.r_[mis.real[pvpq], mis.imag[pq]]
        worst = float(np.abs(f).max(initial=0.0)) * base
        if worst < tol_mva:
            return v, s, it
        if it == max_iter:
            raise SolverError(f"the AC power flow did not converge in {max_iter} iterations "
                              f"(largest mismatch {worst:.3g} MVA)")
        if it == 0 and model.flat_step is not None:
            dx = model.flat_step(-f)
        else:
            dx = _solve(_jacobian(model, v, s)[0], -f)
        if not np.isfinite(dx).all():
            raise SolverError("the AC power flow hit a singular Jacobian")
        va[pvpq] += dx[:n1]
        vm[pq] += dx[n1:]
        v = vm * np.exp(1j * va)
    raise AssertionError("unreachable")  # pragma: no cover


def _power_flow(network: Network, model: _Model, v: npt.NDArray[np.complex128],
                s: npt.NDArray[np.complex128], iterations: int) -> PowerFlow:
    base, on = model.base_mva, model.on
    loss = np.full(network.n_branch, np.nan)
    s_from = v[network.from_position[on]] * np.conj(model.yf @ v)
    s_to = v[network.to_position[on]] * np.conj(model.yt @ v)
    loss[on] = (s_from + s_to).real * base
    return PowerFlow(vm_pu=np.abs(v), va_deg=np.rad2deg(np.angle(v)), p_inj_mw=s.real * base,
                     q_inj_mvar=s.imag * base, loss_mw=loss, iterations=iterations)


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
    model = _model(network)
    v, s, it = _newton(model, p_inj_mw, q_inj_mvar, tol_mva, max_iter)
    return _power_flow(network, model, v, s, it)


def _adjoint(model: _Model, v: npt.NDArray[np.complex128],
             s: npt.NDArray[np.complex128]) -> tuple[Array, Array]:
    """``dLoss/dP`` and ``dLoss/dQ`` per bus at the solution ``v``."""
    jac, grad = _jacobian(model, v, s)
    w = _solve(jac, grad, transpose=True)
    n, n1 = v.size, model.pvpq.size
    dp, dq = np.zeros(n), np.zeros(n)
    # F(x, u) = g(x) - u = 0 gives dx/du = J^-1, so dP_slack/du = J^-T grad = w;
    # the loss is P_slack + sum of the other injections: dLoss/dP_k = 1 + w_k
    dp[model.pvpq] = 1.0 + w[:n1]
    dq[model.pq] = w[n1:]
    return dp, dq


def loss_sensitivities(
    network: Network,
    p_inj_mw: npt.ArrayLike | None = None,
    q_inj_mvar: npt.ArrayLike | None = None,
) -> LossSensitivity:
    """Marginal loss factors for active and reactive injections at every bus,
    by the adjoint of the power-flow Jacobian (see the module notes).

    Parameters are those of :func:`ac_power_flow`.
    """
    model = _model(network)
    v, s, it = _newton(model, p_inj_mw, q_inj_mvar, 1e-9, 30)
    dp, dq = _adjoint(model, v, s)
    return LossSensitivity(dloss_dp=dp, dloss_dq=dq,
                           power_flow=_power_flow(network, model, v, s, it))


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
    model = _model(network)
    v, s, _ = _newton(model, p_inj_mw, q_inj_mvar, 1e-9, 30)
    return _adjoint(model, v, s)[0]
