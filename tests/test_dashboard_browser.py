"""The exchange's dashboard in a real browser (headless Chromium through
Playwright) against the real server (uvicorn on a loopback port): members
register and trade over HTTP with signed commands, and the open page follows
live, without a reload: the trade in the table, the price and volume figures,
the book, the halt banner when the circuit breaker halts trading, the refused
orders; an auction's pending count and clearing; reconnecting after the
server restarts. No console or page errors throughout."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Page, expect, sync_playwright

from transactive.server.app import create_app
from transactive.server.config import ExchangeConfig
from transactive.server.protocol import sign_command
from transactive.settlement._signing import public_key_hex

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run) and must run this; elsewhere it is skipped without one
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                 reason="needs headless Chromium")]

# 1 s gates; a participant's 3600 kW delivers 1 kWh in one; the breaker judges
# a price against the mean of the three before it
CONFIG = {"gate_period_s": 1, "limits": {"max_capacity_kw": 3600},
          "breaker": {"max_move": 0.5, "window": 3, "halt_s": 30}}
# what Chromium logs by itself while the server is down (the test stops it)
OUTAGE = re.compile(r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Server:
    """The exchange's app under uvicorn in a thread, on a loopback port; it
    stops and starts again on the same port and data folder."""

    def __init__(self, data: Path, config: ExchangeConfig, *, gate_timer: bool = True) -> None:
        self.data, self.config, self.gate_timer = data, config, gate_timer
        self.operator = Ed25519PrivateKey.generate()
        self.port = 0
        self._running: tuple[uvicorn.Server, threading.Thread, socket.socket] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = create_app(self.data, self.config, operator_key=self.operator,
                         gate_timer=self.gate_timer)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        self._running = server, thread, sock
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start in 10 s"
            time.sleep(0.02)

    def stop(self) -> None:
        assert self._running is not None, "not running"
        server, thread, sock = self._running
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "the server did not stop"
        sock.close()
        self._running = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._running is not None:
            self.stop()


class Member:
    """A participant: its key, its nonces, its signed requests over HTTP."""

    def __init__(self, http: httpx.Client, name: str) -> None:
        self.http, self.name = http, name
        self.key = Ed25519PrivateKey.generate()
        self.nonce = 0
        self.orders = 0

    def _signed(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.nonce += 1
        expires_ms = time.time_ns() // 1_000_000 + 60_000
        return sign_command(self.key, self.name, self.nonce, expires_ms, action, payload)

    def register(self) -> None:
        r = self.http.post("/participants", json=self._signed(
            "register", {"public_key": public_key_hex(self.key), "capacity_kw": 3600}))
        assert r.status_code == 201, r.text

    def submit(self, side: str, quantity_kwh: float, price_per_kwh: float) -> httpx.Response:
        self.orders += 1
        return self.http.post("/orders", json={"commands": [self._signed("submit", {
            "id": f"o{self.orders}", "side": side, "quantity_kwh": quantity_kwh,
            "price_per_kwh": price_per_kwh})]})

    def trade(self, side: str, quantity_kwh: float, price_per_kwh: float) -> None:
        r = self.submit(side, quantity_kwh, price_per_kwh)
        assert r.status_code == 200, r.text


def members(http: httpx.Client) -> tuple[Member, Member]:
    alice, bob = Member(http, "alice"), Member(http, "bob")
    alice.register()
    bob.register()
    return alice, bob


@contextmanager
def dashboard(browser: Browser, url: str) -> Iterator[tuple[Page, list[str]]]:
    """The page, open and live, and the console errors and page errors it logs."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        page.goto(url)
        expect(page.locator("#status")).to_have_text("live")
        page.evaluate("window.sameDocument = true")  # gone if the page reloads
        yield page, errors
        assert page.evaluate("window.sameDocument === true")
    finally:
        page.close()


def past_the_gate(http: httpx.Client) -> None:
    """Wait for the current interval's gate to pass."""
    next_gate_s = http.get("/market/summary").json()["next_gate_ms"] / 1000
    time.sleep(max(0.0, next_gate_s - time.time()) + 0.05)


def first_trade(page: Page) -> Any:
    return page.get_by_role("table", name="Recent trades").locator("tbody tr").first


