"""The agents' own problems partitioned over Dask workers.

:class:`DaskProposer` splits the agents into contiguous blocks, one per
worker by default, and sends each block's orders and edge ends to a worker
once. Every iteration then sends each block only the ``w`` of its edges
(trade proposals and prices folded together, see
:mod:`~transactive.decentral.admm`) and gets its proposals back; the
consensus and price updates stay with the caller. Worth it only where an
iteration's agent problems take much longer than a round trip to the
workers (tens of thousands of agents).

It takes any ``dask.distributed.Client`` (``pip install
'transactive[dask]'``); this module imports no Dask itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.decentral.admm import AgentOrders, proposals
from transactive.decentral.problem import P2PProblem
from transactive.errors import InputError

__all__ = ["DaskProposer"]

F64 = npt.NDArray[np.float64]


def _block_proposals(block: tuple[AgentOrders, npt.NDArray[np.intp]], w: F64,
                     rho: float) -> F64:
    orders, copy_agent = block
    return proposals(orders, w, rho, copy_agent)


class DaskProposer:
    """Step 1 of the iteration on a Dask cluster (a :data:`~transactive.decentral.admm.Proposer`).

    Parameters
    ----------
    client : dask.distributed.Client
        The cluster's client.
    problem : P2PProblem
        The market.
    n_blocks : int, optional
        Blocks of agents (default: one per worker).
    """

    def __init__(self, client: Any, problem: P2PProblem, n_blocks: int | None = None) -> None:
        if not hasattr(client, "scatter") or not hasattr(client, "submit"):
            raise InputError("client", f"must be a dask.distributed Client, got "
                             f"{type(client).__name__}")
        if n_blocks is None:
            n_blocks = max(len(client.scheduler_info()["workers"]), 1)
        self._client = client
        copy_agent = np.concatenate([problem.edge_buyer, problem.edge_seller])
        bounds = np.linspace(0, problem.n_agents, n_blocks + 1).astype(np.intp)
        copy_block = np.searchsorted(bounds, copy_agent, side="right") - 1
        order_block = np.searchsorted(bounds, problem.order_agent, side="right") - 1
        self._copies: list[npt.NDArray[np.intp]] = []
        self._blocks: list[Any] = []
        for k in range(n_blocks):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            copies, rows = np.flatnonzero(copy_block == k), np.flatnonzero(order_block == k)
            if copies.size == 0:
                continue
            orders = AgentOrders(problem.order_agent[rows] - lo, problem.value[rows],
                                 problem.quantity[rows], hi - lo)
            self._copies.append(copies)
            [block] = client.scatter([(orders, copy_agent[copies] - lo)])
            self._blocks.append(block)

    def __call__(self, w: F64, rho: float) -> F64:
        futures = [self._client.submit(_block_proposals, block, w[copies], rho, pure=False)
                   for block, copies in zip(self._blocks, self._copies, strict=True)]
        x = np.empty_like(w)
        for copies, part in zip(self._copies, self._client.gather(futures), strict=True):
            x[copies] = part
        return x
