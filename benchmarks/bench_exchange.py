"""Load on the live exchange: many device agents sending signed orders at once.

Run: ``python benchmarks/bench_exchange.py [--agents 200] [--seconds 20]
[--orders-per-request 10] [--mode continuous|auction]``.

Starts ``transactive serve`` in its own process on a loopback port with a
fresh data folder, registers ``--agents`` devices, then each agent sends its
bid curve (``--orders-per-request`` signed orders, all or none) again and
again for ``--seconds``, every agent in its own coroutine of a client
process (the machine's other core). Prints the orders accepted per second,
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


async def _agent(client: httpx.AsyncClient, name: str, key: Ed25519PrivateKey, k: int,
                 until: float, rng: np.random.Generator, lat: list[float],
                 acked: list[str], refused: dict[str, int]) -> None:
    nonce, n = time.time_ns(), 0
    while time.perf_counter() < until:
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
        t0 = time.perf_counter()
        r = await client.post("/orders", json={"commands": commands})
        lat.append(time.perf_counter() - t0)
        if r.status_code == 200:
            acked.extend(f"{name}/{c['payload']['id']}" for c in commands)
        else:
            field = r.json().get("detail", {}).get("field", "?")
            refused[f"{r.status_code} {field}"] = refused.get(f"{r.status_code} {field}", 0) + 1


async def _load(url: str, agents: int, seconds: float, k: int) -> dict[str, object]:
    keys = [Ed25519PrivateKey.generate() for _ in range(agents)]
    limits = httpx.Limits(max_connections=agents, max_keepalive_connections=agents)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for i, key in enumerate(keys):
            body = sign_command(key, f"d{i}", 0, int(time.time() * 1000) + 60_000, "register",
                                {"public_key": public_key_hex(key), "capacity_kw": 10.0})
            (await client.post("/participants", json=body)).raise_for_status()
        lat: list[float] = []
        acked: list[str] = []
        refused: dict[str, int] = {}
        t0 = time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(*(_agent(client, f"d{i}", key, k, until,
                                      np.random.default_rng(i), lat, acked, refused)
                               for i, key in enumerate(keys)))
        wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"agents": agents, "orders_per_request": k, "seconds": round(wall, 2),
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
            f'mode = "{args.mode}"\ngate_period_s = 5\n[limits]\nposition_limit_kwh = 1000\n'
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
            out = asyncio.run(_load(url, args.agents, args.seconds, args.orders_per_request))
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
