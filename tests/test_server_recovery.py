"""The live exchange killed (SIGKILL) under load and restarted: nothing it
acknowledged is lost, the ledger verifies, and a quiet exchange comes back
with exactly the state it had (the same state hash)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.server.client import ExchangeClient, ExchangeRefused
from transactive.settlement._signing import public_key_hex

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, tmp: Path) -> None:
        self.data, self.port = tmp / "data", _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = Ed25519PrivateKey.generate()
        self.key_file = tmp / "operator.key"
        self.key_file.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.key_file.chmod(0o600)
        self.config = tmp / "exchange.toml"
        self.config.write_text('mode = "continuous"\ngate_period_s = 3600\n'
                               "[limits]\norders_per_s = 10000\nposition_limit_kwh = 1e6\n"
                               "max_capacity_kw = 1000\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transactive.cli", "serve", "--port", str(self.port),
             "--data", str(self.data), "--config", str(self.config),
             "--operator-key", str(self.key_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            try:
                httpx.get(self.url + "/market/state", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
                time.sleep(0.1)
        raise AssertionError("the exchange did not start")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.proc.stderr.close()  # type: ignore[union-attr]

    def state(self) -> dict[str, object]:
        return httpx.get(self.url + "/market/state", timeout=5).json()  # type: ignore[no-any-return]


def _trade(client: ExchangeClient, acked: list[str], stop: threading.Event, i: int) -> None:
    n = 0
    while not stop.is_set():
        ids = [f"o{n + k}" for k in range(5)]
        orders = [client.order(oid, "buy" if (n + k + i) % 2 else "sell", 0.01,
                               0.18 + 0.01 * ((n + k) % 5)) for k, oid in enumerate(ids)]
        n += 5
        try:
            client.submit(orders)
        except (httpx.HTTPError, ExchangeRefused):
            return  # the exchange went away mid-request: not acknowledged
        acked.extend(ids)


def test_kill_under_load_loses_nothing_acknowledged_and_a_quiet_restart_is_exact(tmp_path):
    server = _Server(tmp_path)
    server.start()
    keys = [Ed25519PrivateKey.generate() for _ in range(6)]
    clients = [ExchangeClient(server.url, f"dev{i}", k, retry_for_s=0)
               for i, k in enumerate(keys)]
    for c in clients:
        c.register(50.0)
    acked: list[list[str]] = [[] for _ in clients]
    stop = threading.Event()
    threads = [threading.Thread(target=_trade, args=(c, acked[i], stop, i))
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    server.signal(signal.SIGKILL)  # mid-load: requests in flight
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert sum(map(len, acked)) > 50, "no load reached the exchange"

    server.start()
    for c, ids in zip(clients, acked, strict=True):
        held = {o["id"] for o in c.get("/me/orders")}
        assert set(ids) <= held, f"{c.participant}: acknowledged orders lost"
    before = server.state()
    server.signal(signal.SIGKILL)  # quiet now: nothing in flight
    server.start()
    assert server.state() == before
    for c in clients:
        c.close()
    server.signal(signal.SIGINT)  # a clean stop writes the trial report
    assert (server.data / "trial_report.html").is_file()
    verify = subprocess.run(
        [sys.executable, "-m", "transactive.cli", "ledger", "verify", str(server.data),
         "--operator", public_key_hex(server.key), "--json"],
        capture_output=True, text=True, env={**os.environ})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["verdict"] == "OK"
