"""Properties of the live exchange's state machine under random command
sequences (valid and invalid) of three members, in both modes: energy bought
equals energy sold, trade by trade and in all; the ledger balances and holds
only what rounding to whole cents and Wh keeps; nobody trades beyond its limit
price; the continuous book is never crossed; a refused command changes
nothing; the data folder reopens to the same state hash and verifies."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transactive.server.config import ExchangeConfig
from transactive.server.errors import Refused
from transactive.server.exchange import ENERGY, MONEY, Exchange
from transactive.server.protocol import sign_command
from transactive.settlement._signing import public_key_hex
from transactive.settlement.verify import verify_run

PERIOD_MS = 15_000
START = 1_800_000_000_000 // PERIOD_MS * PERIOD_MS
MEMBERS = ("a", "b", "c")
KEYS = {p: Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
        for i, p in enumerate(MEMBERS)}
OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
CAPACITY_KW = 10  # 0.0417 kWh an order in a 15 s gate period
EPS = 1e-9

who = st.sampled_from(MEMBERS)
pick = st.integers(0, 7)  # which of a member's orders (modulo how many it has)
# mostly a price near others' (they cross), sometimes anywhere from below the
# band's floor (-0.50) to above its cap (2.00)
price = (st.integers(10, 40) | st.integers(-60, 210)).map(lambda c: c / 100)
qty = st.integers(1, 50).map(lambda wh: wh / 1000)  # above 41.7 Wh: over capacity
STEPS = {
    "submit": st.tuples(st.just("submit"), who, st.sampled_from(["buy", "sell"]), price, qty,
                        st.sampled_from(["gtc"] * 4 + ["ioc", "fok"])),
    "modify": st.tuples(st.just("modify"), who, pick, st.none() | price, st.none() | qty),
    "cancel": st.tuples(st.just("cancel"), who, pick),
    "wait": st.tuples(st.just("wait"), st.integers(1, 40_000)),
    "replay": st.tuples(st.just("replay")),
    "duplicate": st.tuples(st.just("duplicate"), who, pick),  # a new order, an id it has
    "forged": st.tuples(st.just("forged"), who, who, pick),  # a cancel in another's name
    "expired": st.tuples(st.just("expired"), who, pick),
}
# about half the steps new orders (one_of would draw each kind alike)
steps = st.lists(st.sampled_from(["submit"] * 7 + sorted(STEPS)).flatmap(STEPS.__getitem__),
                 min_size=10, max_size=50)


class Run:
    """An exchange driven by steps, with the checks made after each."""

    def __init__(self, folder: str, config: ExchangeConfig) -> None:
        self.folder, self.config = folder, config
        self.now = START
        self.ex = Exchange(folder, config, OPERATOR, now_ms=self.now)
        self.nonce = 0
        self.ids: dict[str, list[str]] = {p: [] for p in MEMBERS}
        self.last: dict[str, Any] | None = None
        self.checked = 0  # trades checked against the limit prices
        self.accepted = self.refused = 0
        for p in MEMBERS:
            self.ex.register(self.signed(p, "register", {
                "public_key": public_key_hex(KEYS[p]), "capacity_kw": CAPACITY_KW}),
                now_ms=self.now)

    def signed(self, p: str, action: str, payload: dict[str, Any], *,
               key: Ed25519PrivateKey | None = None, expires_ms: int | None = None
               ) -> dict[str, Any]:
        self.nonce += 1
        return sign_command(key or KEYS[p], p, self.nonce,
                            self.now + 60_000 if expires_ms is None else expires_ms,
                            action, payload)

    def own(self, p: str, k: int) -> str:
        """Member ``p``'s ``k``-th order id (modulo), or an id it never used."""
        ids = self.ids[p]
        return ids[k % len(ids)] if ids else "none"

    def command(self, step: tuple[Any, ...]) -> dict[str, Any] | None:
        kind = step[0]
        if kind == "submit":
            _, p, side, pr, q, tif = step
            self.ids[p].append(oid := f"o{len(self.ids[p])}")
            return self.signed(p, "submit", {"id": oid, "side": side, "quantity_kwh": q,
                                             "price_per_kwh": pr, "tif": tif})
        if kind == "modify":
            _, p, k, pr, q = step
            change = {k: v for k, v in (("price_per_kwh", pr), ("quantity_kwh", q))
                      if v is not None}
            return self.signed(p, "modify", {"id": self.own(p, k), **change})
        if kind == "cancel":
            return self.signed(step[1], "cancel", {"id": self.own(step[1], step[2])})
        if kind == "duplicate":
            return self.signed(step[1], "submit", {"id": self.own(step[1], step[2]),
                                                   "side": "buy", "quantity_kwh": 0.01,
                                                   "price_per_kwh": 0.2})
        if kind == "forged":
            _, signer, victim, k = step
            if signer == victim:
                return None
            return self.signed(victim, "cancel", {"id": self.own(victim, k)}, key=KEYS[signer])
        if kind == "expired":
            return self.signed(step[1], "cancel", {"id": self.own(step[1], step[2])},
                               expires_ms=self.now - 1)
        if kind == "replay":
            return self.last
        self.now += step[1]
        return None

    def step(self, step: tuple[Any, ...]) -> None:
        cmd = self.command(step)
        self.ex.close_gate(self.now)  # the clock's doing, before the command's
        self.check()
        if cmd is None:
            return
        before = self.ex.state_hash()
        try:
            self.ex.execute([cmd], now_ms=self.now)
        except Refused:
            self.refused += 1
            assert self.ex.state_hash() == before, f"refused {step} changed the state"
        else:
            self.accepted += 1
            self.last = cmd
        self.check()

    def check(self) -> None:
        """The checks that hold after every step."""
        ex = self.ex
        for t in ex.trades[self.checked:]:
            assert t.quantity_kwh > 0
            if t.buyer != "exchange":
                assert t.price_per_kwh <= ex.orders[t.buyer, t.buy_id].price_per_kwh + EPS, t
            if t.seller != "exchange":
                assert t.price_per_kwh >= ex.orders[t.seller, t.sell_id].price_per_kwh - EPS, t
        self.checked = len(ex.trades)
        bought, sold = defaultdict(float), defaultdict(float)
        for t in ex.trades:  # a continuous trade is one quantity both ways; an auction's
            bought[t.interval] += t.quantity_kwh * (t.buyer != "exchange")
            sold[t.interval] += t.quantity_kwh * (t.seller != "exchange")
        for interval in bought:
            assert bought[interval] == pytest.approx(sold[interval], abs=1e-9)
        filled = {"buy": 0.0, "sell": 0.0}
        for o in ex.orders.values():
            assert -EPS <= o.filled_kwh <= o.quantity_kwh + EPS, o
            filled[o.side] += o.filled_kwh
        assert filled["buy"] == pytest.approx(filled["sell"], abs=1e-9)
        assert filled["buy"] == pytest.approx(sum(bought.values()), abs=1e-9)
        if self.config.mode == "continuous":
            bid, ask = ex.book.best_bid(), ex.book.best_ask()
            assert bid is None or ask is None or bid < ask, (bid, ask)
            assert all(o.status != "open" or o.tif == "gtc" for o in ex.orders.values())

    def finish(self) -> None:
        """The ledger after the run, and the folder reopened and verified."""
        ex = self.ex
        ex.commit()
        report = ex.ledger.check(full=True)
        assert report.is_ok, report
        balances = ex.ledger.balances()
        money = {a: b for a, b in balances.items() if a.endswith("money")}
        energy = {a: b for a, b in balances.items() if a.endswith("energy")}
        assert sum(money.values()) == 0
        assert sum(energy.values()) == 0
        # members' balances are their trades' exact sums rounded (half a unit for each
        # running total: paid and received, delivered and taken), the rest the house's
        paid, got = defaultdict(float), defaultdict(float)
        for t in ex.trades:
            for p, sign in ((t.buyer, 1), (t.seller, -1)):
                if p != "exchange":
                    got[p] += sign * t.quantity_kwh
                    paid[p] += sign * t.quantity_kwh * t.price_per_kwh
        for p in MEMBERS:
            assert abs(energy[f"{p}:energy"] - got[p] * 1000) <= 1 + 1e-6, p
            assert abs(money[f"{p}:money"] + paid[p] * 100) <= 1 + 1e-6, p
        assert abs(energy[ENERGY]) <= len(MEMBERS)
        assert abs(money[MONEY]) <= len(MEMBERS)
        state = ex.state_hash()
        ex.close()
        again = Exchange(self.folder, self.config, OPERATOR, now_ms=self.now)
        try:
            assert again.state_hash() == state
            assert len(again.trades) == len(ex.trades)
        finally:
            again.close()
        verified = verify_run(self.folder, trusted=OPERATOR.public_key())
        assert verified.is_ok, verified


