"""Decentralised peer-to-peer clearing: bilateral trades with product
differentiation, found by consensus ADMM in which every agent solves only its
own problem (layer 6; see :mod:`transactive.decentral.p2p_admm`).

Importing :mod:`transactive.decentral.p2p_admm` registers the mechanism
``p2p_admm``; the market registry imports it the first time the name is
asked for.
"""

from transactive._lazy import attach

_EXPORTS = {
    "ADMMResult": "transactive.decentral.admm",
    "CentralSolution": "transactive.decentral.problem",
    "P2PProblem": "transactive.decentral.problem",
    "build_problem": "transactive.decentral.problem",
    "DaskProposer": "transactive.decentral.dask",
    "clear_p2p_admm": "transactive.decentral.p2p_admm",
    "solve_admm": "transactive.decentral.admm",
    "solve_central": "transactive.decentral.problem",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
