"""Small shared solver plumbing for the distribution models: sparse triplets
built block by block, one HiGHS call (LP/MILP), an LP kept in HiGHS and
re-solved from its previous basis (:class:`KeptLP`), and one Clarabel call
(SOCP, through cvxpy), each returning primal and dual values in one
convention."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.errors import MissingExtraError, SolverError

Array = npt.NDArray[np.float64]

_LOCAL = threading.local()  # one HiGHS instance per thread, reused across calls


class Triplets:
    """Matrix entries collected block by block; rows, columns and values of a
    block broadcast against each other. Explicit zeros are dropped."""

    def __init__(self) -> None:
        self.rows: list[npt.NDArray[Any]] = []
        self.cols: list[npt.NDArray[Any]] = []
        self.vals: list[npt.NDArray[Any]] = []

    def put(self, r: npt.ArrayLike, c: npt.ArrayLike, v: npt.ArrayLike) -> None:
        rr, cc, vv = np.broadcast_arrays(np.asarray(r), np.asarray(c), np.asarray(v, float))
        self.rows.append(rr.ravel())
        self.cols.append(cc.ravel())
        self.vals.append(vv.ravel())

    def matrix(self, nrow: int, ncol: int, col_offset: int = 0) -> sp.csc_matrix:
        """The entries as a CSC matrix (columns shifted by ``-col_offset``)."""
        if not self.rows:
            return sp.csc_matrix((nrow, ncol))
        vals = np.concatenate(self.vals)
        keep = vals != 0
        return sp.csc_matrix((vals[keep], (np.concatenate(self.rows)[keep],
                                           np.concatenate(self.cols)[keep] - col_offset)),
                             shape=(nrow, ncol))


Cone = tuple[Array | sp.csr_matrix, list[sp.csr_matrix]]
"""``(T, [X1, X2, ...])``: the cones ``||(X1 x, X2 x, ...)_i|| <= (T x)_i`` row by
row, or ``<= T_i`` when ``T`` is a constant array."""


def append_columns(a: sp.csc_matrix, data: Array, indices: npt.NDArray[np.int64],
                   indptr: npt.NDArray[np.int64]) -> sp.csc_matrix:
    """``a`` with columns appended, given in CSC form (``indptr`` from 0);
    no re-sorting or validation (a hot path)."""
    out = sp.csc_matrix((np.concatenate([a.data, data]),
                         np.concatenate([a.indices, indices]).astype(a.indices.dtype),
                         np.concatenate([a.indptr, a.indptr[-1] + indptr[1:]])
                         .astype(a.indptr.dtype)),
                        shape=(a.shape[0], a.shape[1] + indptr.size - 1))
    return out


@dataclass(frozen=True)
class LPSolution:
    """Primal values, duals (``row_dual`` = d objective / d row bound;
    ``col_dual`` = reduced cost, > 0 at a lower bound and < 0 at an upper one;
    ``cone_dual[k]`` = d objective / d radius of each cone of constant radius
    in cone group ``k``, <= 0) and the objective."""

    x: Array
    row_dual: Array
    col_dual: Array
    objective: float
    cone_dual: list[Array] = field(default_factory=list)


def solve_highs(c: Array, lb: Array, ub: Array, a: sp.csc_matrix, rl: Array, ru: Array, *,
                integer: npt.NDArray[np.bool_] | None = None, what: str = "LP",
                presolve: bool = True) -> LPSolution:
    """``min c x  s.t.  rl <= A x <= ru,  lb <= x <= ub`` (columns in
    ``integer`` integral) with HiGHS; :class:`SolverError` unless optimal.
    The duals of a MILP are those HiGHS reports for the final LP (fix the
    integers and solve again for prices). ``presolve=False`` solves by the
    dual simplex without presolve: faster for small, tight LPs solved many
    times (a feeder every interval); where the LP is degenerate it may pick
    another of the equally valid duals."""
    h = getattr(_LOCAL, "highs", None)
    if h is None:
        h = _LOCAL.highs = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-9)
    milp = integer is not None and bool(integer.any())
    h.setOptionValue("presolve", "on" if presolve or milp else "off")
    h.setOptionValue("simplex_strategy", 1 if not presolve and not milp else 0)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = c.size, rl.size
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, lb, ub
    lp.row_lower_, lp.row_upper_ = rl, ru
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    if milp and integer is not None:
        lp.integrality_ = [highspy.HighsVarType.kInteger if k else highspy.HighsVarType.kContinuous
                           for k in integer]
    h.passModel(lp)
    h.run()
    error = _highs_status_error(h, what)
    if error is not None:
        raise error
    s = h.getSolution()
    return LPSolution(np.asarray(s.col_value), np.asarray(s.row_dual), np.asarray(s.col_dual),
                      float(h.getInfo().objective_function_value))


def _highs_status_error(h: highspy.Highs, what: str) -> SolverError | None:
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        return None
    return SolverError(f"the {what} is {h.modelStatusToString(status).lower()}")


#: Statuses that settle an LP: anything else from a warm start is retried cold.
_DEFINITE = frozenset({highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
                       highspy.HighsModelStatus.kUnbounded,
                       highspy.HighsModelStatus.kUnboundedOrInfeasible})


class KeptLP:
    """``min c x  s.t.  rl <= A x <= ru,  lb <= x <= ub`` kept in its own HiGHS
    instance between solves: :meth:`solve` passes only the costs and bounds
    that changed since the last solve and HiGHS re-solves by the dual simplex
    (no presolve) from the previous optimal basis. Columns and rows may be
    appended; none are removed. One instance per thread (HiGHS is not
    thread-safe).

    The arrays ``c, lb, ub, rl, ru`` and the matrix ``a`` always mirror the
    model in HiGHS (they are what the last solve solved).

    Examples
    --------
    >>> lp = KeptLP(np.array([1.0, 2.0]), np.zeros(2), np.full(2, np.inf),
    ...             sp.csc_matrix(np.ones((1, 2))), np.array([3.0]), np.array([3.0]))
    >>> lp.solve(lp.c, lp.lb, lp.ub, np.array([4.0]), np.array([4.0])).x.tolist()
    [4.0, 0.0]
    >>> lp.solve(np.array([3.0, 2.0]), lp.lb, lp.ub, lp.rl, lp.ru).row_dual.tolist()
    [2.0]
    """

    def __init__(self, c: Array, lb: Array, ub: Array, a: sp.csc_matrix, rl: Array,
                 ru: Array) -> None:
        self.c, self.lb, self.ub = c.copy(), lb.copy(), ub.copy()
        self.rl, self.ru, self.a = rl.copy(), ru.copy(), sp.csc_matrix(a)
        h = self._h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("simplex_strategy", 1)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = c.size, rl.size
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, lb, ub
        lp.row_lower_, lp.row_upper_ = rl, ru
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = self.a.indptr
        lp.a_matrix_.index_, lp.a_matrix_.value_ = self.a.indices, self.a.data
        h.passModel(lp)

    def add_columns(self, c: Array, lb: Array, ub: Array, cols: sp.csc_matrix) -> None:
        """Append columns (``cols``: one column of ``A`` each); they enter
        the basis as nonbasic at a bound."""
        cols = sp.csc_matrix(cols)
        self._h.addCols(c.size, c, lb, ub, cols.nnz, cols.indptr[:-1].astype(np.int32),
                        cols.indices.astype(np.int32), cols.data)
        self.c, self.lb, self.ub = (np.concatenate([old, new]) for old, new in
                                    ((self.c, c), (self.lb, lb), (self.ub, ub)))
        self.a = append_columns(self.a, cols.data, cols.indices.astype(np.int64),
                                cols.indptr.astype(np.int64))

    def add_rows(self, rl: Array, ru: Array, rows: sp.csr_matrix) -> None:
        """Append rows (``rows``: one row of ``A`` each, over all columns);
        their slacks enter the basis."""
        rows = sp.csr_matrix(rows)
        self._h.addRows(rl.size, rl, ru, rows.nnz, rows.indptr[:-1].astype(np.int32),
                        rows.indices.astype(np.int32), rows.data)
        self.rl, self.ru = np.concatenate([self.rl, rl]), np.concatenate([self.ru, ru])
        self.a = sp.vstack([self.a, rows], format="csc")

    def solve(self, c: Array, lb: Array, ub: Array, rl: Array, ru: Array, *,
              what: str = "LP") -> LPSolution:
        """Change the costs and bounds to these and re-solve; :class:`SolverError`
        unless optimal (the next solve then starts from a fresh basis). A
        warm re-solve that ends without a verdict (neither optimal, infeasible
        nor unbounded) is run once more from scratch."""
        h = self._h
        j = np.flatnonzero(c != self.c)
        if j.size:
            h.changeColsCost(j.size, j.astype(np.int32), c[j])
        j = np.flatnonzero((lb != self.lb) | (ub != self.ub))
        if j.size:
            h.changeColsBounds(j.size, j.astype(np.int32), lb[j], ub[j])
        i = np.flatnonzero((rl != self.rl) | (ru != self.ru))
        if i.size:
            # in highspy's _core, missing from its stubs
            h.changeRowsBounds(i.size, i.astype(np.int32), rl[i], ru[i])  # type: ignore[attr-defined]
        self.c, self.lb, self.ub, self.rl, self.ru = (
            np.array(v, dtype=np.float64) for v in (c, lb, ub, rl, ru))
        h.run()
        if h.getModelStatus() not in _DEFINITE:
            # a warm start gone astray (HiGHS may report 'unknown' after a bad
            # basis change): once more from scratch before giving up
            h.clearSolver()
            h.run()
        error = _highs_status_error(h, what)
        if error is not None:
            h.clearSolver()
            raise error
        s = h.getSolution()
        return LPSolution(np.asarray(s.col_value), np.asarray(s.row_dual),
                          np.asarray(s.col_dual), float(h.getInfo().objective_function_value))


def solve_socp(c: Array, lb: Array, ub: Array, a: sp.csc_matrix, b: Array,
               cones: list[Cone], *, what: str = "SOCP") -> LPSolution:
    """``min c x  s.t.  A x = b,  lb <= x <= ub,  cones`` with Clarabel
    (tight tolerances first, Clarabel's defaults if those cannot be met)."""
    try:
        import cvxpy as cp
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("cvxpy", "ac") from None
    x = cp.Variable(c.size)
    il, iu = np.flatnonzero(np.isfinite(lb)), np.flatnonzero(np.isfinite(ub))
    cons = [a @ x == b, x[il] >= lb[il], x[iu] <= ub[iu]]
    socs: list[Any] = []
    for t, parts in cones:
        if parts[0].shape[0] == 0:
            socs.append(None)
            continue
        radius = t @ x if sp.issparse(t) else t
        socs.append(cp.SOC(radius, cp.vstack([m @ x for m in parts]), axis=0))
    prob = cp.Problem(cp.Minimize(c @ x), cons + [k for k in socs if k is not None])
    for tol in (1e-10, 1e-8):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an inaccurate solve is refused below
                prob.solve(solver=cp.CLARABEL, tol_feas=tol, tol_gap_abs=tol, tol_gap_rel=tol)
        except cp.error.SolverError as exc:
            raise SolverError(f"the {what} failed: {exc}") from None
        if prob.status != cp.OPTIMAL_INACCURATE:
            break
    if prob.status != cp.OPTIMAL:
        raise SolverError(f"the {what} is {prob.status}")
    col = np.zeros(c.size)
    col[il] += np.asarray(cons[1].dual_value)
    col[iu] -= np.asarray(cons[2].dual_value)
    cone_dual = [np.zeros(0) if k is None else -np.asarray(k.dual_value[0]).ravel()
                 for k in socs]
    return LPSolution(np.asarray(x.value), -np.asarray(cons[0].dual_value), col,
                      float(prob.value), cone_dual)
