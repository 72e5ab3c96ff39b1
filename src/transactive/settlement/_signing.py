"""Canonical bytes and Ed25519 signatures shared by the journal and the oracle.

What is signed (each message is canonical JSON: sorted keys, no spaces, ASCII):

- an order: ``["transactive.order.v1", interval, id, participant, side, price, quantity]``
  (``side`` is +1 buy / -1 sell, ``price`` per kWh, ``quantity`` in kWh, as in
  :class:`~transactive.orders.OrderBatch`), signed by the participant;
- a meter reading: ``["transactive.reading.v1", meter_id, interval, energy_wh,
  nonce, timestamp_ms]``, signed by the meter;
- a command to the live exchange: ``["transactive.command.v1", participant,
  nonce, expires_ms, action, payload]`` (``payload`` a JSON object, such as an
  order), signed by the participant;
- a journal checkpoint: ``["transactive.checkpoint.v1", seq, head]`` (the
  sequence number and hash of the record it covers), signed by the operator
  (:mod:`~transactive.settlement.operator`);
- a receipt the exchange hands out: ``["transactive.receipt.v1", body]``
  (``body`` a JSON object), signed by the operator.

The leading tag keeps a signature for one kind of message from being valid
for another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transactive.errors import InputError
from transactive.orders import OrderBatch

__all__ = [
    "canonical",
    "checkpoint_message",
    "command_message",
    "order_messages",
    "public_key",
    "public_key_hex",
    "reading_message",
    "receipt_message",
    "sign_orders",
    "sign_receipt",
    "verifies",
    "verify_many",
    "verify_receipt",
]

ORDER_TAG = "transactive.order.v1"
READING_TAG = "transactive.reading.v1"
COMMAND_TAG = "transactive.command.v1"
CHECKPOINT_TAG = "transactive.checkpoint.v1"
RECEIPT_TAG = "transactive.receipt.v1"
_PARALLEL_FROM = 256  # verify in threads (OpenSSL releases the GIL) from this many


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII only, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def public_key(value: Ed25519PublicKey | bytes | str, field: str = "public_key"
               ) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, 32 raw bytes or 64 hex digits."""
    if isinstance(value, Ed25519PublicKey):
        return value
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise InputError(field, "must be an Ed25519 public key (32 bytes or 64 hex digits)"
                         ) from None


