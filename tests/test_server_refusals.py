"""What the live exchange refuses, with which status and field, and that a
refused request changes nothing (the state hash): unsigned, badly signed,
replayed and expired commands; bodies over the limit; a client over its
order rate; trading halted by the circuit breaker; a full trial; the
capacity, position and price limits. The clock stands still unless a test
moves it, and gates close only when a command passes one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from transactive.server.app import create_app
from transactive.server.config import ExchangeConfig
from transactive.server.protocol import session_header, sign_command
from transactive.settlement._signing import public_key_hex

START = 1_800_000_000_000
OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
# 10 kW for a 15 s gate period: at most 0.041667 kWh an order
CAPACITY_KW = 10


class Trial:
    """A running exchange on a clock the test moves (``now``)."""

    def __init__(self, client: TestClient, now: list[int]) -> None:
        self.client, self.now = client, now
        self.nonces: dict[str, int] = {}
        self.keys: dict[str, Ed25519PrivateKey] = {}

    def key(self, who: str) -> Ed25519PrivateKey:
        if who not in self.keys:
            self.keys[who] = Ed25519PrivateKey.from_private_bytes(
                bytes([len(self.keys) + 1]) * 32)
        return self.keys[who]

    def command(self, who: str, action: str, payload: dict[str, Any], *,
                key: Ed25519PrivateKey | None = None, expires_ms: int | None = None,
                nonce: int | None = None) -> dict[str, Any]:
        if nonce is None:
            nonce = self.nonces[who] = self.nonces.get(who, 0) + 1
        return sign_command(key or self.key(who), who, nonce,
                            self.now[0] + 60_000 if expires_ms is None else expires_ms,
                            action, payload)

    def register(self, who: str, *, capacity_kw: float = CAPACITY_KW,
                 roles: tuple[str, ...] = ("participant",)) -> Any:
        return self.client.post("/participants", json=self.command(who, "register", {
            "public_key": public_key_hex(self.key(who)), "capacity_kw": capacity_kw,
            "roles": list(roles)}))

    def post(self, *commands: dict[str, Any]) -> Any:
        return self.client.post("/orders", json={"commands": list(commands)})

    def submit(self, who: str, oid: str, side: str, qty: float, price: float,
               **kw: Any) -> Any:
        return self.post(self.command(who, "submit", {
            "id": oid, "side": side, "quantity_kwh": qty, "price_per_kwh": price, **kw}))

    def ok(self, response: Any) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()

    def state(self) -> str:
        return str(self.client.get("/market/state").json()["state_hash"])

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.state()
        yield
        assert self.state() == before


def refused(response: Any, status: int, field: str, problem: str = "") -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["field"] == field, detail
    assert problem in detail["problem"], detail


@contextmanager
def running(tmp_path: Path, config: ExchangeConfig) -> Iterator[Trial]:
    now = [START]
    app = create_app(tmp_path, config, operator_key=OPERATOR, clock=lambda: now[0],
                     gate_timer=False)
    with TestClient(app) as client:
        yield Trial(client, now)


@pytest.fixture(params=["auction", "continuous"])
def trial(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trial]:
    with running(tmp_path, ExchangeConfig(mode=request.param)) as t:
        for who in ("a", "b"):
            t.ok(t.register(who))
        yield t


# ---------------------------------------------------------------- signatures
def test_unsigned_and_malformed_commands(trial: Trial) -> None:
    cmd = trial.command("a", "submit", {"id": "o1", "side": "buy", "quantity_kwh": 0.01,
                                        "price_per_kwh": 0.2})
    with trial.unchanged():
        unsigned = {k: v for k, v in cmd.items() if k != "signature"}
        refused(trial.post(unsigned), 422, "commands.0.signature", "required")
        refused(trial.post({**cmd, "signature": ""}), 422, "commands.0.signature")
        refused(trial.post({**cmd, "signature": cmd["signature"].upper()}), 422,
                "commands.0.signature")
        refused(trial.post({**cmd, "nonce": -1}), 422, "commands.0.nonce")
        refused(trial.client.post("/orders", json={"commands": []}), 422, "commands")
        refused(trial.client.post("/orders", content=b"{", headers={
            "content-type": "application/json"}), 422, "body")
        odd = trial.command("a", "submit", {"id": "o1", "side": "buy", "quantity_kwh": 0.01,
                                            "price_per_kwh": 0.2, "colour": "red"})
        refused(trial.post(odd), 422, "payload.colour", "unknown field")
        refused(trial.post(trial.command("c", "cancel", {"id": "o1"})), 401, "participant",
                "not registered")
    trial.ok(trial.post(cmd))


def test_numbers_json_has_not_and_deep_nesting(trial: Trial) -> None:
    """Python's JSON reader takes NaN and Infinity, which no signature covers
    (canonical JSON refuses them): refused with the field, never a 500."""
    cmd = trial.command("a", "cancel", {"id": "o1"})
    with trial.unchanged():
        for number in ("NaN", "Infinity", "-Infinity"):
            body = json.dumps({"commands": [cmd]}).replace('"o1"', number)
            refused(trial.client.post("/orders", content=body, headers={
                "content-type": "application/json"}), 422, "commands.0.payload", "NaN")
        deep = json.dumps({"commands": [cmd]}).replace('"o1"', "[" * 20_000 + "]" * 20_000)
        answer = trial.client.post("/orders", content=deep, headers={
            "content-type": "application/json"})
        # too deep for the JSON reader (422 "body"), or, where something (hypothesis)
        # raised the recursion limit, read whole and refused by its signature (401):
        # refused either way, never a 500
        assert (answer.status_code, answer.json()["detail"]["field"]) in (
            (422, "body"), (401, "signature")), answer.text


def test_badly_signed_commands(trial: Trial) -> None:
    payload = {"id": "o1", "side": "buy", "quantity_kwh": 0.01, "price_per_kwh": 0.2}
    other = Ed25519PrivateKey.from_private_bytes(bytes([77]) * 32)
    good = trial.command("a", "submit", payload)
    sig = bytearray.fromhex(good["signature"])
    sig[17] ^= 0x01
    with trial.unchanged():
        refused(trial.post(trial.command("a", "submit", payload, key=other)), 401, "signature")
        refused(trial.post({**good, "signature": sig.hex()}), 401, "signature")
        # a signed command changed after signing: its price, its expiry
        refused(trial.post({**good, "payload": {**payload, "price_per_kwh": 0.3}}), 401,
                "signature")
        refused(trial.post({**good, "expires_ms": good["expires_ms"] + 1}), 401, "signature")
        # all or nothing: one bad signature refuses the batch
        second = trial.command("a", "submit", {**payload, "id": "o2"}, key=other)
        refused(trial.post(good, second), 401, "signature")
    trial.ok(trial.post(good))


def test_replayed_commands(trial: Trial) -> None:
    cmd = trial.command("a", "submit", {"id": "o1", "side": "buy", "quantity_kwh": 0.01,
                                        "price_per_kwh": 0.2})
    trial.ok(trial.post(cmd))
    with trial.unchanged():
        refused(trial.post(cmd), 409, "nonce", "replay")
        again = trial.command("a", "cancel", {"id": "o1"}, nonce=cmd["nonce"])
        refused(trial.post(again), 409, "nonce", "replay")
        twice = [trial.command("a", "submit", {"id": f"x{i}", "side": "buy",
                                                "quantity_kwh": 0.01, "price_per_kwh": 0.2},
                               nonce=1000) for i in range(2)]
        refused(trial.post(*twice), 409, "nonce", "twice")
        refused(trial.submit("a", "o1", "buy", 0.01, 0.2), 409, "payload.id", "exists")
        # B's registration replayed, and replayed under a new nonce
        refused(trial.register("b"), 409, "participant", "registered already")


def test_expired_commands(trial: Trial) -> None:
    payload = {"id": "o1", "side": "buy", "quantity_kwh": 0.01, "price_per_kwh": 0.2}
    now = trial.now[0]
    with trial.unchanged():
        refused(trial.post(trial.command("a", "submit", payload, expires_ms=now - 1)), 422,
                "expires_ms", "expired")
        refused(trial.post(trial.command("a", "submit", payload,
                                         expires_ms=now + 301_000)), 422, "expires_ms")
    late = trial.command("a", "submit", payload)
    # signed in time, it arrives too late (B's order first closes the gates passed)
    trial.now[0] = late["expires_ms"] + 1
    trial.ok(trial.submit("b", "o1", "buy", 0.01, 0.2))
    with trial.unchanged():
        refused(trial.post(late), 422, "expires_ms", "expired")
    trial.now[0] = now = late["expires_ms"] + 1
    trial.ok(trial.post(trial.command("a", "submit", payload, expires_ms=now)))


def test_expired_and_forged_sessions(trial: Trial) -> None:
    now, key = trial.now[0], trial.key("a")
    c = trial.client
    for header in (session_header(key, "a", now - 1), session_header(key, "a", now + 3_600_001),
                   session_header(trial.key("b"), "a", now + 1000), "Transactive a:1:zz",
                   f"Bearer {session_header(key, 'a', now + 1000).split(' ')[1]}"):
        refused(c.get("/me/orders", headers={"Authorization": header}), 401, "authorization")
    refused(c.get("/me/orders"), 422, "authorization", "required")
    assert c.get("/me/orders", headers={"Authorization": session_header(key, "a", now)}
                 ).status_code == 200


# ------------------------------------------------------------------- bodies
def test_body_over_the_limit(trial: Trial) -> None:
    limit = ExchangeConfig().limits.max_body_bytes
    big = json.dumps({"commands": [trial.command("a", "cancel", {"id": "o" * 60})] * 300})
    assert len(big) > limit
    with trial.unchanged():
        refused(trial.client.post("/orders", content=big, headers={
            "content-type": "application/json"}), 413, "body")

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for i in range(0, len(big), 4096):
                yield big[i:i + 4096].encode()

        r = trial.client.post("/orders", content=chunks(), headers={
            "content-type": "application/json"})
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.request.headers
        refused(r, 413, "body")
        refused(trial.client.post("/participants", content=chunks(), headers={
            "content-type": "application/json"}), 413, "body")
    # a body just under the limit streamed the same way is read whole
    small = json.dumps({"commands": [trial.command("a", "submit", {
        "id": "o1", "side": "buy", "quantity_kwh": 0.01, "price_per_kwh": 0.2})]})
    r = trial.client.post("/orders", content=iter([small[:50].encode(), small[50:].encode()]),
                          headers={"content-type": "application/json"})
    trial.ok(r)


def test_too_many_commands_in_one_request(trial: Trial) -> None:
    most = ExchangeConfig().limits.max_orders_per_request
    cmds = [trial.command("a", "submit", {"id": f"o{i}", "side": "buy", "quantity_kwh": 0.001,
                                          "price_per_kwh": 0.2}) for i in range(most + 1)]
    with trial.unchanged():
        refused(trial.post(*cmds), 422, "commands", f"at most {most}")


# --------------------------------------------------------------------- rate
def test_over_rate_client(tmp_path: Path) -> None:
    config = ExchangeConfig(mode="continuous", limits={"orders_per_s": 2})
    with running(tmp_path, config) as t:
        t.ok(t.register("a"))
        t.ok(t.register("b"))
        t.ok(t.submit("a", "o1", "buy", 0.01, 0.2))
        t.ok(t.submit("a", "o2", "buy", 0.01, 0.2))
        with t.unchanged():
            refused(t.submit("a", "o3", "buy", 0.01, 0.2), 429, "orders", "over 2 orders")
            refused(t.post(t.command("a", "cancel", {"id": "o1"})), 429, "orders")
        t.ok(t.submit("b", "o3", "buy", 0.01, 0.2))  # a budget per participant
        t.now[0] += 500  # one token back
        t.ok(t.submit("a", "o3", "buy", 0.01, 0.2))
        with t.unchanged():
            refused(t.submit("a", "o4", "buy", 0.01, 0.2), 429, "orders")


# ------------------------------------------------------------------ breaker
def test_breaker_halts_trading_but_not_cancels(tmp_path: Path) -> None:
    config = ExchangeConfig(mode="continuous",
                            breaker={"max_move": 0.5, "window": 3, "halt_s": 60})
    with running(tmp_path, config) as t:
        for who in ("a", "b"):
            t.ok(t.register(who))
        t.ok(t.submit("a", "rest", "sell", 0.01, 1.9))
        for i, price in enumerate([0.20, 0.22, 0.21, 0.50]):
            t.ok(t.submit("a", f"s{i}", "sell", 0.01, price))
            t.ok(t.submit("b", f"b{i}", "buy", 0.01, price))
        summary = t.client.get("/market/summary").json()
        assert summary["trades"] == 4
        assert summary["halted_until_ms"] == t.now[0] + 60_000
        with t.unchanged():
            r = t.submit("b", "late", "buy", 0.01, 0.2)
            refused(r, 503, "commands", "halted")
            assert r.headers["Retry-After"] == "60"
            modify = t.command("a", "modify", {"id": "rest", "price_per_kwh": 1.8})
            refused(t.post(modify), 503, "commands")
            # a cancel with a submit in one request: all or nothing
            refused(t.post(t.command("a", "cancel", {"id": "rest"}),
                           t.command("a", "submit", {"id": "x", "side": "sell",
                                                     "quantity_kwh": 0.01,
                                                     "price_per_kwh": 0.2})), 503, "commands")
        t.ok(t.post(t.command("a", "cancel", {"id": "rest"})))
        t.now[0] += 30_000
        r = t.submit("b", "late", "buy", 0.01, 0.2)
        refused(r, 503, "commands")
        assert r.headers["Retry-After"] == "30"
        t.now[0] += 30_000
        t.ok(t.submit("b", "late", "buy", 0.01, 0.2))


# ------------------------------------------------------------ trial limits
def test_full_trial(tmp_path: Path) -> None:
    with running(tmp_path, ExchangeConfig(limits={"max_participants": 2})) as t:
        t.ok(t.register("a"))
        t.ok(t.register("b"))
        with t.unchanged():
            refused(t.register("c"), 403, "participant", "full (2 participants)")
        assert t.client.get("/market/summary").json()["participants"] == 2


def test_capacity_limits(trial: Trial) -> None:
    most = CAPACITY_KW * 15 / 3600
    with trial.unchanged():
        refused(trial.register("big", capacity_kw=51), 403, "payload.capacity_kw", "above")
        refused(trial.register("zero", capacity_kw=0), 422, "payload.capacity_kw")
        refused(trial.submit("a", "o1", "sell", most * 1.01, 0.2), 422,
                "payload.quantity_kwh", "registered capacity")
    trial.ok(trial.submit("a", "o1", "sell", most / 2, 0.2))
    with trial.unchanged():
        refused(trial.post(trial.command("a", "modify", {"id": "o1",
                                                         "quantity_kwh": most * 1.01})),
                422, "payload.quantity_kwh", "registered capacity")
        refused(trial.submit("a", "o2", "sell", -1, 0.2), 422, "payload.quantity_kwh")
        refused(trial.submit("a", "o2", "sell", 0, 0.2), 422, "payload.quantity_kwh")
    trial.ok(trial.post(trial.command("a", "modify", {"id": "o1", "quantity_kwh": most})))


def test_small_order_keys_refused(trial: Trial) -> None:
    """A key of small order verifies a forged signature (the signature of zeros
    for the key of zeros, on any message): it could join as anyone, and anyone
    could then order in its name."""
    for key_hex, sig_hex in (("00" * 32, "00" * 64), ("01" + "00" * 31, "01" + "00" * 63)):
        forged = {"participant": "w", "nonce": 1, "expires_ms": trial.now[0] + 60_000,
                  "action": "register", "payload": {"public_key": key_hex, "capacity_kw": 10},
                  "signature": sig_hex}
        with trial.unchanged():
            refused(trial.client.post("/participants", json=forged), 422,
                    "payload.public_key", "small order")


def test_meter_only_member_may_not_trade(trial: Trial) -> None:
    trial.ok(trial.register("m", roles=("meter",)))
    with trial.unchanged():
        refused(trial.submit("m", "o1", "sell", 0.01, 0.2), 403, "participant", "may not trade")


def test_position_limit(tmp_path: Path) -> None:
    with running(tmp_path, ExchangeConfig(limits={"position_limit_kwh": 0.05})) as t:
        t.ok(t.register("a"))
        t.ok(t.submit("a", "o1", "buy", 0.03, 0.2))
        t.ok(t.submit("a", "o0", "buy", 0.015, 0.2))
        with t.unchanged():
            refused(t.submit("a", "o2", "buy", 0.03, 0.2), 403, "payload.quantity_kwh",
                    "position limit")
            refused(t.post(t.command("a", "modify", {"id": "o1", "quantity_kwh": 0.04})),
                    403, "payload.quantity_kwh", "buys would reach 0.055")
            # two orders in one request that reach the limit together
            refused(t.post(*[t.command("a", "submit", {"id": f"s{i}", "side": "sell",
                                                      "quantity_kwh": 0.03,
                                                      "price_per_kwh": 0.2})
                             for i in range(2)]), 403, "payload.quantity_kwh", "sells")
        t.ok(t.submit("a", "s1", "sell", 0.03, 0.2))  # sells count apart from buys
        t.ok(t.submit("a", "o2", "buy", 0.005, 0.2))  # up to the limit
        t.ok(t.post(t.command("a", "cancel", {"id": "o1"})))
        t.ok(t.submit("a", "o3", "buy", 0.03, 0.2))  # a cancel frees its quantity


def test_price_band(trial: Trial) -> None:
    with trial.unchanged():
        for price in (2.01, -0.51, 1e6, -1e6):
            refused(trial.submit("a", "o1", "buy", 0.01, price), 422, "payload.price_per_kwh",
                    "band")
        refused(trial.submit("a", "o1", "buy", 0.01, 1e7), 422, "payload.price_per_kwh")
    trial.ok(trial.submit("a", "o1", "buy", 0.01, 2.0))
    trial.ok(trial.submit("a", "o2", "buy", 0.01, -0.5))
    with trial.unchanged():
        refused(trial.post(trial.command("a", "modify", {"id": "o1", "price_per_kwh": 2.5})),
                422, "payload.price_per_kwh", "band")
