"""The live exchange: devices trade machine to machine over an HTTP API.

- :mod:`~transactive.server.exchange`: the state machine (members, orders,
  auctions or the continuous book, settlement in the ledger, recovery from
  the journal);
- :mod:`~transactive.server.app`: the FastAPI application (``transactive serve``);
- :mod:`~transactive.server.client`: a device's client (``transactive device``).

Needs the ``server`` extra: ``pip install 'transactive[server]'``.
"""
