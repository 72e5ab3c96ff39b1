"""The grid layer: network model, case readers, network matrices and
network-constrained market clearing.

Public face (import from here):

- :class:`Network` (typed tables, :data:`SCHEMA`), readers :func:`read_matpower`,
  :func:`parse_matpower`, :func:`from_ppc`, :func:`from_pandapower`, writer
  :func:`write_matpower`, built-ins :func:`load_case` / :func:`available_cases`.
- :mod:`transactive.grid.matrices`: incidence, B, Bf, PTDF, LODF, radial branches,
  :class:`~transactive.grid.matrices.DCPowerFlow`.
- Clearing: :func:`dcopf` (:class:`DCOPFResult`), :func:`scopf` (N-1,
  :class:`SCOPFResult`) and the front door :func:`solve_dcopf`.
- Distribution: :func:`solve_distflow` (LinDistFlow LP or DistFlow SOC, P and Q
  prices), :func:`marginal_loss_factors` (AC), :func:`dispatch_island`
  (islanded microgrid with a black-start reserve).
"""

from transactive.grid import matrices
from transactive.grid.cases import available_cases, load_case
from transactive.grid.dcopf import DCOPFResult, dcopf
from transactive.grid.distflow import DistFlowResult, Injections, solve_distflow
from transactive.grid.island import Battery, IslandDispatch, dispatch_island
from transactive.grid.losses import marginal_loss_factors
from transactive.grid.matpower import (
    from_pandapower,
    from_ppc,
    parse_matpower,
    read_matpower,
    write_matpower,
)
from transactive.grid.network import SCHEMA, Network
from transactive.grid.scopf import SCOPFResult, scopf, solve_dcopf

__all__ = [
    "SCHEMA",
    "Battery",
    "DCOPFResult",
    "DistFlowResult",
    "Injections",
    "IslandDispatch",
    "Network",
    "SCOPFResult",
    "available_cases",
    "dcopf",
    "dispatch_island",
    "from_pandapower",
    "from_ppc",
    "load_case",
    "marginal_loss_factors",
    "matrices",
    "parse_matpower",
    "read_matpower",
    "scopf",
    "solve_dcopf",
    "solve_distflow",
    "write_matpower",
]
