"""transactive: peer-to-peer and transactive electricity markets.

Simulate prosumer communities on real networks, compare market designs side by
side, and run a live exchange. ``import transactive as te``.
"""

from transactive._version import __version__ as __version__
from transactive.clearing import Clearing
from transactive.errors import InputError, MissingExtraError, SolverError, TransactiveError
from transactive.markets import available as mechanisms
from transactive.markets import clear
from transactive.orders import BUY, SELL, OrderBatch

__all__ = [
    "BUY",
    "Clearing",
    "InputError",
    "MissingExtraError",
    "OrderBatch",
    "SELL",
    "SolverError",
    "TransactiveError",
    "clear",
    "mechanisms",
]
