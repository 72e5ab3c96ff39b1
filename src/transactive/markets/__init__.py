"""Market mechanisms, one module each, registered by name.

Importing this package registers every built-in mechanism; see
:mod:`transactive.markets.registry` for the contract they keep.
"""

from transactive.markets import book  # noqa: F401
from transactive.markets import amm, mcafee, muda, vcg, vickrey  # noqa: F401  (registers)
from transactive.markets import network  # noqa: F401  (registers)
from transactive.markets import pay_as_bid, uniform  # noqa: F401  (registers)
from transactive.markets.registry import available, clear, get, register

__all__ = ["available", "clear", "get", "register"]
