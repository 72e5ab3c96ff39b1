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

Each name's module is imported on first use (as the other layers do), so a
DC-OPF of a case (``transactive opf``) imports no pandas.
"""

from transactive._lazy import attach

_EXPORTS = {
    "SCHEMA": "transactive.grid.network",
    "Battery": "transactive.grid.island",
    "DCOPFResult": "transactive.grid.dcopf",
    "DistFlowResult": "transactive.grid.distflow",
    "Injections": "transactive.grid.distflow",
    "IslandDispatch": "transactive.grid.island",
    "Network": "transactive.grid.network",
    "SCOPFResult": "transactive.grid.scopf",
    "available_cases": "transactive.grid.cases",
    "dcopf": "transactive.grid.dcopf",
    "dispatch_island": "transactive.grid.island",
    "from_pandapower": "transactive.grid.matpower",
    "from_ppc": "transactive.grid.matpower",
    "load_case": "transactive.grid.cases",
    "marginal_loss_factors": "transactive.grid.losses",
    "matrices": "transactive.grid.matrices",
    "parse_matpower": "transactive.grid.matpower",
    "read_matpower": "transactive.grid.matpower",
    "scopf": "transactive.grid.scopf",
    "solve_dcopf": "transactive.grid.scopf",
    "solve_distflow": "transactive.grid.distflow",
    "write_matpower": "transactive.grid.matpower",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
