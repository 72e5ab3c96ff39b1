"""Object-level authorization of the live exchange, driven by its own OpenAPI
document: every operation that names an object by id (a path parameter, or an
order id in a signed command) is tried by participant B on participant A's
objects, and must be refused (or act on B's own objects only) with nothing of
A's changed. A new operation that takes an id fails
:func:`test_every_id_operation_is_covered` until a case here covers it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from transactive.server.app import create_app
from transactive.server.config import ExchangeConfig
from transactive.server.protocol import session_header, sign_command
from transactive.settlement._signing import public_key_hex
from transactive.settlement.oracle import sign_reading

NOW = 1_800_000_000_000  # a gate boundary's neighbourhood does not matter: the clock stands
LATER = NOW + 60_000
OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)


class Member:
    """A participant's client: its key, its nonces, its requests."""

    def __init__(self, client: TestClient, name: str, seed: int) -> None:
        self.client, self.name = client, name
        self.key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        self.nonce = seed * 1_000  # nonces apart, so a command in another's name is no replay

    def command(self, action: str, payload: dict[str, Any], *, as_: str | None = None
                ) -> dict[str, Any]:
        """A command signed by this member's key, in its own name or ``as_`` another's."""
        self.nonce += 1
        return sign_command(self.key, as_ or self.name, self.nonce, LATER, action, payload)

    def register(self) -> None:
        r = self.client.post("/participants", json=self.command(
            "register", {"public_key": public_key_hex(self.key), "capacity_kw": 10,
                         "roles": ["participant", "meter"]}))
        assert r.status_code == 201, r.text

    def orders(self, *commands: dict[str, Any]) -> Any:
        return self.client.post("/orders", json={"commands": list(commands)})

    def session(self, *, as_: str | None = None) -> dict[str, str]:
        return {"Authorization": session_header(self.key, as_ or self.name, LATER)}


class Market:
    """A running exchange with A's two open orders and B's one."""

    def __init__(self, client: TestClient, app: FastAPI) -> None:
        self.client, self.app = client, app
        self.a, self.b = Member(client, "a", 1), Member(client, "b", 2)
        for m in (self.a, self.b):
            m.register()
        r = self.a.orders(
            self.a.command("submit", {"id": "o1", "side": "buy", "quantity_kwh": 0.02,
                                      "price_per_kwh": 0.10}),
            self.a.command("submit", {"id": "o2", "side": "sell", "quantity_kwh": 0.02,
                                      "price_per_kwh": 0.40}))
        assert r.status_code == 200, r.text
        r = self.b.orders(self.b.command("submit", {"id": "b1", "side": "buy",
                                                    "quantity_kwh": 0.01,
                                                    "price_per_kwh": 0.05}))
        assert r.status_code == 200, r.text

    def snapshot(self) -> tuple[Any, ...]:
        """The exchange's state hash and everything A sees of its own."""
        c, h = self.client, self.a.session()
        return (c.get("/market/state").json()["state_hash"],
                c.get("/me/orders", headers=h).json(), c.get("/me/trades", headers=h).json(),
                c.get("/me/statement", headers=h).json())

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.snapshot()
        yield
        assert self.snapshot() == before


@pytest.fixture(params=["auction", "continuous"])
def market(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Market]:
    app = create_app(tmp_path, ExchangeConfig(mode=request.param), operator_key=OPERATOR,
                     clock=lambda: NOW, gate_timer=False)
    with TestClient(app) as client:
        yield Market(client, app)


def refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"]["field"] == field


# ------------------------------------------------- the id-taking operations
def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(spec, node)


