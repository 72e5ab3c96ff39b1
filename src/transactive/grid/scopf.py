"""Preventive security-constrained DC-OPF (N-1 branch outages), and the one
front door :func:`solve_dcopf` that the CLI calls.

Every in-service branch is a credible outage, except those whose outage
splits the network (bridges, e.g. a generator step-up transformer): they are
skipped and reported. After an outage of branch ``k`` the flow on ``l`` is
``f_l + LODF[l, k] f_k``; it must stay within the post-contingency rating.

Instead of one LP per outage, constraint generation keeps the problem small:
solve the base clearing; compute every post-contingency flow at once (a dense
``n_monitored x n_outage`` array from the LODF); add the violated pairs as
PTDF rows to the same HiGHS model; re-solve warm; stop when nothing is
violated (usually a few rounds). The LMPs then include the shadow prices of
the binding contingency limits.

Post-contingency ratings: ``post_rating="c"`` uses MATPOWER's rate C where the
case gives one (rate A otherwise); a float is a factor on rate A (for example
1.2 for a 20% short-term overload allowance).

Examples
--------
>>> from transactive.grid.network import Network
>>> net = Network(  # two parallel 1-2 lines, each 60 MW
...     bus={"bus": [1, 2], "type": [3, 1]},
...     branch={"from_bus": [1, 1], "to_bus": [2, 2], "x_pu": [0.1, 0.1],
...             "rate_a_mw": [60.0, 60.0]},
...     gen={"bus": [1, 2], "p_max_mw": [200.0, 200.0], "cost_per_mwh": [10.0, 30.0]},
...     load={"bus": [2], "p_mw": [100.0]})
>>> base, secure = solve_dcopf(net), solve_dcopf(net, security="n-1")
>>> base.gen["p_mw"].round(6).tolist(), secure.gen["p_mw"].round(6).tolist()
([100.0, 0.0], [60.0, 40.0])
>>> secure.lmp.round(6).tolist(), round(secure.congestion_rent, 6)
([10.0, 30.0], 1200.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from os import PathLike
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.grid import matrices
from transactive.grid.cases import load_case
from transactive.grid.dcopf import (
    DCOPFResult,
    Formulation,
    PtdfModel,
    branch_limits,
    build_result,
    dcopf,
    prepare_market,
)
from transactive.grid.network import Network

if TYPE_CHECKING:  # pandas and the loss module load where they are used: the plain
    import pandas as pd  # DC-OPF of `transactive opf` needs neither

    from transactive.grid.network import TableLike

__all__ = ["SCOPFResult", "scopf", "solve_dcopf"]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_TOL_MW = 1e-6


@dataclass(frozen=True, eq=False)
class SCOPFResult(DCOPFResult):
    """A :class:`DCOPFResult` secured against N-1 branch outages.

    Attributes
    ----------
    outages : ndarray of int
        Branch rows whose outage was secured.
    skipped : ndarray of int
        Branch rows whose outage splits the network (not secured; reported).
    post_limit_mw : ndarray
        Post-contingency rating per branch, MW.
    contingency_rows : ndarray (n, 5)
        The contingency constraints in the final model: outage row, monitored
        row, LODF, post-contingency flow (MW), signed shadow price.
    iterations : int
        Solves of the constraint-generation loop.
    """

    outages: IntArray = field(repr=False)
    skipped: IntArray = field(repr=False)
    post_limit_mw: Array = field(repr=False)
    contingency_rows: Array = field(repr=False)
    iterations: int

    @cached_property
    def contingency(self) -> pd.DataFrame:
        """Binding contingency constraints: outage_from_bus, outage_to_bus,
        from_bus, to_bus (monitored), flow_mw (post-contingency), limit_mw,
        shadow_price (>= 0)."""
        rows = self.contingency_rows
        bind = np.abs(rows[:, 4]) > 1e-9
        out, mon = rows[bind, 0].astype(np.int64), rows[bind, 1].astype(np.int64)
        br = self.network.branch
        f, t = br["from_bus"].to_numpy(), br["to_bus"].to_numpy()
        import pandas as pd

        return pd.DataFrame({
            "outage_from_bus": f[out], "outage_to_bus": t[out], "from_bus": f[mon],
            "to_bus": t[mon], "flow_mw": rows[bind, 3], "limit_mw": self.post_limit_mw[mon],
            "shadow_price": np.abs(rows[bind, 4])})

    @property
    def congestion_rent(self) -> float:
        """Rent of the binding base-case and post-contingency limits, per hour."""
        rows = self.contingency_rows
        post = float(np.sum(np.abs(rows[:, 4]) * self.post_limit_mw[rows[:, 1].astype(int)]))
        return super().congestion_rent + post

    @property
    def skipped_branches(self) -> list[tuple[int, int]]:
        """(from_bus, to_bus) of the outages skipped because they island buses."""
        br = self.network.branch
        return list(zip(br["from_bus"].to_numpy()[self.skipped].tolist(),
                        br["to_bus"].to_numpy()[self.skipped].tolist(), strict=True))


def scopf(
    net: Network,
    *,
    bids: TableLike | None = None,
    offers: TableLike | None = None,
    rating: str | float = "a",
    post_rating: str | float = "c",
    outages: npt.ArrayLike | None = None,
    slack: matrices.Slack = None,
) -> SCOPFResult:
    """Preventive N-1 security-constrained clearing (see the module notes).

    Parameters
    ----------
    net, bids, offers, rating, slack
        As for :func:`~transactive.grid.dcopf.dcopf`.
    post_rating : {"a", "b", "c"} or float
        Post-contingency rating: a rating name (a missing one falls back to
        rate A) or a factor on rate A.
    outages : array of int, optional
        Branch rows to consider (default: every in-service branch).

    Raises
    ------
    SolverError
        When no dispatch is secure: the message names the outages that cannot
        be secured and the limits in conflict.
    """
    market = prepare_market(net, bids=bids, offers=offers, rating=rating, slack=slack)
    post_limit = branch_limits(net, post_rating)
    on = net.branch["in_service"].to_numpy()
    if outages is None:
        candidates = np.flatnonzero(on)
    else:
        candidates = np.unique(np.asarray(outages, dtype=np.int64))
        bad = (candidates < 0) | (candidates >= net.n_branch)
        if bad.any():
            raise InputError("outages", f"not a branch row: {candidates[bad][0]}")
        candidates = candidates[on[candidates]]
    full = market.flows.ptdf_rows(np.arange(net.n_branch))
    lodf = matrices.lodf(net, full)
    skipped = candidates[lodf.islanding[candidates]]
    outs = candidates[~lodf.islanding[candidates]]
    mon = np.flatnonzero(on & np.isfinite(post_limit))
    factors = lodf.matrix[np.ix_(mon, outs)]
    added = mon[:, None] == outs[None, :]  # a branch is not monitored after its own outage
    mon_limit = post_limit[mon]

    model = PtdfModel(market, ptdf_matrix=full)
    model.lazy_limits(np.flatnonzero(np.isfinite(market.limit)), market.limit)

    def screen(flow: Array) -> int:
        post = flow[mon][:, None] + factors * flow[outs][None, :]
        viol = (np.abs(post) > mon_limit[:, None] + _TOL_MW) & ~added
        i, j = np.nonzero(viol)
        added[i, j] = True
        model.add_rows(mon[i], outs[j], factors[i, j], mon_limit[i])
        return int(i.size)

    sol = model.solve(screen)
    base_flow = market.flows.flows(market.injection_mw(sol.x))
    is_post = model.out >= 0
    m_out, m_mon, m_lodf = model.out[is_post], model.mon[is_post], model.lodf[is_post]
    table = np.column_stack([m_out, m_mon, m_lodf, base_flow[m_mon] + m_lodf * base_flow[m_out],
                             sol.row_mu[is_post]])
    result = build_result(market, sol, "ptdf", SCOPFResult, outages=outs, skipped=skipped,
                          post_limit_mw=post_limit, contingency_rows=table,
                          iterations=model.iterations)
    assert isinstance(result, SCOPFResult)
    return result


def solve_dcopf(
    case: Network | str | PathLike[str],
    *,
    security: Literal["none", "n-1"] = "none",
    bids: TableLike | None = None,
    offers: TableLike | None = None,
    rating: str | float = "a",
    post_rating: str | float = "c",
    formulation: Formulation = "ptdf",
    losses: bool = False,
) -> DCOPFResult:
    """Network-constrained clearing of a case: the entry of ``transactive opf``.

    Parameters
    ----------
    case : Network, str or path
        A network, a built-in case name (see
        :func:`~transactive.grid.cases.available_cases`) or a MATPOWER ``.m`` file.
    security : {"none", "n-1"}
        ``"n-1"`` secures every non-islanding branch outage (:func:`scopf`,
        returning a :class:`SCOPFResult`).
    bids, offers, rating, formulation
        As for :func:`~transactive.grid.dcopf.dcopf`.
    post_rating
        As for :func:`scopf` (used with ``security="n-1"``).
    losses : bool
        Price losses: the balance is linearised around the case's AC power
        flow at its own set points (marginal loss factors from
        :func:`~transactive.grid.losses.loss_sensitivities`), so every LMP
        gets a loss part. Not with ``security="n-1"``.

    Examples
    --------
    >>> res = solve_dcopf("case9")
    >>> round(res.objective, 2), sorted(res.to_dict())
    (5216.03, ['branches', 'buses', 'generators', 'objective'])
    """
    net = case if isinstance(case, Network) else load_case(case)
    if losses and security != "none":
        raise InputError("losses", "loss pricing is available without security constraints")
    if security == "none" and losses:
        from transactive.grid.losses import loss_sensitivities

        point = loss_sensitivities(net)
        mlf = point.dloss_dp
        offset = point.power_flow.losses_mw - float(mlf @ point.power_flow.p_inj_mw)
        return dcopf(net, bids=bids, offers=offers, rating=rating, formulation=formulation,
                     loss_factors=mlf, loss_offset_mw=offset)
    if security == "none":
        return dcopf(net, bids=bids, offers=offers, rating=rating, formulation=formulation)
    if security == "n-1":
        return scopf(net, bids=bids, offers=offers, rating=rating, post_rating=post_rating)
    raise InputError("security", f"must be 'none' or 'n-1', got {security!r}")
