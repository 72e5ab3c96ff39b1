# pragma version 0.4.3
"""
@title Energy-trade escrow with metered release
@notice Buyers lock payment per trade id; the settlement oracle releases the
        delivered share to the seller and the undelivered rest back to the
        buyer; after the deadline an unreleased trade can be refunded to the
        buyer. Nothing is sent by settling: every payout is credited to the
        account and pulled with `withdraw` (pull payments), so a hostile
        receiver cannot block or re-enter settlement.
@dev    Invariant: self.balance == total_locked + total_credits.
"""

MAX_BATCH: constant(uint256) = 1024

event Deposited:
    trade_id: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    amount: uint256
    energy_wh: uint256
    deadline: uint256

event Released:
    trade_id: indexed(uint256)
    seller: indexed(address)
    delivered_wh: uint256
    paid: uint256
    refunded: uint256

event Refunded:
    trade_id: indexed(uint256)
    buyer: indexed(address)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256

struct Trade:
    buyer: address
    seller: address
    amount: uint256
    energy_wh: uint256
    deadline: uint256

oracle: public(immutable(address))
trades: public(HashMap[uint256, Trade])
credits: public(HashMap[address, uint256])
total_locked: public(uint256)
total_credits: public(uint256)


@deploy
def __init__(settlement_oracle: address):
    assert settlement_oracle != empty(address), "oracle is zero"
    oracle = settlement_oracle


@internal
def _open(trade_id: uint256, seller: address, energy_wh: uint256, amount: uint256,
          deadline: uint256):
    assert self.trades[trade_id].buyer == empty(address), "trade id used"
    assert seller != empty(address), "seller is zero"
    assert seller != msg.sender, "seller is buyer"
    assert amount > 0, "amount is zero"
    assert energy_wh > 0, "energy is zero"
    assert deadline > block.timestamp, "deadline passed"
    self.trades[trade_id] = Trade(
        buyer=msg.sender, seller=seller, amount=amount, energy_wh=energy_wh, deadline=deadline
    )
    log Deposited(
        trade_id=trade_id, buyer=msg.sender, seller=seller, amount=amount,
        energy_wh=energy_wh, deadline=deadline
    )


@external
@payable
@nonreentrant
def deposit(trade_id: uint256, seller: address, energy_wh: uint256, deadline: uint256):
    """
    @notice Lock msg.value as payment for `energy_wh` of energy from `seller`.
    """
    self._open(trade_id, seller, energy_wh, msg.value, deadline)
    self.total_locked += msg.value


@external
@payable
@nonreentrant
def deposit_batch(trade_ids: DynArray[uint256, MAX_BATCH], sellers: DynArray[address, MAX_BATCH],
                  energies_wh: DynArray[uint256, MAX_BATCH],
                  amounts: DynArray[uint256, MAX_BATCH], deadline: uint256):
    """
    @notice Lock several trades at once; msg.value must equal the sum of amounts.
    """
    n: uint256 = len(trade_ids)
    assert len(sellers) == n and len(energies_wh) == n and len(amounts) == n, "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(n, bound=MAX_BATCH):
        self._open(trade_ids[i], sellers[i], energies_wh[i], amounts[i], deadline)
        total += amounts[i]
    assert total == msg.value, "value != sum of amounts"
    self.total_locked += total


@internal
def _release(trade_id: uint256, delivered_wh: uint256) -> uint256:
    t: Trade = self.trades[trade_id]
    assert t.amount > 0, "trade not open"
    assert block.timestamp <= t.deadline, "deadline passed"
    delivered: uint256 = min(delivered_wh, t.energy_wh)
    paid: uint256 = t.amount * delivered // t.energy_wh
    rest: uint256 = t.amount - paid
    self.trades[trade_id].amount = 0
    if paid > 0:
        self.credits[t.seller] += paid
    if rest > 0:
        self.credits[t.buyer] += rest
    log Released(trade_id=trade_id, seller=t.seller, delivered_wh=delivered, paid=paid,
                 refunded=rest)
    return t.amount


@external
@nonreentrant
def release(trade_id: uint256, delivered_wh: uint256):
    """
    @notice Oracle only: pay the seller for the metered delivery (capped at the
            contracted energy, rounded down); credit the rest to the buyer.
    """
    assert msg.sender == oracle, "only oracle"
    amount: uint256 = self._release(trade_id, delivered_wh)
    self.total_locked -= amount
    self.total_credits += amount


@external
@nonreentrant
def release_batch(trade_ids: DynArray[uint256, MAX_BATCH],
                  delivered_wh: DynArray[uint256, MAX_BATCH]):
    """
    @notice Oracle only: settle one interval's trades in one transaction.
            Payouts to the same account are netted in its credit balance.
    """
    assert msg.sender == oracle, "only oracle"
    assert len(delivered_wh) == len(trade_ids), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(trade_ids), bound=MAX_BATCH):
        total += self._release(trade_ids[i], delivered_wh[i])
    self.total_locked -= total
    self.total_credits += total


@external
@nonreentrant
def refund(trade_id: uint256):
    """
    @notice After the deadline, credit an unreleased deposit back to its buyer.
    """
    t: Trade = self.trades[trade_id]
    assert t.amount > 0, "trade not open"
    assert block.timestamp > t.deadline, "deadline not passed"
    self.trades[trade_id].amount = 0
    self.credits[t.buyer] += t.amount
    self.total_locked -= t.amount
    self.total_credits += t.amount
    log Refunded(trade_id=trade_id, buyer=t.buyer, amount=t.amount)


@view
@external
def credits_of(accounts: DynArray[address, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @notice The withdrawable credit of each account.
    """
    out: DynArray[uint256, MAX_BATCH] = []
    for a: address in accounts:
        out.append(self.credits[a])
    return out


@external
@nonreentrant
def withdraw(amount: uint256):
    """
    @notice Send `amount` of the caller's credit to the caller.
    @dev    Effects before the interaction; the lock also refuses re-entry.
    """
    assert amount > 0, "amount is zero"
    owed: uint256 = self.credits[msg.sender]
    assert amount <= owed, "more than owed"
    self.credits[msg.sender] = owed - amount
    self.total_credits -= amount
    log Withdrawn(account=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)
