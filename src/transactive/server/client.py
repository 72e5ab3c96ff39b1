"""A device's client of the live exchange, and the device agents of
``transactive device``.

:class:`ExchangeClient` keeps the device's key, signs every command, and
survives a restarting server: a request that fails in transit is sent again
*as signed* (same nonce), so it is accepted once at most (a second arrival is
refused as a replay, which tells the client the first one arrived), and a
halted market (503) is waited out as its ``Retry-After`` says.

:func:`run_device` trades for a device, gate after gate, by the strategies of
:mod:`transactive.agents`: a **battery** buys below and sells above the price
quantiles of the recent clearings (:func:`~transactive.agents.devices.arbitrage_prices`:
a cycle never loses money on its own losses) within its state of charge, and
moves its state of charge by what it got; **pv** sells what it generates
(a clear-sky day curve, seeded) at the feed-in price or more; a **load** buys
what it draws (seeded daily shape) at up to the retail price.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.errors import InputError, MissingExtraError, TransactiveError
from transactive.server.protocol import session_header, sign_command
from transactive.settlement._signing import public_key_hex

__all__ = ["DEVICE_KINDS", "ExchangeClient", "ExchangeRefused", "run_device"]

DEVICE_KINDS = ("battery", "pv", "load")
_EXPIRES_MS = 60_000


class ExchangeRefused(TransactiveError):
    """The exchange refused a request: ``status``, ``field`` and ``problem``."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{status}: field '{field}': {problem}")
        self.status, self.field, self.problem = status, field, problem


