"""What goes over the wire: signed commands, their payloads, and the session
signature of reads.

A **command** (register, submit, modify, cancel) is signed by its participant
over :func:`~transactive.settlement._signing.command_message` of
``participant, nonce, expires_ms, action, payload``; the exchange refuses a
command whose signature does not verify, whose ``expires_ms`` has passed (or
lies further ahead than the exchange allows), or whose nonce the participant
used before on a command not yet expired (a replay).

A **read** of one's own orders, trades or statement carries the header
``Authorization: Transactive <participant>:<expires_ms>:<signature hex>``,
the signature over ``canonical(["transactive.session.v1", participant,
expires_ms])``: a session token the client makes itself, valid until it
expires (at most an hour ahead).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from transactive.settlement._signing import canonical, command_message

__all__ = ["CancelPayload", "Command", "ModifyPayload", "OrderCommand", "OrderPayload",
           "RegisterCommand", "RegisterPayload", "session_header", "session_message",
           "sign_command", "small_order"]

SESSION_TAG = "transactive.session.v1"
MAX_SESSION_MS = 3_600_000
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
_LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Hex128 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
_Price = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
_Qty = Annotated[float, Field(allow_inf_nan=False, gt=0, le=1e6)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(_Strict):
    """One signed command."""

    participant: Label
    nonce: int = Field(ge=0, lt=2**63)
    expires_ms: int = Field(ge=0, lt=2**53)
    action: Literal["register", "submit", "modify", "cancel"]
    payload: dict[str, Any]
    signature: Hex128

    @field_validator("payload")
    @classmethod
    def _signable(cls, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            canonical(payload)
        except ValueError:  # NaN or infinity: JSON has no such numbers, nobody signs them
            raise ValueError("must be JSON without NaN or infinity") from None
        return payload

    def message(self) -> bytes:
        return command_message(self.participant, self.nonce, self.expires_ms, self.action,
                               self.payload)

    def row(self, at_ms: int) -> list[Any]:
        """The journal's row of this command accepted at ``at_ms``."""
        return [self.participant, self.nonce, self.expires_ms, at_ms, self.action,
                self.payload, self.signature]


# The encodings of Ed25519's points of small order (order 1, 2, 4 or 8), with
# the sign bit cleared (libsodium's blocklist, ``has_small_order``): a
# signature with such a key can be made for any message without the private
# key (the key of zeros verifies the signature of zeros), so none is a member's.
_SMALL_ORDER = frozenset(bytes.fromhex(h) for h in (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))


def small_order(public_key_hex: str) -> bool:
    """Whether a public key (64 hex digits) is a point of small order, which
    anyone can sign for.

    Examples
    --------
    >>> small_order("00" * 32), small_order("01" + "00" * 30 + "80")
    (True, True)
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    >>> small_order(key.public_bytes_raw().hex())
    False
    """
    raw = bytearray.fromhex(public_key_hex)
    raw[31] &= 0x7F
    return bytes(raw) in _SMALL_ORDER


class RegisterPayload(_Strict):
    """Join the trial: the key that signs this command and every later one."""

    public_key: Hex64
    roles: list[Literal["participant", "meter"]] = Field(default=["participant"],
                                                          min_length=1, max_length=2)
    capacity_kw: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("public_key")
    @classmethod
    def _not_small_order(cls, value: str) -> str:
        if small_order(value):
            raise ValueError("a point of small order: anyone can sign for it")
        return value


class OrderPayload(_Strict):
    """A limit order: ``id`` is the participant's own label, new for it."""

    id: Label
    side: Literal["buy", "sell"]
    quantity_kwh: _Qty
    price_per_kwh: _Price
    tif: Literal["gtc", "ioc", "fok"] = "gtc"


class ModifyPayload(_Strict):
    """A new price and/or total quantity of an open order."""

    id: Label
    price_per_kwh: _Price | None = None
    quantity_kwh: _Qty | None = None


class CancelPayload(_Strict):
    id: Label


# A payload stays the JSON object it came as (the signature covers it as sent,
# so no defaults are filled in before the check); the OpenAPI document shows
# what the exchange then requires of it.
class RegisterCommand(Command):
    """A command of ``POST /participants``."""

    action: Literal["register"]
    payload: Annotated[dict[str, Any], WithJsonSchema(RegisterPayload.model_json_schema())]


class OrderCommand(Command):
    """A command of ``POST /orders``: its payload an order (submit), a change
    (modify) or an id (cancel)."""

    action: Literal["submit", "modify", "cancel"]
    payload: Annotated[dict[str, Any], WithJsonSchema({"anyOf": [
        m.model_json_schema() for m in (OrderPayload, ModifyPayload, CancelPayload)]})]


def sign_command(key: Ed25519PrivateKey, participant: str, nonce: int, expires_ms: int,
                 action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A command as the API takes it, signed (what a device's client does).

    Examples
    --------
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> c = sign_command(key, "a", 1, 2_000_000_000_000, "cancel", {"id": "o1"})
    >>> Command(**c).participant, len(c["signature"])
    ('a', 128)
    """
    sig = key.sign(command_message(participant, nonce, expires_ms, action, payload)).hex()
    return {"participant": participant, "nonce": nonce, "expires_ms": expires_ms,
            "action": action, "payload": payload, "signature": sig}


def session_message(participant: str, expires_ms: int) -> bytes:
    return canonical([SESSION_TAG, participant, expires_ms])


def session_header(key: Ed25519PrivateKey, participant: str, expires_ms: int) -> str:
    """The ``Authorization`` header value of a read session."""
    sig = key.sign(session_message(participant, expires_ms)).hex()
    return f"Transactive {participant}:{expires_ms}:{sig}"


def parse_session(value: str) -> tuple[str, int, bytes] | None:
    """``(participant, expires_ms, signature)`` of a header value, or ``None``."""
    scheme, _, token = value.partition(" ")
    parts = token.split(":")
    if scheme != "Transactive" or len(parts) != 3 or not _LABEL.match(parts[0]):
        return None
    who, exp, sig = parts
    if not exp.isdigit() or len(exp) > 16 or not re.fullmatch(r"[0-9a-f]{128}", sig):
        return None
    return who, int(exp), bytes.fromhex(sig)
