"""The live exchange's HTTP API and dashboard (``transactive serve``).

One process, one event loop: every command runs on the loop's thread against
the :class:`~transactive.server.exchange.Exchange` (no locks), and its answer
waits for the *group commit*: the journal records written since the last one
are forced to disk together (fsync on a worker thread), the ledger commits
the transfers they describe, and only then are the commands acknowledged and
their events sent to the WebSocket feed. A request the exchange refuses
changes nothing and is answered with the field and the problem.

Routes (the OpenAPI document is at ``/openapi.json``, browsable at ``/docs``):

- public: ``GET /`` (dashboard), ``/market/summary``, ``/market/depth``,
  ``/market/trades``, ``/market/clearings`` (every auction's anonymized inputs
  and outputs: re-run one with ``transactive clear``), ``/market/aggregates``
  (differentially private), ``/market/state``; ``WS /ws`` (trades, clearings,
  book changes, halts);
- a participant: ``POST /participants`` (register), ``POST /orders``
  (submit, modify, cancel: signed commands), ``POST /readings`` (a meter's
  signed readings), and, with a session header, ``GET /me/orders``,
  ``/me/orders/{order_id}``, ``/me/trades``, ``/me/statement``;
- the operator (session signed by the operator key): ``GET /operator/report``,
  ``POST /operator/release``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transactive.errors import InputError
from transactive.server import views
from transactive.server.config import ExchangeConfig
from transactive.server.errors import Forbidden, Refused, Unauthorized
from transactive.server.exchange import Exchange
from transactive.server.protocol import (
    MAX_SESSION_MS,
    Hex64,
    Hex128,
    Label,
    OrderCommand,
    RegisterCommand,
    parse_session,
    session_message,
)
from transactive.server.report import write_trial_report
from transactive.settlement._signing import public_key_hex, verify_many
from transactive.settlement.oracle import MeterReading

__all__ = ["create_app"]

Clock = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Problem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    detail: Problem


class Commands(BaseModel):
    commands: list[OrderCommand] = Field(min_length=1)


_Count = Annotated[int, Field(ge=0, lt=2**53)]
# [meter_id, interval, energy_wh (net import, negative an export), nonce, timestamp_ms,
# signature_hex]
ReadingRow = tuple[Label, _Count, Annotated[int, Field(gt=-2**53, lt=2**53)],
                   Annotated[int, Field(ge=0, lt=2**63)], _Count, Hex128]


class Readings(BaseModel):
    readings: list[ReadingRow] = Field(min_length=1, max_length=1024)


class Release(BaseModel):
    interval: int = Field(ge=0, lt=2**53)


class Receipt(BaseModel):
    body: dict[str, Any]
    operator: str
    signature: str


class _View(BaseModel):
    """A read's answer: the fields below documented and checked, any later
    one passed through."""

    model_config = ConfigDict(extra="allow")


class OrderView(_View):
    participant: str
    id: str
    side: Literal["buy", "sell"]
    price_per_kwh: float
    quantity_kwh: float
    filled_kwh: float
    remaining_kwh: float
    status: Literal["open", "filled", "cancelled", "unfilled"]
    tif: Literal["gtc", "ioc", "fok"]
    at_ms: int
    interval: int


class PublicTrade(_View):
    n: int
    at_ms: int
    interval: int
    price_per_kwh: float
    quantity_kwh: float = Field(gt=0)


class MarketState(_View):
    state_hash: Hex64
    journal_seq: int = Field(ge=0)
    operator: Hex64


class Accepted(BaseModel):
    receipt: Receipt


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody} for c in (*codes, 413, 422)}


class _BodyLimit:
    """Answers 413 to a request body over ``limit`` bytes, declared or streamed
    (chunked): the body is read whole, at most ``limit`` bytes, before the
    application sees it, so a body cut off at the limit never reaches a parser
    (which would answer a confusing 400 for it)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(scope, receive, send, self.limit)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await _too_large(scope, receive, send, self.limit)
                return
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks),
                                 "more_body": False}

        async def replay() -> Message:
            nonlocal whole
            if whole is None:
                return await receive()  # after the body: a disconnect
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    body = {"detail": {"field": "body", "problem": f"over {limit} bytes"}}
    await JSONResponse(body, status_code=413)(scope, receive, send)


