"""The live exchange's state machine: members, orders, trades, settlement.

Everything that changes the exchange is an input the journal holds: signed
commands (``commands`` records), gate closures and operator actions
(``events``), members' keys (``keys``). The state is a function of those
inputs and their times (``at_ms``), so opening a data folder replays its
journal through the same code and arrives at exactly the state it had (the
same :meth:`Exchange.state_hash`); trades settle as linked transfers in the
double-entry ledger, journaled ahead of the ledger's commit (write-ahead), so
``transactive ledger verify DATA_DIR`` checks the folder like a run folder.

Money moves through the exchange's own accounts (``exchange:money`` and
``exchange:energy``): a buyer pays the exchange and the exchange pays the
seller, so whatever a mechanism keeps or adds (a McAfee or VCG budget
surplus, rounding to cents) stays visible on those accounts.

A request is all or nothing: every check (signature, expiry, nonce, roles,
ids, limits, rate) passes before anything changes, or nothing does.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from transactive.errors import TransactiveError
from transactive.markets.book import OrderBook
from transactive.markets.registry import clear
from transactive.orders import OrderBatch
from transactive.server.config import ExchangeConfig
from transactive.server.errors import (
    Conflict,
    Forbidden,
    Halted,
    NotFound,
    Refused,
    Unauthorized,
)
from transactive.server.protocol import (
    CancelPayload,
    Command,
    ModifyPayload,
    OrderPayload,
    RegisterPayload,
)
from transactive.server.risk import CircuitBreaker, RateLimiter
from transactive.settlement._signing import (
    canonical,
    public_key,
    public_key_hex,
    sign_receipt,
    verify_many,
)
from transactive.settlement.journal import Journal, read_journal, replay_journal
from transactive.settlement.ledger import Account, AccountKind, Ledger, Transfer, Unit
from transactive.settlement.oracle import MeterReading, Oracle, OracleConfig, Refusal
from transactive.settlement.privacy import PrivacyAccountant
from transactive.settlement.verify import JOURNAL_FILE, LEDGER_FILE

__all__ = ["Exchange", "Member", "OrderState", "Trade"]

MONEY, ENERGY = "exchange:money", "exchange:energy"
_PAYLOADS = {"submit": OrderPayload, "modify": ModifyPayload, "cancel": CancelPayload}


@dataclass(frozen=True)
class _Pending:
    seq: int
    accounts: list[Account]
    groups: list[list[Transfer]]


@dataclass(frozen=True)
class Member:
    participant: str
    public_key_hex: str
    roles: tuple[str, ...]
    capacity_kw: float
    joined_ms: int


@dataclass
class OrderState:
    """One order as its owner sees it (``filled + remaining == quantity``)."""

    participant: str
    id: str
    side: str
    price_per_kwh: float
    quantity_kwh: float
    filled_kwh: float
    status: str  # open, filled, cancelled, unfilled (an auction's remainder)
    tif: str
    at_ms: int
    interval: int

    @property
    def remaining_kwh(self) -> float:
        return self.quantity_kwh - self.filled_kwh


@dataclass(frozen=True)
class Trade:
    n: int
    at_ms: int
    interval: int
    buyer: str
    seller: str
    buy_id: str
    sell_id: str
    price_per_kwh: float
    quantity_kwh: float


@dataclass
class _Position:
    """A member's energy in the current interval: filled and still open, per side."""

    bought_kwh: float = 0.0
    sold_kwh: float = 0.0
    open_buy_kwh: float = 0.0
    open_sell_kwh: float = 0.0


@dataclass
class Monitor:
    """The trial's running figures (refusals are counted, not journaled)."""

    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    trades: int = 0  # on the tape: an auction's energy counted once, as bought
    volume_kwh: float = 0.0
    value: float = 0.0
    savings: float = 0.0  # against the utility's retail and feed-in prices


