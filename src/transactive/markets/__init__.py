"""Market mechanisms, one module each, registered by name.

Importing this package registers every built-in mechanism; see
:mod:`transactive.markets.registry` for the contract they keep. ``p2p_admm``
lives a layer up, in :mod:`transactive.decentral`, and is imported when first
asked for.
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
from transactive.markets.registry import available, clear, defer, get, register

defer("p2p_admm", "transactive.decentral.p2p_admm")

__all__ = ["available", "clear", "get", "register"]
