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
from scipy.linalg.lapack import dgbsv, dgetrs
from scipy.sparse.csgraph import reverse_cuthill_mckee

from transactive.errors import InputError, SolverError
from transactive.grid.network import Network

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
_CHORD_RATIO = 0.25
"""Newton steps are taken with the flat start's Jacobian (its LU factors kept)
as long as each cuts the largest mismatch at least this much (to a quarter),
then each step factorises its own. Near a feeder's flat start these chord
steps converge linearly but fast, at one triangular solve each: on the IEEE
33-bus feeder a day of operating points takes 9 chord steps, each cutting the
mismatch tenfold, in a quarter of the time of 4 chord steps and 1 Newton step
with its stacked factorisation (the loss factors equal to 2e-10, the
solution's own spread within the 1e-9 MVA tolerance). The ratio bounds the
steps to the tolerance well within ``max_iter``."""


@dataclass(frozen=True, eq=False)
class _Model:
    """Everything the power flow of one network needs that does not depend on
    the injections, built once per network (:func:`_model`).

    ``pvpq`` is ``pv`` then ``pq``, so the PQ buses are its last ``pq.size``
    entries; the unknowns are the angles at ``pvpq`` then the magnitudes at
    ``pq``. The Y-bus is sparse (its products run in scipy's own loops, not
    in a BLAS that may start threads for a stack of operating points); small
    networks (up to ``_DENSE_BUSES``) build dense Jacobians from ``y_sub``
    (the rows and columns of ``pvpq`` of the Y-bus) and ``y_ref`` (the slack's
    row). ``y_sub`` holds only the nonzeros of those rows and columns
    (and their diagonal), at the positions ``sub[0]``, ``sub[1]`` within
    ``pvpq``; ``sub[2:5]`` pick those in the Jacobian's other three blocks (a
    column, a row, both of a PQ bus) and ``sub[5]`` are the flat positions of
    the Jacobian's nonzeros, block by block (:func:`_values`), ``diag`` their
    indices on the four block diagonals, and ``band`` where they go in the
    band storage of the transposed Jacobian (:func:`_band`), which the
    loss factors' adjoint solves. The Jacobian at the flat start does not depend on
    the injections either: ``flat_step`` solves with its factors (None if it
    is singular), so the first Newton steps (chord steps, :data:`_CHORD_RATIO`)
    cost one triangular solve each.
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
    sub: tuple[npt.NDArray[np.int64], ...]
    diag: tuple[npt.NDArray[np.int64], ...]
    band: tuple[npt.NDArray[np.int64], int, int, npt.NDArray[np.int64]] | None
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
    p_default = (np.bincount(gpos, net.gen["p_mw"].to_numpy()[gen_on], n)
                 - load_p).astype(np.float64)
    q_default = (np.bincount(gpos, net.gen["q_mvar"].to_numpy()[gen_on], n)
                 - load_q).astype(np.float64)
    y_sub = y_ref = None
    sub: tuple[npt.NDArray[np.int64], ...] = ()
    diag: tuple[npt.NDArray[np.int64], ...] = ()
    band: tuple[npt.NDArray[np.int64], int, int, npt.NDArray[np.int64]] | None = None
    if n <= _DENSE_BUSES:
        dense = ybus.toarray()
        n1, m, k = pvpq.size, pvpq.size + pq.size, np.arange(pq.size)
        npv = pv.size
        # the Y-bus's nonzeros among the unknowns' buses, and every diagonal
        i, j = np.nonzero((dense[np.ix_(pvpq, pvpq)] != 0) | np.eye(n1, dtype=bool))
        y_sub, y_ref = dense[pvpq[i], pvpq[j]], dense[ref, pvpq]
        pm, qa = np.flatnonzero(j >= npv), np.flatnonzero(i >= npv)
        qm = np.flatnonzero((i >= npv) & (j >= npv))
        at = np.concatenate([i * m + j,                                 # dP/dva
                             i[pm] * m + n1 + j[pm] - npv,              # dP/dvm
                             (n1 + i[qa] - npv) * m + j[qa],            # dQ/dva
                             (n1 + i[qm] - npv) * m + n1 + j[qm] - npv])  # dQ/dvm
        sub = (i, j, pm, qa, qm, at)
        value_at = np.full(m * m, -1)
        value_at[at] = np.arange(at.size)
        at_pq = npv + k  # positions of the PQ buses within pvpq
        diag = (value_at[np.arange(n1) * (m + 1)],       # dP/dva
                value_at[at_pq * m + n1 + k],             # dP/dvm
                value_at[(n1 + k) * m + at_pq],           # dQ/dva
                value_at[(n1 + k) * (m + 1)])             # dQ/dvm
        band = _band(at, m)
    model = _Model(ybus=ybus, yf=yf, yt=yt, on=on, ref=ref, pv=pv, pq=pq, pvpq=pvpq,
                   va_start=va, vm_start=vm, p_default_mw=p_default,
                   q_default_mvar=q_default, base_mva=net.base_mva, y_sub=y_sub, y_ref=y_ref,
                   sub=sub, diag=diag, band=band)
    v = (vm * np.exp(1j * va)).astype(np.complex128)
    jac = _jacobian(model, v[None], (v * np.conj(ybus @ v))[None])[0]
    return replace(model, flat_step=_factorize(jac[0] if y_sub is not None else jac))


def _factorize(jac: Any) -> Callable[[Array], Array] | None:
    """A solver of ``jac x = b`` from its LU factors, None if ``jac`` is singular."""
    if isinstance(jac, np.ndarray):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            lu = sla.lu_factor(jac, check_finite=False)
        if not np.all(np.diag(lu[0])):
            return None
        return partial(_lu_solve, *lu)  # LAPACK's getrs, without lu_solve's checks
    try:
        return spla.splu(jac).solve
    except RuntimeError:  # "Factor is exactly singular"
        return None


def _lu_solve(lu: Array, piv: npt.NDArray[np.int32], rhs: Array) -> Array:
    """``x`` of ``A x = rhs`` from the LU factors of :func:`scipy.linalg.lu_factor`."""
    x, _ = dgetrs(lu, piv, rhs)
    return np.asarray(x, dtype=np.float64)


def _band(at: npt.NDArray[np.int64], m: int
          ) -> tuple[npt.NDArray[np.int64], int, int, npt.NDArray[np.int64]]:
    """The banded form of the transposed Jacobian whose nonzeros sit at the flat
    positions ``at`` of an ``m x m`` matrix: the unknowns in reverse
    Cuthill-McKee order (on a radial feeder the band is a few buses wide),
    the band's widths below and above the diagonal, and where each nonzero
    goes in LAPACK's band storage of one matrix, ``m`` rows of
    ``2 kl + ku + 1`` (row ``j`` holds column ``j`` of the matrix)."""
    row, col = np.divmod(at, m)
    pattern = sp.csr_matrix((np.ones(at.size), (row, col)), shape=(m, m))
    order = reverse_cuthill_mckee((pattern + pattern.T).tocsr(), symmetric_mode=True)
    rank = np.argsort(order)
    a, b = rank[col], rank[row]  # J[row, col] is J^T[col, row], in banded order
    kl, ku = int((a - b).max(initial=0)), int((b - a).max(initial=0))
    return order.astype(np.int64), kl, ku, b * (2 * kl + ku + 1) + kl + ku + a - b


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
        ds_dva, ds_dvm = _sparse_ds_dv(model.ybus, v[0])
        jac = sp.bmat([[ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real],
                       [ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag]], format="csc")
        grad = sp.hstack([ds_dva[[ref]][:, pvpq].real, ds_dvm[[ref]][:, pq].real])
        return jac, grad.toarray()
    values, grad = _values(model, v, s)
    m = pvpq.size + pq.size
    flat = np.zeros((*v.shape[:-1], m * m))
    flat[..., model.sub[-1]] = values
    return flat.reshape(*v.shape[:-1], m, m), grad


def _values(model: _Model, v: npt.NDArray[np.complex128],
            s: npt.NDArray[np.complex128]) -> tuple[Array, Array]:
    """The nonzeros of the dense Jacobian of :func:`_jacobian` (at the flat
    positions ``model.sub[-1]``), and the gradient of the slack's injection."""
    # dS_i/dva_j = j S_i [i = j] - j M_ij and dS_i/d|v_j| = M_ij / |v_j| + S_i / |v_i| [i = j],
    # with M_ij = v_i conj(Y_ij v_j): MATPOWER's dSbus_dV, restricted to the unknowns
    pvpq, npv, y_sub, y_ref = model.pvpq, model.pv.size, model.y_sub, model.y_ref
    assert y_sub is not None  # a dense network's
    assert y_ref is not None
    vr = v[..., pvpq]
    vm = np.abs(vr[..., npv:])
    i, j, pm, qa, qm, _ = model.sub
    mij = vr[..., i] * np.conj(y_sub * vr[..., j])  # at the Y-bus's nonzeros only
    values = np.concatenate([mij.imag, mij.real[..., pm] / vm[..., j[pm] - npv],
                             -mij.real[..., qa], mij.imag[..., qm] / vm[..., j[qm] - npv]],
                            axis=-1)
    d_pa, d_pm, d_qa, d_qm = model.diag
    sr = s[..., pvpq]
    sq = sr[..., npv:]
    values[..., d_pa] -= sr.imag
    values[..., d_pm] += sq.real / vm
    values[..., d_qa] += sq.real
    values[..., d_qm] += sq.imag / vm
    mref = v[..., model.ref, None] * np.conj(y_ref * vr)
    return values, np.concatenate([mref.imag, mref.real[..., npv:] / vm], axis=-1)