def public_key_hex(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The 32 raw bytes of a public key as hex."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _label(value: Any) -> str:
    return _json_str(value) if isinstance(value, str) else str(int(value))


def order_messages(interval: int, orders: OrderBatch) -> list[bytes]:
    """The bytes each order's participant signs (see the module docstring).

    Equal to ``canonical([ORDER_TAG, interval, id, participant, side, price,
    quantity])`` for every order, built without a JSON encoder call per order.

    Examples
    --------
    >>> ob = OrderBatch(id=[7], participant=["a"], side=["sell"], price=[0.1], quantity=[2.0])
    >>> order_messages(3, ob)
    [b'["transactive.order.v1",3,7,"a",-1,0.1,2.0]']
    """
    head = f'["{ORDER_TAG}",{int(interval)},'
    ids = [_label(v) for v in orders.id.tolist()]
    who = [_label(v) for v in orders.participant.tolist()]
    return [
        f"{head}{i},{p},{s},{pr!r},{q!r}]".encode()
        for i, p, s, pr, q in zip(ids, who, orders.side.tolist(), orders.price.tolist(),
                                  orders.quantity.tolist(), strict=True)
    ]


def sign_orders(interval: int, orders: OrderBatch,
                private_keys: Mapping[Any, Ed25519PrivateKey]) -> list[bytes]:
    """Sign every order with its participant's key (what a participant's client does).

    Examples
    --------
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> ob = OrderBatch(id=[1], participant=["a"], side=["buy"], price=[0.2], quantity=[1.0])
    >>> [len(s) for s in sign_orders(0, ob, {"a": key})]
    [64]
    """
    sigs = []
    for row, (participant, msg) in enumerate(zip(orders.participant.tolist(),
                                                 order_messages(interval, orders), strict=True)):
        key = private_keys.get(participant)
        if key is None:
            raise InputError("participant", f"no private key for {participant!r}", row=row)
        sigs.append(key.sign(msg))
    return sigs


def reading_message(meter_id: str, interval: int, energy_wh: int, nonce: int,
                    timestamp_ms: int) -> bytes:
    """The bytes a meter signs for one reading."""
    return json.dumps([READING_TAG, meter_id, interval, energy_wh, nonce, timestamp_ms],
                      separators=(",", ":"), ensure_ascii=True).encode()


def command_message(participant: str, nonce: int, expires_ms: int, action: str,
                    payload: Mapping[str, Any]) -> bytes:
    """The bytes a participant signs for one command to the live exchange.

    Examples
    --------
    >>> command_message("a", 1, 1700000000000, "cancel", {"id": "o1"})
    b'["transactive.command.v1","a",1,1700000000000,"cancel",{"id":"o1"}]'
    """
    return canonical([COMMAND_TAG, participant, nonce, expires_ms, action, payload])


def checkpoint_message(seq: int, head: str) -> bytes:
    """The bytes the operator signs to attest a journal through record ``seq``
    whose hash is ``head`` (64 hex digits)."""
    return canonical([CHECKPOINT_TAG, seq, head])


def receipt_message(body: Mapping[str, Any]) -> bytes:
    """The bytes the operator signs for a receipt whose content is ``body``
    (a JSON object: what was received, when, its id ...)."""
    try:
        return canonical([RECEIPT_TAG, dict(body)])
    except (TypeError, ValueError) as exc:
        raise InputError("body", f"cannot be signed as JSON: {exc}") from None


def sign_receipt(key: Ed25519PrivateKey, body: Mapping[str, Any]) -> str:
    """The operator's signature of a receipt (:func:`receipt_message`), as hex.

    Examples
    --------
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> body = {"order_id": 7, "interval": 12, "received_ms": 1700000000000}
    >>> signature = sign_receipt(key, body)
    >>> verify_receipt(key.public_key(), body, signature)
    True
    >>> verify_receipt(key.public_key(), {**body, "interval": 13}, signature)
    False
    """
    return key.sign(receipt_message(body)).hex()


def verify_receipt(public_key: Ed25519PublicKey, body: Mapping[str, Any],
                   signature_hex: str) -> bool:
    """Whether ``signature_hex`` is ``public_key``'s signature of the receipt
    ``body`` (False for a malformed signature too)."""
    return verifies(public_key, receipt_message(body), signature_hex)


def verifies(key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    """Whether ``signature_hex`` (128 hex digits) is ``key``'s signature of
    ``message`` (False for anything else)."""
    try:
        signature = bytes.fromhex(signature_hex)
    except (TypeError, ValueError):
        return False
    return bool(_verify_chunk([(key, message, signature)])[0])


def _verify_chunk(items: Sequence[tuple[Ed25519PublicKey | None, bytes, bytes]]) -> list[bool]:
    out = []
    for key, msg, sig in items:
        if key is None or len(sig) != 64:
            out.append(False)
            continue
        try:
            key.verify(sig, msg)
            out.append(True)
        except InvalidSignature:
            out.append(False)
    return out


def verify_many(keys: Sequence[Ed25519PublicKey | None], messages: Sequence[bytes],
                signatures: Sequence[bytes], *, workers: int | None = None
                ) -> npt.NDArray[np.bool_]:
    """Which signatures verify (a missing key or a malformed signature is ``False``).

    Large batches are split over ``workers`` threads (default: the CPU count,
    at most 4); OpenSSL releases the GIL while it verifies.
    """
    items = list(zip(keys, messages, signatures, strict=True))
    n_workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n_workers <= 1 or len(items) < _PARALLEL_FROM:
        return np.array(_verify_chunk(items), dtype=bool)
    size = -(-len(items) // n_workers)
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        parts = list(pool.map(_verify_chunk, chunks))
    return np.array([ok for part in parts for ok in part], dtype=bool)