class ExchangeClient:
    """Talks to an exchange at ``url`` as ``participant`` with ``key``.

    Examples
    --------
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> c = ExchangeClient("http://127.0.0.1:1", "home-1", key)
    >>> c.order("b1", "buy", 0.5, 0.21)
    {'id': 'b1', 'side': 'buy', 'quantity_kwh': 0.5, 'price_per_kwh': 0.21}
    >>> c.close()
    """

    def __init__(self, url: str, participant: str, key: Ed25519PrivateKey, *,
                 timeout_s: float = 10.0, retry_for_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - only without the 'server' extra
            raise MissingExtraError("httpx", "server") from None
        self._httpx = httpx
        self.url, self.participant, self.key = url.rstrip("/"), participant, key
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._retry_for_s = retry_for_s
        self._clock = clock
        self._nonce = time.time_ns()  # increasing, and new after a restart of the device

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- commands
    @staticmethod
    def order(order_id: str, side: str, quantity_kwh: float, price_per_kwh: float,
              tif: str = "gtc") -> dict[str, Any]:
        """One order's payload."""
        out: dict[str, Any] = {"id": order_id, "side": side, "quantity_kwh": quantity_kwh,
                               "price_per_kwh": price_per_kwh}
        if tif != "gtc":
            out["tif"] = tif
        return out

    def sign(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._nonce += 1
        expires = int(self._clock() * 1000) + _EXPIRES_MS
        return sign_command(self.key, self.participant, self._nonce, expires, action, payload)

    def register(self, capacity_kw: float, roles: tuple[str, ...] = ("participant",)
                 ) -> dict[str, Any] | None:
        """Join the exchange (``None`` if this key is registered already)."""
        body = self.sign("register", {"public_key": public_key_hex(self.key),
                                      "roles": list(roles), "capacity_kw": capacity_kw})
        try:
            return self._send("POST", "/participants", body)
        except ExchangeRefused as exc:
            if exc.status == 409 and exc.field == "participant":
                return None
            raise

    def submit(self, orders: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Submit orders (all or none); returns the operator's signed receipt
        (``None`` if a retry found the first attempt had arrived)."""
        return self._commands([self.sign("submit", o) for o in orders])

    def modify(self, order_id: str, *, price_per_kwh: float | None = None,
               quantity_kwh: float | None = None) -> dict[str, Any] | None:
        payload: dict[str, Any] = {"id": order_id}
        if price_per_kwh is not None:
            payload["price_per_kwh"] = price_per_kwh
        if quantity_kwh is not None:
            payload["quantity_kwh"] = quantity_kwh
        return self._commands([self.sign("modify", payload)])

    def cancel(self, order_ids: list[str]) -> dict[str, Any] | None:
        return self._commands([self.sign("cancel", {"id": i}) for i in order_ids])

    def _commands(self, commands: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not commands:
            return None
        out = self._send("POST", "/orders", {"commands": commands})
        return out["receipt"] if out is not None else None

    # ------------------------------------------------------------------- reads
    def get(self, path: str, **params: Any) -> Any:
        """A public read (``/market/...``) or, under ``/me/``, one's own."""
        return self._send("GET", path, params=params)

    # --------------------------------------------------------------- transport
    def _send(self, method: str, path: str, body: Any = None, *,
              params: dict[str, Any] | None = None) -> Any:
        """Send, retrying what fails in transit with the same signed body; a
        replay refusal on a retry means the first attempt arrived (``None``)."""
        deadline = self._clock() + self._retry_for_s
        retried, wait = False, 0.2
        while True:
            headers = {}
            if path.startswith("/me/"):
                expires = int(self._clock() * 1000) + 300_000
                headers["Authorization"] = session_header(self.key, self.participant, expires)
            try:
                r = self._http.request(method, path, json=body, params=params, headers=headers)
            except self._httpx.TransportError:
                if self._clock() > deadline:
                    raise
                time.sleep(wait)
                retried, wait = True, min(wait * 2, 5.0)
                continue
            if r.status_code == 503 and self._clock() < deadline:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            if r.status_code < 400:
                return r.json()
            detail = _detail(r)
            if retried and r.status_code == 409 and detail[0] == "nonce":
                return None
            raise ExchangeRefused(r.status_code, *detail)


def _detail(response: Any) -> tuple[str, str]:
    try:
        d = response.json()["detail"]
        if isinstance(d, dict):
            return str(d["field"]), str(d["problem"])
        first = d[0]  # FastAPI's own validation errors
        return ".".join(str(p) for p in first["loc"]), str(first["msg"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "response", response.text[:200]


# ------------------------------------------------------------------ devices
def _day_shape(kind: str, t_s: float, rng: np.random.Generator) -> float:
    """Power in kW per kW of capacity at wall time ``t_s`` (UTC hours as local)."""
    hour = (t_s / 3600) % 24
    if kind == "pv":
        return max(0.0, math.sin(math.pi * (hour - 6) / 12)) * rng.uniform(0.7, 1.0)
    # a household's draw: a night base, a morning and a larger evening peak
    peaks = 0.35 * math.exp(-((hour - 7.5) / 1.5) ** 2) + 0.6 * math.exp(-((hour - 19) / 2) ** 2)
    return (0.15 + peaks) * rng.uniform(0.8, 1.2)


def _kwh(value: float, lot_kwh: float) -> float:
    """An order's quantity in whole lots, rounded down (never over the device's power)."""
    return round(math.floor(value / lot_kwh + 1e-9) * lot_kwh, 12)


def run_device(client: ExchangeClient, kind: str, *, capacity_kw: float,
               energy_kwh: float = 10.0, seed: int = 0, gates: int | None = None,
               time_scale: float = 1.0, log: Callable[[str], None] = print) -> None:
    """Trade for one device, gate after gate (``gates=None``: until stopped).

    ``time_scale`` runs the device's day faster than the wall clock (its
    generation or load shape at ``start + elapsed * time_scale``), so a
    short trial sees a day; the energy of a gate stays what its power
    delivers in the gate's real length."""
    if kind not in DEVICE_KINDS:
        raise InputError("kind", f"must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
    from transactive.agents.devices import BatteryFleet, arbitrage_prices

    rng = np.random.default_rng(seed)
    client.register(capacity_kw)
    info = client.get("/market/summary")
    period_s, tariff = info["gate_period_s"], info.get("tariff", {})
    lot = info["lot_kwh"] if info["mechanism"] == "mcafee" else 1e-6
    retail = float(tariff.get("retail_price_per_kwh", 0.30))
    feed_in = float(tariff.get("feed_in_price_per_kwh", 0.08))
    dt_h = period_s / 3600
    one = np.ones(1)
    battery = BatteryFleet(capacity_kwh=one * energy_kwh, power_kw=one * capacity_kw,
                           efficiency_charge=one * 0.95, efficiency_discharge=one * 0.95,
                           soc_min_frac=one * 0.05) if kind == "battery" else None
    soc = battery.initial_soc_kwh() if battery is not None else None
    seen_trades, gate, done = -1, info["interval"], 0
    start = time.time()
    while gates is None or done < gates:
        prices = [t["price_per_kwh"] for t in client.get("/market/trades", after=-1,
                                                         limit=1000)][-96:]
        orders: list[dict[str, Any]] = []
        tag = f"g{gate}"
        if battery is not None and soc is not None:
            buy, sell = arbitrage_prices(prices or [feed_in, retail], 0.95, 0.95)
            seg = battery.segments(soc, dt_h, buy_below=buy, sell_above=sell)
            orders = [client.order(f"{tag}-{'c' if s > 0 else 'd'}", "buy" if s > 0 else "sell",
                                   _kwh(float(q), lot), round(float(p), 6))
                      for s, q, p in zip(seg.side, seg.quantity_kwh, seg.price_per_kwh,
                                         strict=True) if _kwh(float(q), lot) > 0]
        else:
            now = start + (time.time() - start) * time_scale
            kwh = _kwh(capacity_kw * _day_shape(kind, now, rng) * dt_h, lot)
            if kwh > 0:
                side, price = ("sell", feed_in) if kind == "pv" else ("buy", retail)
                orders = [client.order(f"{tag}-{kind}", side, kwh, price)]
        try:
            client.submit(orders)
            log(f"gate {gate}: " + (", ".join(f"{o['side']} {o['quantity_kwh']:.4f} kWh @ "
                                              f"{o['price_per_kwh']:.4f}" for o in orders)
                                    or "nothing to offer"))
        except ExchangeRefused as exc:
            log(f"gate {gate}: refused: {exc}")
        # wait for the gate to close, then learn what was filled
        while client.get("/market/summary")["interval"] <= gate:
            time.sleep(min(1.0, period_s / 10))
        mine = client.get("/me/trades")
        got = [t for t in mine if t["n"] > seen_trades]
        seen_trades = max([seen_trades, *(t["n"] for t in mine)])
        net_kwh = sum(t["quantity_kwh"] * (1 if t["side"] == "buy" else -1) for t in got)
        if battery is not None and soc is not None:
            soc = battery.store(soc, [net_kwh], dt_h, check=False)
            log(f"gate {gate}: traded {net_kwh:+.4f} kWh, state of charge "
                f"{float(soc[0]):.3f} kWh")
        elif got:
            log(f"gate {gate}: traded {net_kwh:+.4f} kWh")
        if client.get("/market/summary")["mode"] == "continuous":
            open_ids = [o["id"] for o in client.get("/me/orders", status="open")]
            if open_ids:
                client.cancel(open_ids)
        gate, done = client.get("/market/summary")["interval"], done + 1


def load_key(path: str | Path) -> Ed25519PrivateKey:
    """A device's key file (created on first use, mode 0600), as the operator's."""
    from transactive.settlement.operator import operator_key

    return operator_key(path)