def _transposed_solve(band: tuple[npt.NDArray[np.int64], int, int, npt.NDArray[np.int64]],
                      values: Array, rhs: Array) -> Array:
    """Solve ``J^T x = rhs`` for each row, ``J`` the dense Jacobian with the
    nonzeros ``values`` (one row per operating point), in band storage
    (:func:`_band`): the rows' matrices as the blocks of one block-diagonal
    band matrix, one LAPACK call (partial pivoting never crosses a block,
    whose rows below hold zeros in its columns); ``nan`` if any is singular."""
    order, kl, ku, band_at = band
    count, m = rhs.shape
    ab = np.zeros((count, m * (2 * kl + ku + 1)))
    ab[:, band_at] = values
    *_, x, info = dgbsv(kl, ku, ab.reshape(count * m, -1).T, rhs[:, order].ravel(),
                        overwrite_ab=True, overwrite_b=True)
    if info != 0:
        return np.full(rhs.shape, np.nan)
    out = np.empty(rhs.shape)
    out[:, order] = x.reshape(count, m)
    return out


def _solve(jac: Any, rhs: Array, *, transpose: bool = False) -> Array:
    """Solve ``jac x = rhs`` (or ``jac^T x = rhs``) for each row of ``rhs``: a
    stack of dense matrices, or one sparse matrix and one row; ``nan`` if singular."""
    if isinstance(jac, np.ndarray):
        try:
            out = np.linalg.solve(jac.swapaxes(-1, -2) if transpose else jac, rhs[..., None])
        except np.linalg.LinAlgError:
            return np.full(rhs.shape, np.nan)
        return np.asarray(out[..., 0], dtype=np.float64)
    return spla.spsolve(jac.T.tocsc() if transpose else jac, rhs[0])[None]