def _command_actions(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The actions of the signed commands a request body carries, at any depth
    (a command names its own objects by the ids in its payload)."""
    schema = _resolve(spec, schema)
    props = schema.get("properties", {})
    if {"action", "payload", "signature"} <= props.keys():
        action = _resolve(spec, props["action"])
        return set(action["enum"]) if "enum" in action else {action["const"]}
    found: set[str] = set()
    for sub in (*props.values(), *([schema["items"]] if "items" in schema else [])):
        found |= _command_actions(spec, sub)
    return found


def id_operations(app: FastAPI) -> set[str]:
    """``"METHOD /path"`` of each operation with a path parameter, and
    ``"METHOD /path action"`` of each signed command an operation takes."""
    spec = app.openapi()
    found = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            name = f"{method.upper()} {path}"
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                found.add(name)
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                found |= {f"{name} {a}" for a in _command_actions(spec, body["schema"])}
    return found


# ------------------------------------------------------------------- cases
def read_order(m: Market) -> None:
    c = m.client
    with m.unchanged():
        refused(c.get("/me/orders/o1", headers=m.b.session()), 404, "order_id")
        refused(c.get("/me/orders/o1", headers=m.b.session(as_="a")), 401, "authorization")
    assert c.get("/me/orders/b1", headers=m.a.session()).status_code == 404
    mine = c.get("/me/orders/b1", headers=m.b.session()).json()
    assert (mine["participant"], mine["price_per_kwh"]) == ("b", 0.05)


def change_order(action: str, payload: dict[str, Any]) -> Callable[[Market], None]:
    def case(m: Market) -> None:
        with m.unchanged():
            refused(m.b.orders(m.b.command(action, payload)), 404, "payload.id")
            refused(m.b.orders(m.b.command(action, payload, as_="a")), 401, "signature")
            # the foreign command alongside a valid one of B's: all or nothing
            refused(m.b.orders(m.b.command("cancel", {"id": "b1"}),
                               m.b.command(action, payload)), 404, "payload.id")
    return case


def submit_same_id(m: Market) -> None:
    order = {"id": "o1", "side": "sell", "quantity_kwh": 0.01, "price_per_kwh": 1.5}
    with m.unchanged():
        refused(m.b.orders(m.b.command("submit", order, as_="a")), 401, "signature")
    a_before = m.snapshot()[1:]
    r = m.b.orders(m.b.command("submit", order))  # B's own order "o1": ids are per member
    assert r.status_code == 200, r.text
    assert m.snapshot()[1:] == a_before
    mine = m.client.get("/me/orders/o1", headers=m.b.session()).json()
    assert (mine["participant"], mine["side"]) == ("b", "sell")
    # B's cancel of "o1" now cancels B's order, never A's
    assert m.b.orders(m.b.command("cancel", {"id": "o1"})).status_code == 200
    assert m.snapshot()[1:] == a_before


def register_as_a(m: Market) -> None:
    c = m.client
    with m.unchanged():
        take_over = m.b.command("register", {"public_key": public_key_hex(m.b.key),
                                             "capacity_kw": 10}, as_="a")
        refused(c.post("/participants", json=take_over), 409, "participant")
        # A's name with A's key in the payload, but not signed by A
        forged = m.b.command("register", {"public_key": public_key_hex(m.a.key),
                                          "capacity_kw": 10}, as_="a")
        refused(c.post("/participants", json=forged), 401, "signature")


CASES: dict[str, Callable[[Market], None]] = {
    "GET /me/orders/{order_id}": read_order,
    "POST /orders modify": change_order("modify", {"id": "o1", "price_per_kwh": 0.3}),
    "POST /orders cancel": change_order("cancel", {"id": "o1"}),
    "POST /orders submit": submit_same_id,
    "POST /participants register": register_as_a,
}


def test_commands_at_the_other_endpoint(market: Market) -> None:
    """A registration sent as an order, an order as a registration: refused
    for their action whatever they name."""
    c, b = market.client, market.b
    with market.unchanged():
        refused(b.orders(b.command("register", {"public_key": public_key_hex(b.key),
                                                "capacity_kw": 10})), 422, "commands.0.action")
        for action, payload in (("submit", {"id": "o1", "side": "buy", "quantity_kwh": 0.01,
                                            "price_per_kwh": 0.1}),
                                ("modify", {"id": "o1", "price_per_kwh": 0.3}),
                                ("cancel", {"id": "o1"})):
            refused(c.post("/participants", json=b.command(action, payload)), 422, "action")
            refused(c.post("/participants", json=b.command(action, payload, as_="a")), 422,
                    "action")


def test_every_id_operation_is_covered(tmp_path: Path) -> None:
    app = create_app(tmp_path, operator_key=OPERATOR, clock=lambda: NOW, gate_timer=False)
    found = id_operations(app)
    assert {"GET /me/orders/{order_id}", "POST /orders cancel"} <= found
    assert found == set(CASES)


@pytest.mark.parametrize("operation", sorted(CASES))
def test_b_cannot_act_on_a_objects(market: Market, operation: str) -> None:
    CASES[operation](market)
    # A's orders still answer A, as they were
    o1 = market.client.get("/me/orders/o1", headers=market.a.session()).json()
    assert (o1["participant"], o1["status"], o1["price_per_kwh"]) == ("a", "open", 0.10)


def test_a_meter_cannot_report_for_another(market: Market) -> None:
    """A reading names its meter: B's key cannot sign one for meter A (both meters)."""
    forged = sign_reading(market.b.key, "a", 0, 10, 1, NOW).to_row()
    with market.unchanged():
        refused(market.client.post("/readings", json={"readings": [forged]}), 401, "readings")
    own = sign_reading(market.a.key, "a", 0, 10, 1, NOW).to_row()
    assert market.client.post("/readings", json={"readings": [own]}).status_code == 200


# --------------------------------------------------------------- operator
def operator_operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op for path, item in app.openapi()["paths"].items()
            for method, op in item.items() if path.startswith("/operator/")}


BODIES = {"POST /operator/release": {"interval": 0}}


def call(m: Market, operation: str, headers: dict[str, str]) -> Any:
    method, path = operation.split(" ")
    return m.client.request(method, path, headers=headers, json=BODIES.get(operation))


def test_operator_endpoints_refuse_participants(market: Market) -> None:
    ops = operator_operations(market.app)
    assert set(ops) == {"GET /operator/report", "POST /operator/release"}
    assert set(BODIES) <= set(ops)
    now = NOW + 1
    with market.unchanged():
        for op in sorted(ops):
            refused(call(market, op, market.a.session()), 403, "authorization")
            # the operator's name, a participant's signature
            refused(call(market, op, market.a.session(as_="operator")), 401, "authorization")
            expired = {"Authorization": session_header(OPERATOR, "operator", NOW - 1)}
            refused(call(market, op, expired), 401, "authorization")
            refused(call(market, op, {"Authorization": "Bearer x"}), 401, "authorization")
            unsigned = call(market, op, {})
            assert unsigned.status_code in (401, 422), unsigned.text
    operator = {"Authorization": session_header(OPERATOR, "operator", now)}
    assert call(market, "GET /operator/report", operator).status_code == 200
    refused(call(market, "POST /operator/release", operator), 404, "interval")