class Exchange:
    """The exchange of one data folder (``journal.jsonl`` + ``settlement.sqlite``).

    Parameters
    ----------
    data_dir : path
        Created if missing; an existing one is recovered from its journal.
    config : ExchangeConfig
        Must equal the configuration the folder was started with.
    operator_key : Ed25519PrivateKey
        Signs receipts and the journal's checkpoints.
    """

    def __init__(self, data_dir: str | Path, config: ExchangeConfig,
                 operator_key: Ed25519PrivateKey, *, now_ms: int) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.operator_key = operator_key
        self.members: dict[str, Member] = {}
        self._keys: dict[str, Ed25519PublicKey] = {}
        self.orders: dict[tuple[str, str], OrderState] = {}
        self.trades: list[Trade] = []
        self._member_trades: dict[str, list[Trade]] = {}  # each member's, in order
        self.clearings: list[dict[str, Any]] = []
        self.book = OrderBook()
        self._pending: list[tuple[str, str]] = []  # the auction's orders, in arrival order
        self._positions: dict[str, _Position] = {}
        self.interval = now_ms // config.gate_period_ms
        self.limiter = RateLimiter(config.limits.orders_per_s)
        self._in_lots = config.mode == "auction" and config.mechanism == "mcafee"
        self.breaker = CircuitBreaker(config.breaker)
        self.monitor = Monitor()
        self.readings_wh: dict[tuple[str, int], int] = {}
        # readings are checked by the oracle (signature, nonce, range, timing) on
        # the exchange's intervals; the exchange journals what it accepts
        self.oracle = Oracle(OracleConfig(interval_ms=config.gate_period_ms,
                                          max_age_ms=max(3_600_000, 4 * config.gate_period_ms)))
        self.releases: list[dict[str, Any]] = []
        self._unposted: list[list[Transfer]] = []  # posted at the next commit
        self._unjournaled: list[list[Transfer]] = []  # this request's, journaled at its end
        self._exact: dict[tuple[str, str, int], float] = {}  # running totals, see _move
        self._new_accounts: list[Account] = []
        self.outbox: list[dict[str, Any]] = []  # events for the feed, sent once durable
        self._replaying = False
        journal_path = self.data_dir / JOURNAL_FILE
        self.ledger = Ledger(self.data_dir / LEDGER_FILE)
        self.journal = Journal(journal_path, fsync=False)
        if self.journal.seq == 0:
            self._accounts([Account(MONEY, AccountKind.MARKET, Unit.CENT),
                            Account(ENERGY, AccountKind.MARKET, Unit.WH)])
            self.journal.append_events([("start", {"config": config.model_dump(mode="json"),
                                                   "operator": public_key_hex(operator_key),
                                                   "interval": self.interval}, now_ms)])
            self.commit()
        else:
            self._recover(journal_path)

    # ------------------------------------------------------------- recovery
    def _recover(self, path: Path) -> None:
        if self.ledger.cursor < self.journal.seq:
            replay_journal(path, self.ledger, after=self.ledger.cursor)
        journaled: set[str] = set()
        self._replaying = True
        try:
            for rec in read_journal(path):
                body = rec.body
                if rec.kind == "commands":
                    for row in body["commands"]:
                        self._replay_command(row, rec.seq)
                elif rec.kind == "events":
                    for action, payload, at_ms in body["events"]:
                        self._replay_event(action, payload, at_ms)
                elif rec.kind == "transfers":
                    journaled.update(body["id"])
                elif rec.kind == "readings":
                    for row in body["readings"]:
                        r = MeterReading.from_row(row)
                        self._take_readings([r], r.timestamp_ms)
        finally:
            self._replaying = False
        # trades whose transfers a crash kept from the journal are settled now
        missing = [g for g in self._unposted if g[0].id not in journaled]
        self._unposted = []
        if missing:
            self._unposted = missing
            self.journal.append_transfers(missing)
            self.commit()

    def _replay_command(self, row: list[Any], seq: int) -> None:
        participant, nonce, expires_ms, at_ms, action, payload, sig = row
        cmd = Command(participant=participant, nonce=nonce, expires_ms=expires_ms,
                      action=action, payload=payload, signature=sig)
        if action == "register":
            self._join(cmd, RegisterPayload(**payload), at_ms)
        else:
            self._roll(at_ms)
            self.limiter.take(participant, 1, at_ms=at_ms)
            self._apply(cmd, _PAYLOADS[action](**payload), at_ms, seq)

    def _replay_event(self, action: str, payload: dict[str, Any], at_ms: int) -> None:
        if action == "start":
            if payload["config"] != self.config.model_dump(mode="json"):
                raise Refused("config", "differs from the configuration this data folder "
                              "was started with (start a new folder with --data)")
            self.interval = payload["interval"]
        elif action == "gate":
            self._gate(payload["interval"], at_ms)
        elif action == "release":
            self.releases.append(payload)

    # ------------------------------------------------------------- commands
    def register(self, command: dict[str, Any] | Command, *, now_ms: int) -> dict[str, Any]:
        """Admit a member; returns the operator's signed receipt."""
        try:
            return self._register(_command(command), now_ms)
        except Refused as exc:
            self.monitor.refused[f"{exc.status} {exc.field}"] += 1
            raise

    def _register(self, cmd: Command, now_ms: int) -> dict[str, Any]:
        if cmd.action != "register":
            raise Refused("action", "must be 'register'")
        reg = _payload(RegisterPayload, cmd.payload)
        key = public_key(reg.public_key, "payload.public_key")
        if not verify_many([key], [cmd.message()], [bytes.fromhex(cmd.signature)])[0]:
            raise Unauthorized("signature", "does not verify with payload.public_key")
        self._fresh(cmd, now_ms)
        if cmd.participant in self.members:
            raise Conflict("participant", f"{cmd.participant!r} is registered already")
        limits = self.config.limits
        if len(self.members) >= limits.max_participants:
            raise Forbidden("participant", f"the trial is full ({limits.max_participants} "
                            "participants)")
        if reg.capacity_kw > limits.max_capacity_kw:
            raise Forbidden("payload.capacity_kw", f"above the trial's limit of "
                            f"{limits.max_capacity_kw:g} kW")
        self.journal.register_participants({cmd.participant: key})
        if "meter" in reg.roles:
            self.journal.register_meters({cmd.participant: key})
        seq = self.journal.append_commands([cmd.row(now_ms)])
        self._join(cmd, reg, now_ms)
        return self.receipt({"kind": "register", "participant": cmd.participant,
                              "nonce": cmd.nonce, "seq": seq, "at_ms": now_ms})

    def _join(self, cmd: Command, reg: RegisterPayload, at_ms: int) -> None:
        p = cmd.participant
        self.members[p] = Member(p, reg.public_key, tuple(reg.roles), reg.capacity_kw, at_ms)
        self._keys[p] = public_key(reg.public_key)
        self._positions[p] = _Position()
        self._accounts([Account(f"{p}:money", AccountKind.PARTICIPANT_MONEY, Unit.CENT),
                        Account(f"{p}:energy", AccountKind.PARTICIPANT_ENERGY, Unit.WH)])
        if "meter" in reg.roles:
            most_wh = max(1, round(reg.capacity_kw * self.config.gate_period_s / 3.6))
            self.oracle.register(p, self._keys[p], max_import_wh=most_wh)
        self.monitor.accepted["register"] += 1
        self._publish({"type": "register", "participants": len(self.members)})

    def execute(self, commands: Sequence[dict[str, Any] | Command], *, now_ms: int
                ) -> dict[str, Any]:
        """Submit, modify or cancel orders of one participant, all or nothing;
        returns the operator's signed receipt of them (their journal record)."""
        try:
            return self._execute([_command(c) for c in commands], now_ms)
        except Refused as exc:
            self.monitor.refused[f"{exc.status} {exc.field}"] += 1
            raise

    def _execute(self, cmds: list[Command], now_ms: int) -> dict[str, Any]:
        limits = self.config.limits
        if not cmds:
            raise Refused("commands", "empty")
        if len(cmds) > limits.max_orders_per_request:
            raise Refused("commands", f"at most {limits.max_orders_per_request} a request")
        who = cmds[0].participant
        if any(c.participant != who for c in cmds):
            raise Refused("participant", "one participant per request")
        key = self._keys.get(who)
        if key is None:
            raise Unauthorized("participant", f"{who!r} is not registered")
        if "participant" not in self.members[who].roles:
            raise Forbidden("participant", f"{who!r} may not trade (roles: meter)")
        ok = verify_many([key] * len(cmds), [c.message() for c in cmds],
                         [bytes.fromhex(c.signature) for c in cmds])
        if not ok.all():
            raise Unauthorized("signature", "does not verify",
                               row=int(np.flatnonzero(~ok)[0]) if len(cmds) > 1 else None)
        self._roll(now_ms)
        payloads: list[Any] = []
        for i, c in enumerate(cmds):
            payloads.append(self._check(c, now_ms, cmds, i, {p.id for p in payloads}))
        self._check_position(who, cmds, payloads)
        until = self.breaker.halted_until(now_ms)
        if until is not None and any(c.action != "cancel" for c in cmds):
            raise Halted("commands", f"trading is halted by the circuit breaker until "
                         f"{until} ms (cancels are accepted)",
                         retry_after_s=(until - now_ms) / 1000)
        self.limiter.take(who, len(cmds), at_ms=now_ms)
        seq = self.journal.append_commands([c.row(now_ms) for c in cmds])
        for cmd, payload in zip(cmds, payloads, strict=True):
            self._apply(cmd, payload, now_ms, seq)
        self._journal_transfers()
        return self.receipt({"kind": "commands", "participant": who, "seq": seq,
                             "at_ms": now_ms, "actions": [c.action for c in cmds],
                             "ids": [p.id for p in payloads], "nonces": [c.nonce for c in cmds]})

    def _fresh(self, cmd: Command, now_ms: int) -> None:
        if cmd.expires_ms < now_ms:
            raise Refused("expires_ms", "the command has expired")
        if cmd.expires_ms > now_ms + self.config.limits.max_expiry_s * 1000:
            raise Refused("expires_ms", f"more than {self.config.limits.max_expiry_s:g} s "
                          "ahead")
        if not self.journal.nonce_fresh(cmd.participant, cmd.nonce, now_ms):
            raise Conflict("nonce", f"{cmd.nonce} was used before (a replay)")

    def _check(self, cmd: Command, now_ms: int, batch: list[Command], i: int,
               earlier: set[str]) -> OrderPayload | ModifyPayload | CancelPayload:
        """Every check of one command against the state (nothing changes)."""
        self._fresh(cmd, now_ms)
        if any(c.nonce == cmd.nonce for c in batch[:i]):
            raise Conflict("nonce", f"{cmd.nonce} twice in one request", row=i)
        if cmd.action not in _PAYLOADS:
            raise Refused("action", f"must be submit, modify or cancel, got {cmd.action!r}")
        payload = _payload(_PAYLOADS[cmd.action], cmd.payload)
        if payload.id in earlier:
            raise Conflict("payload.id", f"{payload.id!r} twice in one request", row=i)
        own = self.orders.get((cmd.participant, payload.id))
        limits = self.config.limits
        if isinstance(payload, OrderPayload):
            if own is not None:
                raise Conflict("payload.id", f"order {payload.id!r} exists")
            if payload.tif != "gtc" and self.config.mode == "auction":
                raise Refused("payload.tif", "auctions take 'gtc' orders only")
            price, qty = payload.price_per_kwh, payload.quantity_kwh
        else:
            if own is None:
                raise NotFound("payload.id", f"no order {payload.id!r} of yours")
            if own.status != "open":
                raise Conflict("payload.id", f"order {payload.id!r} is {own.status}")
            if isinstance(payload, CancelPayload):
                return payload
            price = own.price_per_kwh if payload.price_per_kwh is None else payload.price_per_kwh
            qty = own.quantity_kwh if payload.quantity_kwh is None else payload.quantity_kwh
            if qty < own.filled_kwh:
                raise Refused("payload.quantity_kwh", f"below the filled {own.filled_kwh:g}")
        if not limits.price_floor_per_kwh <= price <= limits.price_cap_per_kwh:
            raise Refused("payload.price_per_kwh", f"outside the trial's band "
                          f"[{limits.price_floor_per_kwh:g}, {limits.price_cap_per_kwh:g}]")
        most = self.members[cmd.participant].capacity_kw * self.config.gate_period_s / 3600
        if qty > most * (1 + 1e-9):
            raise Refused("payload.quantity_kwh", f"above the {most:.6g} kWh the registered "
                          "capacity delivers in a gate period")
        lots = qty / self.config.lot_kwh
        if self._in_lots and abs(lots - round(lots)) > 1e-6 * max(1.0, lots):
            raise Refused("payload.quantity_kwh", f"must be a whole number of lots of "
                          f"{self.config.lot_kwh:g} kWh (McAfee trades lots)")
        return payload

    def _check_position(self, who: str, cmds: list[Command], payloads: list[Any]) -> None:
        """Open plus filled buys (and sells) stay within the position limit,
        counting every new order as if it filled."""
        pos = self._positions[who]
        add = {"buy": 0.0, "sell": 0.0}
        for payload in payloads:
            if isinstance(payload, OrderPayload):
                add[payload.side] += payload.quantity_kwh
            elif isinstance(payload, ModifyPayload) and payload.quantity_kwh is not None:
                own = self.orders[who, payload.id]
                add[own.side] += max(0.0, payload.quantity_kwh - own.quantity_kwh)
        limit = self.config.limits.position_limit_kwh
        for side, have in (("buy", pos.bought_kwh + pos.open_buy_kwh),
                           ("sell", pos.sold_kwh + pos.open_sell_kwh)):
            if add[side] and have + add[side] > limit * (1 + 1e-9):
                raise Forbidden("payload.quantity_kwh", f"{side}s would reach "
                                f"{have + add[side]:.6g} kWh this interval, over the "
                                f"position limit of {limit:g} kWh")

    def _apply(self, cmd: Command, payload: Any, at_ms: int, seq: int) -> None:
        """A checked command changes the state (it cannot fail now)."""
        who = cmd.participant
        self.monitor.accepted[cmd.action] += 1
        pos = self._positions[who]
        if isinstance(payload, OrderPayload):
            order = OrderState(who, payload.id, payload.side, payload.price_per_kwh,
                               payload.quantity_kwh, 0.0, "open", payload.tif, at_ms,
                               self.interval)
            self.orders[who, payload.id] = order
            self._open(pos, order, +1)
            if self.config.mode == "auction":
                self._pending.append((who, payload.id))
            else:
                fills = self.book.add(f"{who}/{payload.id}", who, payload.side,
                                      payload.quantity_kwh, payload.price_per_kwh, payload.tif)
                self._fills(fills, at_ms)
                self._close_if_done(order)
        elif isinstance(payload, CancelPayload):
            order = self.orders[who, payload.id]
            self._open(pos, order, -1)
            order.status = "cancelled"
            if self.config.mode == "continuous":
                self.book.cancel(f"{who}/{payload.id}")
        else:
            order = self.orders[who, payload.id]
            self._open(pos, order, -1)
            if payload.price_per_kwh is not None:
                order.price_per_kwh = payload.price_per_kwh
            if payload.quantity_kwh is not None:
                order.quantity_kwh = payload.quantity_kwh
            self._open(pos, order, +1)
            if self.config.mode == "continuous":
                fills = self.book.modify(f"{who}/{payload.id}", payload.price_per_kwh,
                                         payload.quantity_kwh)
                self._fills(fills, at_ms)
            if order.remaining_kwh <= 0:
                order.status = "filled"
            self._close_if_done(order)
        self._publish({"type": "order", "action": cmd.action, "seq": seq})

    @staticmethod
    def _open(pos: _Position, order: OrderState, sign: int) -> None:
        if order.side == "buy":
            pos.open_buy_kwh += sign * order.remaining_kwh
        else:
            pos.open_sell_kwh += sign * order.remaining_kwh

    def _close_if_done(self, order: OrderState) -> None:
        """An immediate-or-cancel remainder, or a filled order, leaves the book."""
        if order.status != "open":
            return
        if order.remaining_kwh <= 1e-12:
            order.status = "filled"
        elif self.config.mode == "continuous" and order.tif != "gtc":
            self._open(self._positions[order.participant], order, -1)
            order.status = "cancelled"

    # ----------------------------------------------------------------- trades
    def _fills(self, fills: Sequence[Any], at_ms: int) -> None:
        for f in fills:
            buyer, buy_id = str(f.buy_id).split("/", 1)
            seller, sell_id = str(f.sell_id).split("/", 1)
            self._trade(buyer, buy_id, seller, sell_id, f.price, f.quantity, at_ms)

    def _trade(self, buyer: str, buy_id: str, seller: str, sell_id: str, price: float,
               qty: float, at_ms: int) -> None:
        n = len(self.trades)
        trade = Trade(n, at_ms, self.interval, buyer, seller, buy_id, sell_id, price, qty)
        self._record(trade)
        for who, oid, sign in ((buyer, buy_id, 1), (seller, sell_id, -1)):
            order = self.orders[who, oid]
            pos = self._positions[who]
            self._open(pos, order, -1)
            order.filled_kwh += qty
            self._open(pos, order, +1)
            if sign > 0:
                pos.bought_kwh += qty
            else:
                pos.sold_kwh += qty
            if order.remaining_kwh <= 1e-12:
                order.status = "filled"
        self._settle([self._move(f"t{n}:pay", buyer, "money", +1, price * qty * 100),
                      self._move(f"t{n}:paid", seller, "money", -1, price * qty * 100),
                      self._move(f"t{n}:deliver", seller, "energy", -1, qty * 1000),
                      self._move(f"t{n}:delivered", buyer, "energy", +1, qty * 1000)])
        m, tariff = self.monitor, self.config.tariff
        m.trades += 1
        m.volume_kwh += qty
        m.value += price * qty
        m.savings += qty * (tariff.retail_price_per_kwh - tariff.feed_in_price_per_kwh)
        if self.breaker.observe(price, at_ms=at_ms):
            self._publish({"type": "halt", "until_ms": self.breaker.halts[-1].until_ms})
        self._publish(_public(trade))

    def _record(self, trade: Trade) -> None:
        """A trade on the exchange's list and on its members' own."""
        self.trades.append(trade)
        for who in {trade.buyer, trade.seller} - {"exchange"}:
            self._member_trades.setdefault(who, []).append(trade)

    def trades_of(self, participant: str) -> list[Trade]:
        """The member's trades in order (read by its requests, not a scan of all)."""
        return self._member_trades.get(participant, [])

    def _move(self, tid: str, who: str, unit: str, sign: int, exact: float) -> Transfer:
        """``exact`` cents (or Wh) between a member and the exchange, rounded by
        running totals: what a member has paid (or received, or delivered) in
        all never differs from the exact sum by more than half a unit, and
        the exchange's account holds what rounding kept or added. A negative
        ``exact`` (a trade at a negative price) moves the other way."""
        if exact < 0:
            sign, exact = -sign, -exact
        key = (who, unit, sign)
        before = self._exact.get(key, 0.0)
        self._exact[key] = after = before + exact
        amount = round(after) - round(before)
        mine, house = f"{who}:{unit}", MONEY if unit == "money" else ENERGY
        # money: a buyer (+1) pays the house; energy: a buyer (+1) receives it
        debit, credit = (mine, house) if (sign > 0) == (unit == "money") else (house, mine)
        code = "trade_money" if unit == "money" else "trade_energy"
        return Transfer(tid, debit, credit, amount, code, self.interval)

    def _settle(self, transfers: list[Transfer]) -> None:
        """A trade's linked transfers: journaled with the others of its request
        or gate (:meth:`_journal_transfers`), posted at the next commit."""
        group = [t for t in transfers if t.amount > 0]
        if group:
            self._unposted.append(group)
            if not self._replaying:
                self._unjournaled.append(group)

    def _journal_transfers(self) -> None:
        if self._unjournaled:
            self.journal.append_transfers(self._unjournaled)
            self._unjournaled = []

    def _accounts(self, accounts: list[Account]) -> None:
        if not self._replaying:
            self.journal.append_accounts(accounts)
            self._new_accounts.extend(accounts)

    # ------------------------------------------------------------------ gates
    def close_gate(self, now_ms: int) -> int:
        """Close every gate up to ``now_ms``: clear each ended auction (or roll
        the continuous book's interval). Returns how many gates closed."""
        closed = 0
        while (self.interval + 1) * self.config.gate_period_ms <= now_ms:
            self.journal.append_events([("gate", {"interval": self.interval}, now_ms)])
            self._gate(self.interval, now_ms)
            self._journal_transfers()
            closed += 1
        if closed:
            self.checkpoint()
        return closed

    def checkpoint(self) -> None:
        """Sign the journal so far with the operator's key (at every gate and on
        close), unless nothing was written since the last signature."""
        if not self.journal.at_checkpoint:
            self.journal.checkpoint(self.operator_key)

    def _roll(self, at_ms: int) -> None:
        """Commands carry the time: a gate that has passed closes first."""
        if (self.interval + 1) * self.config.gate_period_ms <= at_ms and not self._replaying:
            self.close_gate(at_ms)

    def _gate(self, interval: int, at_ms: int) -> None:
        if self.config.mode == "auction" and self.breaker.halted_until(at_ms) is None:
            self._auction(interval, at_ms)
        self.interval = interval + 1
        for who, pos in self._positions.items():
            self._positions[who] = _Position(open_buy_kwh=pos.open_buy_kwh,
                                             open_sell_kwh=pos.open_sell_kwh)
        self._publish({"type": "gate", "interval": interval})

    def _auction(self, interval: int, at_ms: int) -> None:
        keys = [k for k in self._pending if self.orders[k].status == "open"]
        self._pending = []
        if not keys:
            return
        orders = [self.orders[k] for k in keys]
        batch = OrderBatch(id=np.arange(len(keys)),
                           participant=np.array([o.participant for o in orders], dtype=object),
                           side=np.array([1 if o.side == "buy" else -1 for o in orders],
                                         dtype=np.int8),
                           price=np.array([o.price_per_kwh for o in orders]),
                           quantity=np.array([o.quantity_kwh for o in orders]))
        mechanism = self.config.mechanism
        options: dict[str, Any] = ({"rng": np.random.default_rng(interval)} if mechanism == "muda"
                                   else {"unit_kwh": self.config.lot_kwh}
                                   if mechanism == "mcafee" else {})
        try:
            result = clear(batch, mechanism, **options)
        except TransactiveError as exc:  # checked orders should never get here
            self.clearings.append({"interval": interval, "at_ms": at_ms, "error": str(exc)})
            for o in orders:
                self._open(self._positions[o.participant], o, -1)
                o.status = "unfilled"
            return
        accepted, payment = result.accepted, result.payment
        anon = {p: i for i, p in enumerate(dict.fromkeys(o.participant for o in orders))}
        self.clearings.append({
            "interval": interval, "at_ms": at_ms, "mechanism": self.config.mechanism,
            "clearing_price_per_kwh": _finite(result.clearing_price),
            "orders": {"id": list(range(len(keys))),
                       "participant": [anon[o.participant] for o in orders],
                       "side": [o.side for o in orders],
                       "price": [o.price_per_kwh for o in orders],
                       "quantity": [o.quantity_kwh for o in orders]},
            "accepted_kwh": accepted.tolist(), "payment": payment.tolist()})
        for o in orders:  # no longer open: filled now, or never
            self._open(self._positions[o.participant], o, -1)
        self._settle_auction(orders, accepted, payment, at_ms)
        for o in orders:
            o.status = "filled" if o.remaining_kwh <= 1e-12 else "unfilled"
        traded = math.isfinite(result.clearing_price) and float(accepted.sum()) > 0
        if traded and self.breaker.observe(result.clearing_price, at_ms=at_ms):
                self._publish({"type": "halt", "until_ms": self.breaker.halts[-1].until_ms})
        self._publish({"type": "clearing", "interval": interval, "at_ms": at_ms,
                       "clearing_price_per_kwh": _finite(result.clearing_price),
                       "volume_kwh": float(accepted[batch.side > 0].sum())})

    def _settle_auction(self, orders: list[OrderState], accepted: Any, payment: Any,
                        at_ms: int) -> None:
        """Each accepted order pays (or is paid) its payment through the exchange."""
        n = len(self.trades)
        group: list[Transfer] = []
        tariff, m = self.config.tariff, self.monitor
        for i, o in enumerate(orders):
            qty = float(accepted[i])
            if qty <= 0:
                continue
            o.filled_kwh = qty
            pos = self._positions[o.participant]
            paid = float(payment[i])  # to the exchange; negative: paid by it
            sign = 1 if o.side == "buy" else -1
            unit = sign * paid / qty  # the price per kWh the order trades at
            if sign > 0:
                pos.bought_kwh += qty
                m.volume_kwh += qty
                m.value += paid
                m.savings += qty * (tariff.retail_price_per_kwh - unit)
            else:
                pos.sold_kwh += qty
                m.savings += qty * (unit - tariff.feed_in_price_per_kwh)
            group += [self._move(f"a{self.interval}:{i}:m", o.participant, "money", 1,
                                 paid * 100),
                      self._move(f"a{self.interval}:{i}:e", o.participant, "energy", sign,
                                 qty * 1000)]
            # a sealed-bid auction's counterparty is the exchange
            buy, sell = ((o.participant, o.id), ("exchange", "")) if o.side == "buy" else \
                (("exchange", ""), (o.participant, o.id))
            trade = Trade(n, at_ms, self.interval, buy[0], sell[0], buy[1], sell[1], unit, qty)
            self._record(trade)
            if o.side == "buy":  # the tape shows each kWh once, as bought
                m.trades += 1
                self._publish(_public(trade))
            n += 1
        self._settle(group)

    # ------------------------------------------------------------ durability
    def commit(self) -> int:
        """Force the journal to disk, then commit what it describes to the
        ledger; returns the journal's sequence number now durable."""
        pending = self.take_pending()
        self.journal.sync()
        return self.commit_ledger(pending)

    def take_pending(self) -> _Pending:
        """What the ledger has yet to commit, journaled up to now and signed
        by the operator (a checkpoint): take it before forcing the journal to
        disk, commit it after. The ledger so never holds a record no
        checkpoint attests, and a folder killed between commits verifies as
        interrupted, not tampered."""
        if self._new_accounts or self._unposted:
            self.checkpoint()
        pending = _Pending(self.journal.seq, self._new_accounts, self._unposted)
        self._new_accounts, self._unposted = [], []
        return pending

    def commit_ledger(self, pending: _Pending) -> int:
        """Commit ``pending`` (its journal records on disk by now)."""
        if pending.accounts or pending.groups:
            self.ledger.apply(accounts=pending.accounts, groups=pending.groups,
                              cursor=pending.seq)
        return pending.seq

    def accept_readings(self, readings: Sequence[MeterReading], *, now_ms: int
                        ) -> dict[str, Any]:
        """Meters' signed readings of the exchange's intervals, checked by the
        oracle (registered meter, signature, nonce, within the meter's
        capacity, dated after its interval and not stale); the accepted ones
        are journaled. Refused, all of them, it raises with the first reason."""
        accepted, verdicts = self._take_readings(readings, now_ms)
        if not accepted:
            v = verdicts[0]
            status = {Refusal.UNKNOWN_METER: Unauthorized, Refusal.UNSIGNED: Unauthorized,
                      Refusal.BAD_SIGNATURE: Unauthorized, Refusal.REPLAYED: Conflict,
                      Refusal.DUPLICATE: Conflict}.get(v.reason, Refused)
            raise status("readings", f"{v.reason}: {v.detail}", row=0)
        seq = self.journal.append_readings(accepted)
        return {"seq": seq, "accepted": len(accepted),
                "refused": [{"row": i, "reason": str(v.reason), "detail": v.detail}
                            for i, v in enumerate(verdicts) if not v.is_ok]}

    def _take_readings(self, readings: Sequence[MeterReading], now_ms: int
                       ) -> tuple[list[MeterReading], list[Any]]:
        verdicts = self.oracle.submit(readings, now_ms=now_ms)
        accepted = [r for r, v in zip(readings, verdicts, strict=True) if v.is_ok]
        for r in accepted:
            self.readings_wh[r.meter_id, r.interval] = r.energy_wh
        return accepted, verdicts

    def release(self, interval: int, *, now_ms: int) -> dict[str, Any]:
        """Publish the metered energy of ``interval`` summed over meters, with
        Laplace noise through the privacy accountant (its budget: the trial's
        ``[privacy] total_epsilon``); journaled, so it is never drawn twice."""
        if any(r["interval"] == interval for r in self.releases):
            raise Conflict("interval", f"interval {interval} was released already")
        cfg = self.config.privacy
        values = [[wh / 1000] for (_, i), wh in sorted(self.readings_wh.items()) if i == interval]
        if not values:
            raise NotFound("interval", f"no readings of interval {interval}")
        left = cfg.total_epsilon - sum(r["epsilon"] for r in self.releases)
        if left < cfg.epsilon_per_release * (1 - 1e-9):
            raise Conflict("interval", f"the privacy budget is spent ({left:.6g} of "
                           f"{cfg.total_epsilon:g} left, a release takes "
                           f"{cfg.epsilon_per_release:g})")
        accountant = PrivacyAccountant(left, dataset="metered energy")
        noisy = accountant.release_sums(values, (0.0, cfg.max_kwh_per_participant),
                                        cfg.epsilon_per_release, label=f"i{interval}")
        out = {"interval": interval, "metered_kwh": float(noisy[0]), "meters": len(values),
               "epsilon": cfg.epsilon_per_release,
               "noise_scale_kwh": accountant.releases[-1].noise_scale,
               "remaining_epsilon": left - cfg.epsilon_per_release}
        self.journal.append_events([("release", out, now_ms)])
        self.releases.append(out)
        return out

    def close(self) -> None:
        self.checkpoint()
        self.commit()
        self.journal.close()
        self.ledger.close()

    # ----------------------------------------------------------------- reads
    def state_hash(self) -> str:
        """A hash of everything the exchange holds: the ledger's state, the
        members, every order and trade, the pending auction, the halts."""
        parts = [self.ledger.state_hash(), self.interval,
                 sorted([m.participant, m.public_key_hex] for m in self.members.values()),
                 [[o.participant, o.id, o.side, o.price_per_kwh, o.quantity_kwh,
                   o.filled_kwh, o.status] for o in self.orders.values()],
                 [asdict(t) for t in self.trades], [list(k) for k in self._pending],
                 [asdict(h) for h in self.breaker.halts]]
        return hashlib.sha256(canonical(parts)).hexdigest()

    def balances(self, participant: str) -> dict[str, int]:
        return {"money_cents": self.ledger.balance(f"{participant}:money"),
                "energy_wh": self.ledger.balance(f"{participant}:energy")}

    def authenticate(self, participant: str, message: bytes, signature: bytes) -> bool:
        key = self._keys.get(participant)
        return key is not None and bool(verify_many([key], [message], [signature])[0])

    def _publish(self, event: dict[str, Any]) -> None:
        if not self._replaying:
            self.outbox.append(event)

    def pending_count(self) -> int:
        """Orders waiting for the auction's gate."""
        return sum(self.orders[k].status == "open" for k in self._pending)

    def receipt(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` signed by the operator: a member checks it with
        :func:`~transactive.settlement._signing.verify_receipt`."""
        return {"body": body, "operator": public_key_hex(self.operator_key),
                "signature": sign_receipt(self.operator_key, body)}


def _command(value: dict[str, Any] | Command) -> Command:
    if isinstance(value, Command):
        return value
    try:
        return Command(**value)
    except ValidationError as exc:
        raise _refusal(exc, "") from None
    except TypeError:
        raise Refused("command", "must be a JSON object") from None


def _payload(model: Any, payload: dict[str, Any]) -> Any:
    try:
        return model(**payload)
    except ValidationError as exc:
        raise _refusal(exc, "payload.") from None


def _refusal(exc: ValidationError, prefix: str) -> Refused:
    err = exc.errors()[0]
    where = prefix + ".".join(str(p) for p in err["loc"])
    msg = ("unknown field" if err["type"] == "extra_forbidden"
           else err["msg"].removeprefix("Value error, "))
    return Refused(where.rstrip(".") or "command", msg)


def _public(trade: Trade) -> dict[str, Any]:
    """A trade as the public feed shows it: no names, no order ids."""
    return {"type": "trade", "n": trade.n, "at_ms": trade.at_ms, "interval": trade.interval,
            "price_per_kwh": trade.price_per_kwh, "quantity_kwh": trade.quantity_kwh}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