def test_continuous_trades_show_live_and_the_breaker_halt_shows(browser, tmp_path):
    config = ExchangeConfig.from_dict({**CONFIG, "mode": "continuous"})
    with Server(tmp_path / "data", config) as server, \
            httpx.Client(base_url=server.url) as http, \
            dashboard(browser, server.url) as (page, errors):
        expect(page.locator("#market")).to_contain_text("continuous")
        expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d\.\d s$|closing"))
        interval = page.locator("#interval").text_content()
        expect(page.locator("#interval")).not_to_have_text(interval or "")  # gates pass
        expect(page.locator("#last-price")).to_have_text("—")
        expect(page.locator("#volume")).to_have_text("0.000 kWh")
        expect(first_trade(page)).to_have_text("no trades yet")

        alice, bob = members(http)
        expect(page.locator("#participants")).to_have_text("2")
        bob.trade("buy", 0.4, 0.10)  # rests in the book
        book = page.get_by_role("table", name="Order book")
        expect(book.locator("tbody tr").first.locator("td")).to_have_text(
            ["1", "0.400", "0.1000", "", "", ""])

        alice.trade("sell", 0.5, 0.20)
        bob.trade("buy", 0.5, 0.20)
        row = first_trade(page).locator("td")
        expect(row).to_have_text(["0", re.compile(r"\d\d:\d\d:\d\d"), re.compile(r"\d+"),
                                  "0.2000", "0.500"])
        expect(page.locator("#last-price")).to_have_text("0.2000")
        expect(page.locator("#volume")).to_have_text("0.500 kWh")
        expect(page.locator("#vwap")).to_have_text("0.2000")
        expect(page.locator("#trade-count")).to_have_text("1")
        expect(page.locator("#chart circle.trade")).to_have_count(1)
        expect(page.locator("#halt")).to_be_hidden()

        for price in (0.22, 0.20, 0.60):  # the last one moves 0.6 from 0.207: a halt
            alice.trade("sell", 0.5, price)
            bob.trade("buy", 0.5, price)
        banner = page.get_by_role("alert")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("halted by the circuit breaker")
        expect(page.locator("#last-price")).to_have_text("0.6000")
        expect(page.locator("#vwap")).to_have_text("0.3050")
        expect(page.get_by_role("table", name="Recent trades").locator("tbody tr")
               ).to_have_count(4)
        expect(page.locator("#chart circle.trade")).to_have_count(4)

        assert bob.submit("buy", 0.1, 0.6).status_code == 503
        refused = page.get_by_role("table", name="Refused orders").locator("tbody tr")
        expect(refused).to_have_count(1)
        expect(refused.locator("td")).to_have_text(["503 halted", "commands", "1"])

        assert "alice" not in page.content()  # the feed names no counterparty
        # the state hash shown is the server's at the journal seq shown
        deadline = time.monotonic() + 5
        while True:
            server = http.get("/market/state").json()
            if page.locator("#seq").text_content() == str(server["journal_seq"]):
                assert page.locator("#state-hash").text_content() == server["state_hash"]
                break
            assert time.monotonic() < deadline, "the journal seq shown never caught up"
            time.sleep(0.05)
    assert errors == []


def test_auction_pending_and_clearing_show_and_the_page_reconnects(browser, tmp_path):
    config = ExchangeConfig.from_dict({**CONFIG, "mode": "auction", "mechanism": "uniform"})
    # no gate timer: a gate closes when the first command after it arrives
    with Server(tmp_path / "data", config, gate_timer=False) as server, \
            httpx.Client(base_url=server.url) as http, \
            dashboard(browser, server.url) as (page, errors):
        expect(page.locator("#market")).to_contain_text("auction · uniform")
        expect(page.locator("#pending-count")).to_have_text("0")
        expect(page.get_by_role("table", name="Order book")).to_be_hidden()
        alice, bob = members(http)
        past_the_gate(http)  # both orders in one interval
        alice.trade("sell", 0.5, 0.15)
        bob.trade("buy", 0.5, 0.25)
        expect(page.locator("#pending-count")).to_have_text("2")
        past_the_gate(http)
        bob.trade("buy", 0.2, 0.25)  # closes the gate first: the auction clears
        clearing = http.get("/market/clearings").json()[0]
        shown = f"{clearing['clearing_price_per_kwh']:.4f}"
        expect(page.locator("#pending-count")).to_have_text("1")
        # the tape shows the auction's 0.5 kWh once, as bought (not again as sold)
        expect(page.get_by_role("table", name="Recent trades").locator("tbody tr")
               ).to_have_count(1)
        expect(first_trade(page).locator("td").nth(3)).to_have_text(shown)
        expect(page.locator("#last-price")).to_have_text(shown)
        expect(page.locator("#chart path.clearing")).to_have_count(1)
        assert errors == []

        server.stop()
        expect(page.locator("#status")).to_contain_text("reconnecting")
        server.start()  # the same port and data folder: the journal replayed
        expect(page.locator("#status")).to_have_text("live", timeout=15_000)
        past_the_gate(http)  # bob's 0.2 kWh clears alone, unfilled
        alice.trade("sell", 0.2, 0.15)
        bob.trade("buy", 0.3, 0.25)
        expect(page.locator("#pending-count")).to_have_text("2")  # the new socket's feed
        past_the_gate(http)
        alice.trade("sell", 0.1, 0.3)  # the two before clear
        expect(page.get_by_role("table", name="Recent trades").locator("tbody tr")
               ).to_have_count(2)
        expect(page.locator("#trade-count")).to_have_text("2")
        expect(page.locator("#pending-count")).to_have_text("1")
    assert [e for e in errors if not OUTAGE.search(e)] == []
