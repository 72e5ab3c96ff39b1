"""Schemathesis against the exchange's own OpenAPI document, in process: for
every operation, schema-valid requests (with and without a valid session) and
schema-violating ones, some 3,000 in all. No answer is a 5xx; every status is
one the document lists, every body fits its schema and content type;
invalid requests are refused and valid ones not refused as invalid.

The exchange runs continuous (its book and trades are public) with two
members who have traded, on a clock that stands still."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from transactive.server.app import create_app
from transactive.server.config import ExchangeConfig
from transactive.server.protocol import session_header, sign_command, small_order
from transactive.settlement._signing import public_key_hex

pytestmark = pytest.mark.slow

NOW = 1_800_000_000_000
OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
KEYS = {p: Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
        for i, p in enumerate("ab")}
EXAMPLES = 100  # per operation, generation mode and session
# a body over the size limit is refused as such (413), the refusal of too many
# readings or commands
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]}}})


def _document() -> dict[str, Any]:
    """The OpenAPI document (create_app touches no folder until it starts)."""
    return create_app(Path("unused"), operator_key=OPERATOR).openapi()


OPERATIONS = sorted(f"{method.upper()} {path}" for path, item in _document()["paths"].items()
                    for method in item)
# the operations behind a session: whose session opens them
SESSIONS = {op: ("operator" if " /operator/" in op else "a") for op in OPERATIONS
            if any(p["name"] == "authorization"
                   for p in _document()["paths"][op.split(" ")[1]][op.split(" ")[0].lower()]
                   .get("parameters", []))}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.schema = schemathesis.openapi.from_dict(client.app.openapi(),  # type: ignore[attr-defined]
                                                     config=CONFIG)

    def send(self, case: schemathesis.Case) -> Any:
        kw = case.as_transport_kwargs(base_url="http://testserver")
        assert not kw.pop("cookies")  # the document has no cookie parameter
        if "data" in kw:  # raw bytes (a body schemathesis made not JSON)
            kw["content"] = kw.pop("data")
        return self.client.request(**kw)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    app = create_app(tmp_path_factory.mktemp("exchange"), ExchangeConfig(mode="continuous"),
                     operator_key=OPERATOR, clock=lambda: NOW, gate_timer=False)
    with TestClient(app) as client:
        nonce = iter(range(1, 1000))
        for p, key in KEYS.items():
            r = client.post("/participants", json=sign_command(
                key, p, next(nonce), NOW + 60_000, "register",
                {"public_key": public_key_hex(key), "capacity_kw": 10,
                 "roles": ["participant", "meter"]}))
            assert r.status_code == 201, r.text
        for i, (p, side, price) in enumerate((("a", "sell", 0.2), ("b", "buy", 0.25),
                                              ("a", "sell", 0.3), ("b", "buy", 0.1))):
            r = client.post("/orders", json={"commands": [sign_command(
                KEYS[p], p, next(nonce), NOW + 60_000, "submit",
                {"id": f"o{i}", "side": side, "quantity_kwh": 0.02, "price_per_kwh": price})]})
            assert r.status_code == 200, r.text
        assert client.get("/market/summary").json()["trades"] == 1
        yield Api(client)


def _signable(case: schemathesis.Case) -> None:
    """Leave out schema-valid requests the exchange refuses by a rule no JSON
    Schema states, each refused with its own 4xx elsewhere in the tests: a
    batch of commands of several participants, a key of small order; and the
    nonces within a few units of 2**63 that schemathesis takes as valid (it
    compares them with the document's float bound)."""
    body = case.body if isinstance(case.body, dict) else {}
    commands = body.get("commands") if "commands" in body else [body]
    if isinstance(commands, list) and commands:
        assume(len({c.get("participant") for c in commands if isinstance(c, dict)}) <= 1)
        for c in commands:
            if isinstance(c, dict):
                assume(not isinstance(c.get("nonce"), int) or c["nonce"] < 2**63)
                key = c.get("payload", {}).get("public_key") if isinstance(
                    c.get("payload"), dict) else None
                assume(not (isinstance(key, str) and len(key) == 64 and small_order(key)))
    for row in body.get("readings", []) if isinstance(body.get("readings"), list) else []:
        assume(not (isinstance(row, list) and len(row) > 3 and isinstance(row[3], int)
                    and row[3] >= 2**63))


def _run(api: Api, operation: str, mode: GenerationMode, headers: dict[str, str] | None
         ) -> int:
    method, path = operation.split(" ")
    strategy = api.schema[path][method].as_strategy(generation_mode=mode, headers=headers)
    seen = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            _signable(case)
        seen[0] += 1
        case.validate_response(api.send(case))

    check()
    return seen[0]


def _has_input(operation: str) -> bool:
    method, path = operation.split(" ")
    op = _document()["paths"][path][method.lower()]
    return bool(op.get("parameters") or op.get("requestBody"))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_conforms(api: Api, operation: str) -> None:
    cases = _run(api, operation, GenerationMode.POSITIVE, None)
    if _has_input(operation):  # an operation without input has nothing to get wrong
        cases += _run(api, operation, GenerationMode.NEGATIVE, None)
    who = SESSIONS.get(operation)
    if who is not None:  # past the session: the operation's own answers
        key = OPERATOR if who == "operator" else KEYS[who]
        session = {"authorization": session_header(key, who, NOW + 600_000)}
        cases += _run(api, operation, GenerationMode.POSITIVE, session)
    # an operation without input is one request (hypothesis draws it once)
    assert cases >= (EXAMPLES // 2 if _has_input(operation) else 1), cases


def test_every_operation_is_exercised() -> None:
    assert len(OPERATIONS) >= 15
    assert set(SESSIONS) == {op for op in OPERATIONS if " /me/" in op or " /operator/" in op}
