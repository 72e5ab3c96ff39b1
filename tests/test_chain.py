"""The Vyper escrow on the in-process EVM: roles, money conservation, re-entrancy, deadlines."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from transactive.errors import InputError
from transactive.settlement.chain import (
    ContractRevertError,
    EscrowChain,
    EscrowTotals,
    compile_vyper,
)

HOUR = 3600

# A contract that, paid by a withdrawal, immediately tries to withdraw again
# (re-entrancy), up to `max_attempts` times, without reverting when refused.
ATTACKER = """
# pragma version 0.4.3
target: public(address)
chunk: public(uint256)
attempts: public(uint256)
reentered: public(uint256)
max_attempts: public(uint256)

@deploy
def __init__(target: address, max_attempts: uint256):
    self.target = target
    self.max_attempts = max_attempts

@external
def attack(amount: uint256):
    self.chunk = amount
    raw_call(self.target, abi_encode(amount, method_id=method_id("withdraw(uint256)")))

@external
@payable
def __default__():
    if self.attempts < self.max_attempts:
        self.attempts += 1
        ok: bool = raw_call(
            self.target,
            abi_encode(self.chunk, method_id=method_id("withdraw(uint256)")),
            revert_on_failure=False,
        )
        if ok:
            self.reentered += 1
"""

# The classic mistake (interaction before effects, no lock), to show the attacker works.
VULNERABLE_BANK = """
# pragma version 0.4.3
credits: public(HashMap[address, uint256])

@external
@payable
def credit(account: address):
    self.credits[account] += msg.value

@external
def withdraw(amount: uint256):
    assert amount <= self.credits[msg.sender], "more than owed"
    raw_call(msg.sender, b"", value=amount)
    self.credits[msg.sender] = 0
