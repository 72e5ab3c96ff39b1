"""transactive: peer-to-peer and transactive electricity markets.

Simulate prosumer communities on real networks, compare market designs side by
side, clear markets through the grid, and settle them in a double-entry
ledger. ``import transactive as te``; the layers (``te.markets``, ``te.grid``,
``te.agents``, ``te.settlement``, ``te.sim``, ``te.analysis``) hold the rest.
"""

from transactive._lazy import attach
from transactive._version import __version__ as __version__

_EXPORTS = {
    "BUY": "transactive.orders",
    "Clearing": "transactive.clearing",
    "InputError": "transactive.errors",
    "Journal": "transactive.settlement",
    "Ledger": "transactive.settlement",
    "MissingExtraError": "transactive.errors",
    "Network": "transactive.grid.network",
    "Oracle": "transactive.settlement",
    "OrderBatch": "transactive.orders",
    "OrderBook": "transactive.markets.book",
    "Pool": "transactive.markets.amm",
    "SELL": "transactive.orders",
    "Scenario": "transactive.sim",
    "Settlement": "transactive.settlement",
    "SimulationResult": "transactive.sim",
    "SolverError": "transactive.errors",
    "Timeline": "transactive.timeline",
    "TransactiveError": "transactive.errors",
    "arbitrage_to_band": "transactive.markets.amm",
    "audit": "transactive.markets.audit",
    "best_response_dynamics": "transactive.markets.games",
    "clear": "transactive.markets",
    "compare": "transactive.sim.compare",
    "dispatch_island": "transactive.grid.island",
    "gini": "transactive.analysis.metrics",
    "load_case": "transactive.grid.cases",
    "load_scenario": "transactive.sim",
    "lorenz_curve": "transactive.analysis.metrics",
    "marginal_loss_factors": "transactive.grid.losses",
    "mechanisms": "transactive.markets:available",
    "read_results": "transactive.sim",
    "simulate": "transactive.sim",
    "solve_dcopf": "transactive.grid.scopf",
    "solve_distflow": "transactive.grid.distflow",
    "summary": "transactive.analysis.metrics",
    "verify_run": "transactive.settlement",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