class _GroupCommit:
    """Acknowledges commands once their journal records are on disk and the
    ledger has committed them; sends the feed's events after that."""

    def __init__(self, exchange: Exchange, feed: set[WebSocket]) -> None:
        self.exchange = exchange
        self.feed = feed
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._frozen_at = time.monotonic()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def durable(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._wake.set()
        await future

    async def _run(self) -> None:
        ex = self.exchange
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiters, self._waiters = self._waiters, []
            pending = ex.take_pending()
            events, ex.outbox = ex.outbox, []
            try:
                await asyncio.to_thread(ex.journal.sync_later())
                ex.commit_ledger(pending)
            except BaseException as exc:
                for w in waiters:
                    w.set_exception(exc)
                raise
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            await self._send(events)
            self._settle_memory()

    def _settle_memory(self) -> None:
        """Once a second, collect the young garbage and freeze what survived
        (gc.freeze: the members, orders and trades the exchange keeps), so the
        cyclic collector never walks the whole heap between two answers (a
        full collection of a busy exchange stalled answers by 100+ ms)."""
        now = time.monotonic()
        if now - self._frozen_at >= 1.0:
            gc.collect(1)
            gc.freeze()
            self._frozen_at = now

    async def _send(self, events: list[dict[str, Any]]) -> None:
        if not events or not self.feed:
            return
        text = json.dumps(events, separators=(",", ":"))
        for ws in list(self.feed):
            try:
                await ws.send_text(text)
            except Exception:  # a client gone away
                self.feed.discard(ws)


def create_app(data_dir: str | Path, config: ExchangeConfig | None = None, *,
               operator_key: Ed25519PrivateKey, clock: Clock = wall_ms,
               gate_timer: bool = True) -> FastAPI:
    """The exchange's ASGI application over a data folder.

    ``clock`` gives the time in ms (tests pass their own); with
    ``gate_timer`` the app closes every gate on time by itself, else only
    commands (and ``POST /operator/gate``) close passed gates.
    """
    cfg = config or ExchangeConfig()
    feed: set[WebSocket] = set()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ex = Exchange(data_dir, cfg, operator_key, now_ms=clock())
        commit = _GroupCommit(ex, feed)
        state.update(exchange=ex, commit=commit)
        commit.start()
        timer = asyncio.create_task(_gates(ex, commit, clock)) if gate_timer else None
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            await commit.stop()
            ex.close_gate(clock())
            write_trial_report(ex, clock())
            ex.close()

    app = FastAPI(title="transactive exchange", version="1",
                  description="A peer-to-peer electricity exchange for sandbox trials: "
                  "devices trade by signed orders; every trade settles in a double-entry "
                  "ledger with a hash-chained, operator-signed journal.",
                  lifespan=lifespan)
    app.add_middleware(_BodyLimit, limit=cfg.limits.max_body_bytes)

    def exchange() -> Exchange:
        ex: Exchange = state["exchange"]
        return ex

    @app.exception_handler(InputError)
    async def refused(_: Request, exc: InputError) -> JSONResponse:
        status = getattr(exc, "status", 422)
        headers = ({"Retry-After": str(max(1, round(exc.retry_after_s)))}
                   if hasattr(exc, "retry_after_s") else None)
        return JSONResponse({"detail": {"field": exc.field, "problem": exc.problem}},
                            status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's checks of a request's shape answered as the exchange's own
        refusals are (the documented 422 body: the field and the problem)."""
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]  # ("body" | "query" | "header" | "path", ...)
        whole = len(loc) == 1 or err["type"] == "json_invalid"
        msg = ("unknown field" if err["type"] == "extra_forbidden"
               else err["msg"].removeprefix("Value error, "))
        return JSONResponse({"detail": {"field": loc[0] if whole else ".".join(loc[1:]),
                                        "problem": msg}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body the JSON parser gave up on (nested too deep)
            return JSONResponse({"detail": {"field": "body", "problem": str(exc.detail)}},
                                status_code=422)
        return await http_exception_handler(request, exc)

    async def session(authorization: str = Header(
            description="Transactive <participant>:<expires_ms>:<signature hex>")) -> str:
        parsed = parse_session(authorization)
        if parsed is None:
            raise Unauthorized("authorization", "not a Transactive session header")
        who, expires_ms, sig = parsed
        now = clock()
        if not now <= expires_ms <= now + MAX_SESSION_MS:
            raise Unauthorized("authorization", "expired, or more than an hour ahead")
        ex = exchange()
        if who == "operator":
            ok = verify_many([operator_key.public_key()], [session_message(who, expires_ms)],
                             [sig])[0]
        else:
            ok = ex.authenticate(who, session_message(who, expires_ms), sig)
        if not ok:
            raise Unauthorized("authorization", "the signature does not verify")
        return who

    async def operator(who: str = Depends(session)) -> str:
        if who != "operator":
            raise Forbidden("authorization", "the operator's session only")
        return who

    # ------------------------------------------------------------ commands
    @app.post("/participants", status_code=201, responses=_errors(401, 403, 409))
    async def register(command: RegisterCommand) -> dict[str, Any]:
        """Join the trial with a command signed by the key it registers."""
        receipt = exchange().register(command, now_ms=clock())
        await state["commit"].durable()
        return receipt

    @app.post("/orders", responses=_errors(401, 403, 404, 409, 429, 503))
    async def orders(body: Commands) -> Accepted:
        """Submit, modify or cancel orders: signed commands of one participant,
        all accepted or none."""
        receipt = exchange().execute(body.commands, now_ms=clock())
        await state["commit"].durable()
        return Accepted(receipt=Receipt(**receipt))

    @app.post("/readings", responses=_errors(401, 403, 409))
    async def readings(body: Readings) -> dict[str, Any]:
        """Meters' signed readings (``[meter_id, interval, energy_wh, nonce,
        timestamp_ms, signature_hex]`` rows; ``interval`` counts the exchange's
        gate periods from the epoch), each checked by the oracle; the answer
        lists those refused and why (all refused: the first reason's status)."""
        try:
            rows = [MeterReading.from_row(r) for r in body.readings]
        except (ValueError, TypeError) as exc:
            raise Refused("readings", f"malformed row: {exc}") from None
        out = exchange().accept_readings(rows, now_ms=clock())
        await state["commit"].durable()
        return out

    # --------------------------------------------------------------- reads
    @app.get("/me/orders", responses=_errors(401), response_model=list[OrderView])
    async def my_orders(who: str = Depends(session),
                        status: str | None = Query(None, pattern="^(open|filled|cancelled|"
                                                   "unfilled)$")) -> list[dict[str, Any]]:
        return views.orders_of(exchange(), who, status)

    @app.get("/me/orders/{order_id}", responses=_errors(401, 404), response_model=OrderView)
    async def my_order(order_id: str, who: str = Depends(session)) -> dict[str, Any]:
        return views.order_of(exchange(), who, order_id)

    @app.get("/me/trades", responses=_errors(401))
    async def my_trades(who: str = Depends(session)) -> list[dict[str, Any]]:
        return views.trades_of(exchange(), who)

    @app.get("/me/statement", responses=_errors(401))
    async def my_statement(who: str = Depends(session)) -> dict[str, Any]:
        return views.statement_of(exchange(), who)

    @app.get("/market/summary", responses=_errors())
    async def summary() -> dict[str, Any]:
        return views.summary(exchange(), clock())

    @app.get("/market/depth", responses=_errors())
    async def depth(levels: int = Query(5, ge=1, le=50)) -> dict[str, Any]:
        return views.depth(exchange(), levels)

    @app.get("/market/trades", responses=_errors(), response_model=list[PublicTrade])
    async def trades(after: int = Query(-1, ge=-1, lt=2**53),
                     limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        return views.public_trades(exchange(), after, limit)

    @app.get("/market/clearings", responses=_errors())
    async def clearings(after: int = Query(-1, ge=-1, lt=2**53),
                        limit: int = Query(20, ge=1, le=200)) -> list[dict[str, Any]]:
        return exchange().clearings[after + 1:after + 1 + limit]

    @app.get("/market/aggregates", responses=_errors())
    async def aggregates() -> list[dict[str, Any]]:
        return exchange().releases

    @app.get("/market/state", responses=_errors(), response_model=MarketState)
    async def market_state() -> dict[str, Any]:
        ex = exchange()
        return {"state_hash": ex.state_hash(), "journal_seq": ex.journal.seq,
                "operator": public_key_hex(operator_key)}

    @app.get("/operator/report", responses=_errors(401, 403))
    async def report(_: str = Depends(operator)) -> dict[str, Any]:
        return views.evaluation(exchange(), clock())

    @app.post("/operator/release", responses=_errors(401, 403, 404, 409))
    async def release(body: Release, _: str = Depends(operator)) -> dict[str, Any]:
        """Publish one interval's metered energy as a differentially private sum."""
        out = exchange().release(body.interval, now_ms=clock())
        await state["commit"].durable()
        return out

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        page = resources.files("transactive.server").joinpath("dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        feed.add(socket)
        try:
            while True:
                await socket.receive_text()  # the feed is one way; this waits for a close
        except WebSocketDisconnect:
            pass
        finally:
            feed.discard(socket)

    return app


async def _gates(ex: Exchange, commit: _GroupCommit, clock: Clock) -> None:
    """Close every gate on time."""
    period = ex.config.gate_period_ms
    while True:
        now = clock()
        await asyncio.sleep(max(0.0, ((ex.interval + 1) * period - now) / 1000) + 0.001)
        if ex.close_gate(clock()):
            await commit.durable()

