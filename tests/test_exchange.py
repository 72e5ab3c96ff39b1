"""The live exchange's state machine on hand-worked cases: what an auction
settles and where its surplus goes, the breaker's halt and resumption, the
privacy budget, meter readings, and a crash between a request's records."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.server.config import ExchangeConfig
from transactive.server.errors import Conflict, Halted, Refused
from transactive.server.exchange import ENERGY, MONEY, Exchange
from transactive.server.protocol import sign_command
from transactive.settlement import verify_run
from transactive.settlement._signing import public_key_hex
from transactive.settlement.oracle import sign_reading
from transactive.settlement.verify import JOURNAL_FILE

T0 = 1_800_000_000_000  # ms, a gate boundary of 10 s gates
OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class _Trial:
    def __init__(self, folder, names, **config) -> None:
        self.cfg = ExchangeConfig.from_dict({"gate_period_s": 10, **config})
        self.folder = folder
        self.ex = Exchange(folder, self.cfg, OPERATOR, now_ms=T0)
        self.keys = {n: Ed25519PrivateKey.generate() for n in names}
        self.nonce = 0
        for n, k in self.keys.items():
            self.ex.register(self.cmd(n, "register", {"public_key": public_key_hex(k),
                                                      "roles": ["participant", "meter"],
                                                      "capacity_kw": 50}), now_ms=T0)

    def cmd(self, who, action, payload, at=T0):
        self.nonce += 1
        return sign_command(self.keys[who], who, self.nonce, at + 60_000, action, payload)

    def order(self, who, oid, side, qty, price, at=T0):
        return self.ex.execute([self.cmd(who, "submit", {
            "id": oid, "side": side, "quantity_kwh": qty, "price_per_kwh": price}, at)],
            now_ms=at)


@pytest.fixture
def trial(tmp_path):
    """Makes trials in ``tmp_path`` and closes them after the test."""
    made: list[_Trial] = []

    def make(names, **config):
        made.append(_Trial(tmp_path, names, **config))
        return made[-1]

    yield make
    for t in made:
        if not t.ex.journal._fh.closed:
            t.ex.close()


def test_a_mcafee_auction_settles_in_lots_and_its_surplus_stays_in_view(trial):
    t = trial( "abcd", mechanism="mcafee", lot_kwh=0.01)
    # 10 lots each: buyers at 0.40 and 0.30, sellers at 0.10 and 0.20; all 20 lots
    # could trade, no 21st pair prices the candidate, so McAfee reduces trade by
    # one lot: buyers pay the 20th bid (0.30), sellers get the 20th ask (0.20)
    t.order("a", "b", "buy", 0.1, 0.40)
    t.order("b", "b", "buy", 0.1, 0.30)
    t.order("c", "s", "sell", 0.1, 0.10)
    t.order("d", "s", "sell", 0.1, 0.20)
    assert t.ex.close_gate(T0 + 10_000) == 1
    t.ex.commit()
    bought = {tr.buyer: (tr.price_per_kwh, tr.quantity_kwh) for tr in t.ex.trades
              if tr.seller == "exchange"}
    sold = {tr.seller: (tr.price_per_kwh, tr.quantity_kwh) for tr in t.ex.trades
            if tr.buyer == "exchange"}
    assert sum(q for _, q in bought.values()) == pytest.approx(0.19)
    assert sum(q for _, q in sold.values()) == pytest.approx(0.19)
    assert {round(p, 9) for p, _ in bought.values()} == {0.30}
    assert {round(p, 9) for p, _ in sold.values()} == {0.20}
    bal = {p: t.ex.balances(p) for p in "abcd"}
    # 0.19 kWh x 0.10 = 1.9 cents kept by the exchange (by running totals: 2)
    assert t.ex.ledger.balance(MONEY) == -sum(b["money_cents"] for b in bal.values())
    assert t.ex.ledger.balance(MONEY) == 2
    assert sum(b["energy_wh"] for b in bal.values()) == 0
    assert t.ex.ledger.balance(ENERGY) == 0
    assert t.ex.ledger.check(full=True).is_ok
    # an order that is not whole lots is refused, naming the field
    with pytest.raises(Refused, match=r"whole number of lots of 0\.01 kWh"):
        t.order("a", "x", "buy", 0.015, 0.40, at=T0 + 10_001)


def test_the_breaker_halts_on_a_jump_and_trading_resumes_by_itself(trial):
    t = trial("ab", mode="continuous",
               breaker={"max_move": 0.2, "window": 3, "halt_s": 30})
    for i, price in enumerate([0.20, 0.21, 0.20]):
        t.order("a", f"s{i}", "sell", 0.01, price)
        t.order("b", f"b{i}", "buy", 0.01, price)
    t.order("a", "s9", "sell", 0.01, 0.40)
    t.order("b", "b9", "buy", 0.01, 0.40, at=T0 + 1)  # 0.40 vs a mean of 0.203: halt
    assert t.ex.breaker.halted_until(T0 + 2) == T0 + 1 + 30_000
    with pytest.raises(Halted) as exc:
        t.order("b", "b10", "buy", 0.01, 0.30, at=T0 + 2)
    assert 29 < exc.value.retry_after_s <= 30
    t.order("b", "b11", "buy", 0.01, 0.30, at=T0 + 30_001)  # resumed
    assert t.ex.orders["b", "b11"].status == "open"


def test_released_metered_energy_spends_the_budget_once_and_replays(tmp_path, trial):
    t = trial("abc", privacy={"epsilon_per_release": 1.0, "total_epsilon": 1.5})
    # capacity 50 kW: at most 139 Wh a 10 s gate; interval 7 ended long before T0
    readings = [sign_reading(t.keys[m], m, 7, wh, 1, T0) for m, wh in
                (("a", 40), ("b", 90), ("c", 120))]
    assert t.ex.accept_readings(readings, now_ms=T0)["accepted"] == 3
    with pytest.raises(Conflict, match="replayed"):
        t.ex.accept_readings(readings[:1], now_ms=T0)
    too_much = sign_reading(t.keys["a"], "a", 9, 140, 5, T0)
    with pytest.raises(Refused, match="out_of_range"):
        t.ex.accept_readings([too_much], now_ms=T0)
    out = t.ex.release(7, now_ms=T0 + 5)
    assert out["meters"] == 3
    assert out["epsilon"] == 1.0
    assert out["noise_scale_kwh"] == pytest.approx(50.0)  # bound 50 kWh / epsilon 1
    with pytest.raises(Conflict, match="released already"):
        t.ex.release(7, now_ms=T0 + 6)
    t.ex.accept_readings([sign_reading(t.keys["a"], "a", 8, 10, 2, T0)], now_ms=T0)
    with pytest.raises(Conflict, match="budget is spent"):
        t.ex.release(8, now_ms=T0 + 7)
    t.ex.close()
    again = Exchange(tmp_path, t.cfg, OPERATOR, now_ms=T0 + 8)
    assert again.releases == [out]  # the noise is journaled, never drawn twice
    again.close()


def test_a_crash_between_a_requests_records_is_settled_on_open(tmp_path, trial):
    t = trial("ab", mode="continuous")
    t.order("a", "s", "sell", 0.1, 0.20)
    t.order("b", "b", "buy", 0.1, 0.25)  # trades: a commands and a transfers record
    t.ex.commit()
    state = t.ex.state_hash()
    t.ex.journal.close()
    t.ex.ledger.close()
    journal = tmp_path / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    assert b'"kind":"checkpoint"' in lines[-1]
    assert b'"kind":"transfers"' in lines[-2]
    journal.write_bytes(b"".join(lines[:-2]))  # the transfers never reached the disk
    # (the ledger did commit them here, so rebuild it from the journal as a crash would)
    (tmp_path / "settlement.sqlite").unlink()
    again = Exchange(tmp_path, t.cfg, OPERATOR, now_ms=T0 + 1)
    assert again.state_hash() == state
    assert again.balances("b")["energy_wh"] == 100
    again.close()
    assert verify_run(tmp_path, OPERATOR.public_key()).is_ok


def test_the_example_trial_configuration_loads():
    from pathlib import Path

    from transactive.server.config import load_config

    cfg = load_config(Path(__file__).parents[1] / "examples" / "exchange" / "trial.toml")
    assert cfg.gate_period_s == 10
    assert cfg.breaker.halt_s == 30
