"""transactive: peer-to-peer and transactive electricity markets.

Simulate prosumer communities on real networks, compare market designs side by
side, clear markets through the grid, and settle them in a double-entry
ledger. ``import transactive as te``; the layers (``te.markets``, ``te.grid``,
``te.agents``, ``te.settlement``, ``te.sim``, ``te.analysis``) hold the rest.
"""

from transactive._version import __version__ as __version__
from transactive.analysis.metrics import gini, lorenz_curve, summary
from transactive.clearing import Clearing
from transactive.errors import InputError, MissingExtraError, SolverError, TransactiveError
from transactive.grid.cases import load_case
from transactive.grid.distflow import solve_distflow
from transactive.grid.island import dispatch_island
from transactive.grid.losses import marginal_loss_factors
from transactive.grid.network import Network
from transactive.grid.scopf import solve_dcopf
from transactive.markets import available as mechanisms
from transactive.markets import clear
from transactive.markets.amm import Pool, arbitrage_to_band
from transactive.markets.audit import audit
from transactive.markets.book import OrderBook
from transactive.markets.games import best_response_dynamics
from transactive.orders import BUY, SELL, OrderBatch
from transactive.settlement import Journal, Ledger, Oracle, Settlement, verify_run
from transactive.sim import Scenario, SimulationResult, load_scenario, read_results, simulate
from transactive.sim.compare import compare
from transactive.timeline import Timeline

__all__ = [
    "BUY",
    "SELL",
    "Clearing",
    "InputError",
    "Journal",
    "Ledger",
    "MissingExtraError",
    "Network",
    "Oracle",
    "OrderBatch",
    "OrderBook",
    "Pool",
    "Scenario",
    "Settlement",
    "SimulationResult",
    "SolverError",
    "Timeline",
    "TransactiveError",
    "arbitrage_to_band",
    "audit",
    "best_response_dynamics",
    "clear",
    "compare",
    "dispatch_island",
    "gini",
    "load_case",
    "load_scenario",
    "lorenz_curve",
    "marginal_loss_factors",
    "mechanisms",
    "read_results",
    "simulate",
    "solve_dcopf",
    "solve_distflow",
    "summary",
    "verify_run",
]
