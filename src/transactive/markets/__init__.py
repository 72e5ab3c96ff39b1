"""Market mechanisms, one module each, registered by name.

Importing this package registers every built-in mechanism; see
:mod:`transactive.markets.registry` for the contract they keep.
"""

from transactive.markets import (  # noqa: F401  (importing registers them)
    amm,
    book,
    mcafee,
    muda,
    network,
    pay_as_bid,
    uniform,
    vcg,
    vickrey,
)
from transactive.markets.registry import available, clear, get, register

__all__ = ["available", "clear", "get", "register"]