def _spec(model: _Model, p_inj_mw: npt.ArrayLike | None, q_inj_mvar: npt.ArrayLike | None,
          *, stack: bool = False) -> npt.NDArray[np.complex128]:
    """The specified complex injections (pu), one row per operating point: a
    row of ``n_bus`` values, or with ``stack`` also a ``(T, n_bus)`` stack
    (defaults: the network's)."""
    n = model.va_start.size
    p = np.asarray(p_inj_mw if p_inj_mw is not None else model.p_default_mw, dtype=np.float64)
    q = np.asarray(q_inj_mvar if q_inj_mvar is not None else model.q_default_mvar,
                   dtype=np.float64)
    rows = max(p.shape[0] if p.ndim == 2 else 1, q.shape[0] if q.ndim == 2 else 1)
    s = np.empty((rows, n), dtype=np.complex128)
    for name, arr in (("p_inj_mw", p), ("q_inj_mvar", q)):
        if arr.shape != (n,) and not (stack and arr.shape == (rows, n)):
            rows_of = f", or one row of them per operating point ({rows})" if stack else ""
            raise InputError(name, f"must have one value per bus ({n}){rows_of}, "
                             f"got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr).reshape(-1, n).all(axis=1))
        if bad.size:
            raise InputError(name, "must be finite", row=int(bad[0]))
    s[:] = (p + 1j * q) / model.base_mva
    return s


def _newton(model: _Model, s_spec: npt.NDArray[np.complex128], tol_mva: float,
            max_iter: int) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.complex128],
                                    npt.NDArray[np.int64]]:
    """Newton-Raphson from the flat start (its first steps chord steps,
    :data:`_CHORD_RATIO`) for
    each row of ``s_spec`` (pu), the
    rows of a dense network side by side: the voltages and the complex
    injections (pu) at the solutions, and the iterations of each row."""
    if model.y_sub is None and s_spec.shape[0] > 1:
        rows = [_newton(model, row[None], tol_mva, max_iter) for row in s_spec]
        return tuple(np.concatenate(parts) for parts in zip(*rows, strict=True))  # type: ignore[return-value]
    base, ybus, pvpq, pq = model.base_mva, model.ybus, model.pvpq, model.pq
    count, n1 = s_spec.shape[0], pvpq.size
    v_out, s_out = np.empty(s_spec.shape, np.complex128), np.empty(s_spec.shape, np.complex128)
    iterations = np.zeros(count, dtype=np.int64)
    # the rows still iterating: their positions, angles, magnitudes, specification,
    # whether they still take chord steps and their mismatch before the last step
    live, spec = np.arange(count), s_spec
    va, vm = np.tile(model.va_start, (count, 1)), np.tile(model.vm_start, (count, 1))
    v = vm * np.exp(1j * va)
    chord, last = np.full(count, model.flat_step is not None), np.full(count, np.inf)
    for it in range(max_iter + 1):
        s = v * np.conj(ybus @ v.T).T
        mis = s - spec
        f = np.concatenate([mis.real[:, pvpq], mis.imag[:, pq]], axis=1)
        worst = np.abs(f).max(axis=1, initial=0.0) * base
        done = worst < tol_mva
        if done.any():
            at = live[done]
            v_out[at], s_out[at], iterations[at] = v[done], s[done], it
            if done.all():
                return v_out, s_out, iterations
            keep = ~done
            live, spec, va, vm, v, s, f, worst, chord, last = (
                x[keep] for x in (live, spec, va, vm, v, s, f, worst, chord, last))
        if it == max_iter:
            raise SolverError(f"the AC power flow did not converge in {max_iter} iterations "
                              f"(largest mismatch {worst.max():.3g} MVA)")
        # each row takes chord steps while they cut its mismatch fast enough, then
        # Newton's (so a row of a stack takes the steps it would take alone)
        chord &= worst < _CHORD_RATIO * last
        last = worst
        if chord.all() and model.flat_step is not None:
            dx = model.flat_step(-f.T).T  # the flat start's factors
        else:
            dx, newton = np.empty_like(f), ~chord
            if chord.any() and model.flat_step is not None:
                dx[chord] = model.flat_step(-f[chord].T).T
            dx[newton] = _solve(_jacobian(model, v[newton], s[newton])[0], -f[newton])
        if not np.isfinite(dx).all():
            raise SolverError("the AC power flow hit a singular Jacobian")
        va[:, pvpq] += dx[:, :n1]
        vm[:, pq] += dx[:, n1:]
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
    v, s, it = _newton(model, _spec(model, p_inj_mw, q_inj_mvar), tol_mva, max_iter)
    return _power_flow(network, model, v[0], s[0], int(it[0]))


