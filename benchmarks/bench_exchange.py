"""Load on the live exchange: many device agents sending signed orders at once.

Run: ``python benchmarks/bench_exchange.py [--agents 200] [--seconds 20]
[--orders-per-request 10] [--rate 2000] [--mode continuous|auction]``.

Starts ``transactive serve`` in its own process on a loopback port with a
fresh data folder, registers ``--agents`` devices, then each agent sends its
bid curve (``--orders-per-request`` signed orders, all or none) at a fixed
pace, all agents together offering ``--rate`` orders a second (``--rate 0``:
each agent sends again as soon as it is answered, the exchange's capacity),
for ``--seconds``, every agent in its own coroutine of a client process (the
machine's other core) on its own keep-alive connection. Prints the orders accepted per second,
the requests per second, the latency of a request (p50, p99, max: from
sending to the exchange's answer, which comes after the group commit has
forced the journal to disk and the ledger committed), refusals; then stops
the server (Ctrl-C), checks that every acknowledged order is in the
exchange (its journal's commands and the orders the restarted exchange
holds) and that ``transactive ledger verify`` passes.

Target (issue "live exchange"): 200 concurrent agents, at least 2,000 signed
orders per second accepted, p99 under 50 ms on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.server.protocol import sign_command
from transactive.settlement._signing import public_key_hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped: {proc.stderr.read().decode()[-2000:]}"
                             if proc.stderr else "the server stopped")
        try:
            httpx.get(url + "/market/summary", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


class _Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load
    generator's client (a general client spends more CPU per request than
    the exchange does, and would measure itself)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (path.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _agent(conn: _Connection, name: str, key: Ed25519PrivateKey, k: int,
                 until: float, period_s: float, rng: np.random.Generator, lat: list[float],
                 acked: list[str], refused: dict[str, int]) -> None:
    """Sends a bid curve every ``period_s`` (0: as fast as answers come)."""
    nonce, n = time.time_ns(), 0
    due = time.perf_counter() + rng.uniform(0, period_s)  # agents out of phase
    while time.perf_counter() < until:
        if period_s:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += period_s
        commands = []
        expires = int(time.time() * 1000) + 60_000
        for _ in range(k):
            nonce += 1
            n += 1
            side = "buy" if rng.random() < 0.5 else "sell"
            price = round(float(rng.uniform(0.15, 0.25)), 4)
            commands.append(sign_command(key, name, nonce, expires, "submit",
                                         {"id": f"o{n}", "side": side, "quantity_kwh": 0.01,
                                          "price_per_kwh": price}))
        body = json.dumps({"commands": commands}).encode()
        t0 = time.perf_counter()
        status, answer = await conn.post("/orders", body)
        lat.append(time.perf_counter() - t0)
        if status == 200:
            acked.extend(f"{name}/{c['payload']['id']}" for c in commands)
        else:
            field = json.loads(answer).get("detail", {}).get("field", "?")
            refused[f"{status} {field}"] = refused.get(f"{status} {field}", 0) + 1


async def _load(port: int, agents: int, seconds: float, k: int, rate: float
                ) -> dict[str, object]:
    keys = [Ed25519PrivateKey.generate() for _ in range(agents)]
    conns = [await _Connection.open(port) for _ in range(agents)]
    for i, key in enumerate(keys):
        body = sign_command(key, f"d{i}", 0, int(time.time() * 1000) + 60_000, "register",
                            {"public_key": public_key_hex(key), "capacity_kw": 10.0})
        status, answer = await conns[i].post("/participants", json.dumps(body).encode())
        if status != 201:
            raise SystemExit(f"registration refused: {answer.decode()}")
    lat: list[float] = []
    acked: list[str] = []
    refused: dict[str, int] = {}
    t0 = time.perf_counter()
    until = t0 + seconds
    period_s = agents * k / rate if rate else 0.0
    await asyncio.gather(*(_agent(conns[i], f"d{i}", key, k, until, period_s,
                                  np.random.default_rng(i), lat, acked, refused)
                           for i, key in enumerate(keys)))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    ms = np.array(lat) * 1000
    return {"agents": agents, "orders_per_request": k, "offered_orders_per_s": rate or "max",
            "seconds": round(wall, 2),
            "orders_accepted": len(acked), "orders_per_s": round(len(acked) / wall),
            "requests_per_s": round(len(lat) / wall),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1), "refused": refused, "acked_ids": acked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--orders-per-request", type=int, default=10)
    parser.add_argument("--mode", choices=("continuous", "auction"), default="continuous")
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="orders a second offered by all agents together (0: as fast "
                             "as the exchange answers, each agent one request at a time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key_file = folder / "operator.key"
        operator = Ed25519PrivateKey.generate()
        key_file.write_bytes(operator.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        key_file.chmod(0o600)
        (folder / "exchange.toml").write_text(
            f'mode = "{args.mode}"\ngate_period_s = 3600\n[limits]\nposition_limit_kwh = 1000\n'
            "orders_per_s = 1000\nmax_participants = 10000\n")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        data = folder / "data"
        cmd = [sys.executable, "-m", "transactive.cli", "serve", "--port", str(port),
               "--data", str(data), "--config", str(folder / "exchange.toml"),
               "--operator-key", str(key_file)]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_up(url, server)
            cpu0 = _cpu(server.pid)
            mine0 = time.process_time()
            out = asyncio.run(_load(port, args.agents, args.seconds, args.orders_per_request,
                                    args.rate))
            out["server_cpu_s"] = round(_cpu(server.pid) - cpu0, 2)
            out["client_cpu_s"] = round(time.process_time() - mine0, 2)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        acked = set(out.pop("acked_ids"))  # type: ignore[arg-type]
        journaled = set()
        for line in (data / "journal.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec["kind"] == "commands":
                journaled.update(f"{c[0]}/{c[5]['id']}" for c in rec["body"]["commands"]
                                 if c[4] == "submit")
        out["acknowledged_not_journaled"] = len(acked - journaled)
        verify = subprocess.run([sys.executable, "-m", "transactive.cli", "ledger", "verify",
                                 str(data), "--operator", public_key_hex(operator), "--json"],
                                capture_output=True, text=True,
                                env={**os.environ, "TRANSACTIVE_CONFIG_DIR": tmp})
        out["ledger_verify"] = (json.loads(verify.stdout)["verdict"] if verify.stdout
                                else verify.stderr.strip())
        out["journal_mib"] = round((data / "journal.jsonl").stat().st_size / 2**20, 1)
    print(json.dumps(out))
    width = max(len(k) for k in out)
    print(f"live exchange load ({args.mode}, loopback, this machine)")
    for k, v in out.items():
        print(f"  {k:<{width}}  {v}")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