CONFIGS = {"auction": ExchangeConfig(mode="auction"),
           "continuous": ExchangeConfig(mode="continuous")}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_random_commands_keep_the_exchange_sound(config: str, steps: list[tuple[Any, ...]]
                                                 ) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run = Run(folder, CONFIGS[config])
        for s in steps:
            run.step(s)
        run.step(("wait", PERIOD_MS))  # the last gate closes: the auction clears
        run.finish()


def test_the_steps_reach_trades_and_refusals() -> None:
    """The generator is no toy: a fixed sequence of its steps trades, refuses and
    closes gates in both modes (so the property's checks have something to check)."""
    seq: list[tuple[Any, ...]] = [
        ("submit", "a", "sell", 0.10, 0.02, "gtc"),
        ("submit", "b", "buy", 0.30, 0.03, "gtc"),
        ("replay",), ("forged", "b", "a", 0), ("expired", "a", 0), ("duplicate", "a", 0),
        ("submit", "c", "buy", 2.10, 0.01, "gtc"),
        ("modify", "b", 0, 0.35, None), ("wait", PERIOD_MS),
        ("submit", "c", "sell", 0.20, 0.01, "ioc"), ("cancel", "b", 0)]
    for mode in ("auction", "continuous"):
        with tempfile.TemporaryDirectory() as folder:
            run = Run(folder, ExchangeConfig(mode=mode))
            for s in seq:
                run.step(s)
            run.finish()
            assert run.checked >= 2, mode
            assert run.refused >= 5, mode
            assert run.accepted >= 3, mode