def _adjoint(model: _Model, v: npt.NDArray[np.complex128],
             s: npt.NDArray[np.complex128]) -> tuple[Array, Array]:
    """``dLoss/dP`` and ``dLoss/dQ`` per bus at the solutions ``v`` (one row
    each; a sparse network solves them one by one)."""
    if model.y_sub is None and v.shape[0] > 1:
        rows = [_adjoint(model, v[t:t + 1], s[t:t + 1]) for t in range(v.shape[0])]
        return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    if model.band is None:
        jac, grad = _jacobian(model, v, s)
        w = _solve(jac, grad, transpose=True)
    else:
        values, grad = _values(model, v, s)
        w = _transposed_solve(model.band, values, grad)
    n1 = model.pvpq.size
    dp, dq = np.zeros(v.shape), np.zeros(v.shape)
    # F(x, u) = g(x) - u = 0 gives dx/du = J^-1, so dP_slack/du = J^-T grad = w;
    # the loss is P_slack + sum of the other injections: dLoss/dP_k = 1 + w_k
    dp[:, model.pvpq] = 1.0 + w[:, :n1]
    dq[:, model.pq] = w[:, n1:]
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
    v, s, it = _newton(model, _spec(model, p_inj_mw, q_inj_mvar), 1e-9, 30)
    dp, dq = _adjoint(model, v, s)
    return LossSensitivity(dloss_dp=dp[0], dloss_dq=dq[0],
                           power_flow=_power_flow(network, model, v[0], s[0], int(it[0])))


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

    Many operating points of one network at once (say, every interval of a
    day): give ``p_inj_mw`` and/or ``q_inj_mvar`` as ``(T, n_bus)`` arrays, one
    row per operating point (a row of ``n_bus`` values stands for all), and
    get a ``(T, n_bus)`` array back, row ``t`` equal to the call for row
    ``t`` alone. Small networks solve the rows side by side, each Newton
    step one stacked LAPACK call.

    Raises
    ------
    InputError
        Naming ``p_inj_mw`` or ``q_inj_mvar`` if its shape is wrong or a value
        is not finite (``row``: the bus, or the operating point of a stack).
    SolverError
        If the power flow of any row does not converge.

    Examples
    --------
    >>> from transactive.grid.network import Network
    >>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
    ...               branch={"from_bus": [1], "to_bus": [2], "r_pu": [0.05], "x_pu": [0.04]},
    ...               gen={"bus": [1], "p_max_mw": [10.0]}, load=None)
    >>> day = [[0.0, -40.0], [0.0, -20.0], [0.0, 20.0]]    # MW drawn, drawn, fed in at bus 2
    >>> marginal_loss_factors(net, day, [0.0, 0.0]).round(4).tolist()
    [[0.0, -0.0426], [0.0, -0.0206], [0.0, 0.0194]]
    """
    model = _model(network)
    spec = _spec(model, p_inj_mw, q_inj_mvar, stack=True)
    v, s, _ = _newton(model, spec, 1e-9, 30)
    dp = _adjoint(model, v, s)[0]
    stacked = any(np.ndim(x) == 2 for x in (p_inj_mw, q_inj_mvar) if x is not None)
    return dp if stacked else dp[0]