"""


def _deploy(chain: EscrowChain, source: str, *args: Any) -> Any:
    abi, bytecode = compile_vyper(source)
    tx = chain.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).transact(
        {"from": chain.accounts[0]}
    )
    address = chain.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return chain.w3.eth.contract(address=address, abi=abi)


def _transact(chain: EscrowChain, fn: Any, sender: str, value: int = 0) -> Any:
    tx = fn.transact({"from": sender, "value": value, "gas": 5_000_000})
    return chain.w3.eth.wait_for_transaction_receipt(tx)


@pytest.fixture
def chain() -> EscrowChain:
    c = EscrowChain.in_process()
    c.deploy(c.accounts[0])
    return c


def test_partial_delivery_pays_share_rounded_down_and_credits_rest(chain: EscrowChain) -> None:
    _, buyer, seller = chain.accounts[:3]
    dl = chain.now() + HOUR
    chain.deposit(1, buyer=buyer, seller=seller, energy_wh=3, amount_wei=100, deadline=dl)
    chain.deposit(2, buyer=buyer, seller=seller, energy_wh=10, amount_wei=50, deadline=dl)
    chain.release(1, delivered_wh=2)  # 100 * 2 // 3 = 66, rest 34
    chain.release(2, delivered_wh=99)  # over-delivery is capped: all 50 paid
    assert chain.balances([seller, buyer]) == [66 + 50, 34]
    assert chain.locked(1) == chain.locked(2) == 0
    logs = chain.contract.events.Released.get_logs(from_block=0)
    assert [(e.args.trade_id, e.args.delivered_wh, e.args.paid, e.args.refunded) for e in logs] == [
        (1, 2, 66, 34),
        (2, 10, 50, 0),
    ]


def test_only_oracle_can_release(chain: EscrowChain) -> None:
    oracle, buyer, seller, *others = chain.accounts
    dl = chain.now() + HOUR
    chain.deposit(9, buyer=buyer, seller=seller, energy_wh=10, amount_wei=1000, deadline=dl)
    for intruder in [buyer, seller, *others]:
        with pytest.raises(ContractRevertError, match="only oracle"):
            chain.release(9, 10, sender=intruder)
        with pytest.raises(ContractRevertError, match="only oracle"):
            chain.settle_interval([9], [10], sender=intruder)
    assert chain.locked(9) == 1000
    chain.release(9, 10, sender=oracle)
    assert chain.balances([seller]) == [1000]


def test_settle_interval_is_one_transaction_and_all_or_nothing(chain: EscrowChain) -> None:
    _, b1, b2, s1, s2 = chain.accounts[:5]
    dl = chain.now() + HOUR
    chain.deposit_batch(
        [1, 2, 3], buyer=b1, sellers=[s1, s2, s1], energies_wh=[10, 10, 10],
        amounts_wei=[100, 200, 300], deadline=dl,
    )
    chain.deposit(4, buyer=b2, seller=s1, energy_wh=4, amount_wei=40, deadline=dl)
    with pytest.raises(ContractRevertError, match="trade not open"):
        chain.settle_interval([1, 2, 3, 4, 5], [10, 10, 10, 4, 1])  # trade 5 does not exist
    assert [chain.locked(t) for t in (1, 2, 3, 4)] == [100, 200, 300, 40]
    block = chain.w3.eth.block_number
    receipt = chain.settle_interval([1, 2, 3, 4], [10, 5, 0, 4])
    assert receipt.n_trades == 4
    assert receipt.block_number == block + 1
    assert len(chain.w3.eth.get_block(receipt.block_number)["transactions"]) == 1
    # s1: 100 + 0 + 40, s2: 100, b1: 0 + 100 + 300 (netted credits)
    assert chain.balances([s1, s2, b1, b2]) == [140, 100, 400, 0]
    assert chain.totals() == EscrowTotals(balance_wei=640, locked_wei=0, credits_wei=640)


def test_refund_only_after_deadline(chain: EscrowChain) -> None:
    _, buyer, seller, stranger = chain.accounts[:4]
    dl = chain.now() + HOUR
    chain.deposit(5, buyer=buyer, seller=seller, energy_wh=10, amount_wei=700, deadline=dl)
    with pytest.raises(ContractRevertError, match="deadline not passed"):
        chain.refund(5, sender=stranger)
    assert chain.advance_time(HOUR + 60) > dl
    with pytest.raises(ContractRevertError, match="deadline passed"):
        chain.release(5, 10)  # too late for the oracle
    chain.refund(5, sender=stranger)  # anyone may trigger it; the buyer is credited
    assert chain.balances([buyer, seller]) == [700, 0]
    with pytest.raises(ContractRevertError, match="trade not open"):
        chain.refund(5)
    logs = chain.contract.events.Refunded.get_logs(from_block=0)
    assert [(e.args.trade_id, e.args.buyer, e.args.amount) for e in logs] == [(5, buyer, 700)]


def test_withdraw_sends_owed_and_never_more(chain: EscrowChain) -> None:
    _, buyer, seller = chain.accounts[:3]
    chain.deposit(1, buyer=buyer, seller=seller, energy_wh=1, amount_wei=10**18,
                  deadline=chain.now() + HOUR)
    chain.release(1, 1)
    with pytest.raises(ContractRevertError, match="more than owed"):
        chain.withdraw(seller, 10**18 + 1)
    with pytest.raises(ContractRevertError, match="more than owed"):
        chain.withdraw(buyer, 1)
    before = chain.w3.eth.get_balance(seller)
    assert chain.withdraw(seller) == 10**18
    receipt = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block("latest")["transactions"][0]
    )
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(seller) - before == 10**18 - fee
    assert chain.totals() == EscrowTotals(0, 0, 0)


def test_reentrancy_attacker_cannot_drain_escrow(chain: EscrowChain) -> None:
    _, buyer, seller = chain.accounts[:3]
    attacker = _deploy(chain, ATTACKER, chain.address, 5)
    dl = chain.now() + HOUR
    chain.deposit(1, buyer=buyer, seller=attacker.address, energy_wh=1, amount_wei=1000,
                  deadline=dl)
    chain.deposit(2, buyer=buyer, seller=seller, energy_wh=1, amount_wei=50_000, deadline=dl)
    chain.settle_interval([1, 2], [1, 1])
    _transact(chain, attacker.functions.attack(400), buyer)  # paid 400, re-entry refused
    assert attacker.functions.attempts().call() == 1
    assert attacker.functions.reentered().call() == 0
    assert chain.w3.eth.get_balance(attacker.address) == 400
    assert chain.balances([attacker.address, seller]) == [600, 50_000]
    assert chain.totals() == EscrowTotals(50_600, 0, 50_600)
    _transact(chain, attacker.functions.attack(600), buyer)  # the rest, still no re-entry
    assert (attacker.functions.attempts().call(), attacker.functions.reentered().call()) == (2, 0)
    assert chain.w3.eth.get_balance(attacker.address) == 1000
    assert chain.totals() == EscrowTotals(50_000, 0, 50_000)


def test_same_attacker_drains_a_vulnerable_contract(chain: EscrowChain) -> None:
    """Control: the attack is real, it empties a bank that pays before it books."""
    victim = chain.accounts[1]
    bank = _deploy(chain, VULNERABLE_BANK)
    attacker = _deploy(chain, ATTACKER, bank.address, 5)
    _transact(chain, bank.functions.credit(victim), victim, value=50_000)
    _transact(chain, bank.functions.credit(attacker.address), victim, value=1000)
    _transact(chain, attacker.functions.attack(1000), victim)
    assert attacker.functions.reentered().call() == 5
    assert chain.w3.eth.get_balance(attacker.address) == 6000  # owed 1000


def test_bad_input_is_refused_before_any_transaction(chain: EscrowChain) -> None:
    _, buyer, seller = chain.accounts[:3]
    block = chain.w3.eth.block_number
    dl = chain.now() + HOUR
    cases: list[tuple[str, Any]] = [
        ("trade_id", lambda: chain.deposit(-1, buyer=buyer, seller=seller, energy_wh=1,
                                           amount_wei=1, deadline=dl)),
        ("seller", lambda: chain.deposit(1, buyer=buyer, seller="0x12", energy_wh=1,
                                         amount_wei=1, deadline=dl)),
        ("amount_wei", lambda: chain.deposit(1, buyer=buyer, seller=seller, energy_wh=1,
                                             amount_wei=0, deadline=dl)),
        ("energy_wh", lambda: chain.deposit(1, buyer=buyer, seller=seller, energy_wh=1.5,
                                            amount_wei=1, deadline=dl)),
        ("trade_ids", lambda: chain.settle_interval([1, 2, 1], [0, 0, 0])),
        ("trade_ids", lambda: chain.settle_interval([], [])),
        ("delivered_wh", lambda: chain.settle_interval([1, 2], [0])),
        ("delivered_wh", lambda: chain.settle_interval([1, 2], [0.5, 1.0])),
        ("amounts_wei", lambda: chain.deposit_batch([1], buyer=buyer, sellers=[seller],
                                                    energies_wh=[1], amounts_wei=[1, 2],
                                                    deadline=dl)),
        ("seconds", lambda: chain.advance_time(0)),
    ]
    for field, call in cases:
        with pytest.raises(InputError) as err:
            call()
        assert err.value.field == field
    with pytest.raises(InputError, match="row 2"):
        chain.settle_interval([1, 2, 1], [0, 0, 0])
    assert chain.w3.eth.block_number == block


def test_connect_refuses_bad_urls() -> None:
    with pytest.raises(InputError, match="http"):
        EscrowChain.connect("ftp://example.org")
    with pytest.raises(InputError, match="no Ethereum node"):
        EscrowChain.connect("http://127.0.0.1:9")


# ------------------------------------------------------------------------------------------
# Stateful: random call sequences against a Python model of the escrow.

_CHAIN: EscrowChain | None = None


def _shared_chain() -> EscrowChain:
    global _CHAIN
    if _CHAIN is None:
        _CHAIN = EscrowChain.in_process()
        _CHAIN.deploy(_CHAIN.accounts[0])
    return _CHAIN


class EscrowMachine(RuleBasedStateMachine):
    """Every step: the same outcome (success or revert) as the model, and money conserved."""

    @initialize()
    def start(self) -> None:
        self.chain = _shared_chain()
        assert self.chain.tester is not None
        self.snapshot = self.chain.tester.take_snapshot()
        self.people = self.chain.accounts[1:6]
        self.trades: dict[int, dict[str, Any]] = {}
        self.credits = dict.fromkeys(self.chain.accounts, 0)
        self.next_id = 1

    def teardown(self) -> None:
        if hasattr(self, "snapshot"):
            assert self.chain.tester is not None
            self.chain.tester.revert_to_snapshot(self.snapshot)

    def _expect(self, ok: bool, action: Any) -> None:
        if ok:
            action()
        else:
            with pytest.raises(ContractRevertError):
                action()

    def _pick_trade(self, data: st.DataObject) -> int:
        """Mostly an open trade; sometimes any id, used or not."""
        open_ids = [t for t in self.trades if self._open(t)]
        if open_ids and data.draw(st.booleans()):
            return data.draw(st.sampled_from(open_ids))
        return data.draw(st.integers(1, self.next_id))

    def _open(self, tid: int) -> bool:
        return tid in self.trades and self.trades[tid]["amount"] > 0

    def _settle(self, tid: int, delivered: int) -> None:
        t = self.trades[tid]
        paid = t["amount"] * min(delivered, t["energy"]) // t["energy"]
        self.credits[t["seller"]] += paid
        self.credits[t["buyer"]] += t["amount"] - paid
        t["amount"] = 0

    @rule(b=st.integers(0, 4), s=st.integers(0, 4), energy=st.integers(1, 5000),
          amount=st.integers(1, 10**15), hours=st.integers(1, 3))
    def deposit(self, b: int, s: int, energy: int, amount: int, hours: int) -> None:
        buyer, seller, tid = self.people[b], self.people[s], self.next_id
        deadline = self.chain.now() + hours * HOUR - HOUR // 2  # far from any step boundary
        self._expect(buyer != seller, lambda: self.chain.deposit(
            tid, buyer=buyer, seller=seller, energy_wh=energy, amount_wei=amount,
            deadline=deadline))
        if buyer != seller:
            self.trades[tid] = {"buyer": buyer, "seller": seller, "amount": amount,
                                "energy": energy, "deadline": deadline}
            self.next_id += 1

    @precondition(lambda self: self.next_id > 1)
    @rule(data=st.data(), delivered=st.integers(0, 6000), intruder=st.booleans(),
          who=st.integers(0, 4))
    def release(self, data: st.DataObject, delivered: int, intruder: bool, who: int) -> None:
        tid = self._pick_trade(data)
        sender = self.people[who] if intruder else self.chain.oracle
        ok = (sender == self.chain.oracle and self._open(tid)
              and self.chain.now() < self.trades[tid]["deadline"])
        self._expect(ok, lambda: self.chain.release(tid, delivered, sender=sender))
        if ok:
            self._settle(tid, delivered)

    @precondition(lambda self: self.next_id > 2)
    @rule(data=st.data())
    def settle_interval(self, data: st.DataObject) -> None:
        open_ids = [t for t in self.trades if self._open(t)]
        use_open = bool(open_ids) and data.draw(st.booleans())
        pool = st.sampled_from(open_ids) if use_open else st.integers(1, self.next_id)
        ids = data.draw(st.lists(pool, min_size=1, max_size=6, unique=True))
        delivered = data.draw(st.lists(st.integers(0, 6000), min_size=len(ids),
                                       max_size=len(ids)))
        now = self.chain.now()
        ok = all(self._open(t) and now < self.trades[t]["deadline"] for t in ids)
        self._expect(ok, lambda: self.chain.settle_interval(ids, delivered))
        if ok:
            for tid, d in zip(ids, delivered, strict=True):
                self._settle(tid, d)

    @precondition(lambda self: self.next_id > 1)
    @rule(data=st.data(), who=st.integers(0, 4))
    def refund(self, data: st.DataObject, who: int) -> None:
        tid = self._pick_trade(data)
        ok = self._open(tid) and self.chain.now() > self.trades[tid]["deadline"]
        self._expect(ok, lambda: self.chain.refund(tid, sender=self.people[who]))
        if ok:
            t = self.trades[tid]
            self.credits[t["buyer"]] += t["amount"]
            t["amount"] = 0

    @rule(data=st.data(), overdraw=st.booleans())
    def withdraw(self, data: st.DataObject, overdraw: bool) -> None:
        owed_some = [p for p in self.people if self.credits[p] > 0]
        account = data.draw(st.sampled_from(owed_some or self.people))
        owed = self.credits[account]
        if overdraw or owed == 0:
            amount = owed + data.draw(st.integers(1, 10**15))
        else:
            amount = data.draw(st.integers(1, owed))
        self._expect(amount <= owed, lambda: self.chain.withdraw(account, amount))
        if amount <= owed:
            self.credits[account] -= amount

    @rule()
    def an_hour_passes(self) -> None:
        self.chain.advance_time(HOUR)

    @invariant()
    def money_is_conserved(self) -> None:
        if not hasattr(self, "chain"):
            return
        locked = sum(t["amount"] for t in self.trades.values())
        credits = sum(self.credits.values())
        assert self.chain.totals() == EscrowTotals(locked + credits, locked, credits)
        assert self.chain.balances(self.people) == [self.credits[p] for p in self.people]


EscrowMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_escrow_state_machine = EscrowMachine.TestCase
