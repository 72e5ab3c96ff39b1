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
"""

from transactive.grid import matrices
from transactive.grid.cases import available_cases, load_case
from transactive.grid.dcopf import DCOPFResult, dcopf
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
    "DCOPFResult",
    "Network",
    "SCOPFResult",
    "available_cases",
    "dcopf",
    "from_pandapower",
    "from_ppc",
    "load_case",
    "matrices",
    "parse_matpower",
    "read_matpower",
    "scopf",
    "solve_dcopf",
    "write_matpower",
]
