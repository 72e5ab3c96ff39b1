"""Smart-contract escrow on an EVM: buyers lock, the oracle releases, sellers pull.

The contract (``transactive/data/contracts/escrow.vy``, Vyper 0.4.3) holds each
trade's payment from the buyer's deposit until the settlement oracle reports the
metered delivery. The delivered share (``amount * delivered_wh // energy_wh``,
rounded down, delivery capped at the contracted energy) is credited to the
seller and the rest to the buyer; a trade not released by its deadline can be
refunded to its buyer by anyone. Payouts are never pushed: they accumulate as
credits and each account pulls them with ``withdraw`` (checks-effects-interactions
plus a re-entrancy lock). The contract keeps the invariant
``balance == total_locked + total_credits``.

:class:`EscrowChain` compiles the contract at run time with the pinned Vyper
(cached by source hash for the process) and drives it through web3: on an
in-process EVM (eth-tester with the py-evm backend) by default, or on any node by
URL. :meth:`EscrowChain.settle_interval` settles one market interval's trades in
ONE transaction; credits to the same account within it are netted in that
account's balance, so each participant withdraws once however many trades.

Amounts are integers in wei, the chain's minor unit. Transactions are sent
``from`` node-managed (unlocked) accounts; to sign locally against a remote node,
add web3's signing middleware to :attr:`EscrowChain.w3`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transactive.errors import InputError, MissingExtraError, TransactiveError

try:
    from eth_tester import EthereumTester, PyEVMBackend
    from eth_tester.exceptions import TransactionFailed
    from eth_typing import ChecksumAddress
    from web3 import EthereumTesterProvider, HTTPProvider, Web3
    from web3.exceptions import ContractLogicError
    from web3.types import TxParams, Wei
except ImportError:  # pragma: no cover - only without the 'chain' extra
    _HAVE_WEB3 = False
else:
    _HAVE_WEB3 = True

__all__ = [
    "ContractRevertError",
    "EscrowChain",
    "EscrowTotals",
    "IntervalSettlement",
    "compile_vyper",
    "escrow_source",
]

MAX_BATCH = 1024
"""Most trades in one batch call; the contract's ``MAX_BATCH``."""

_UINT256_MAX = 2**256 - 1
_GENESIS_GAS_LIMIT = 60_000_000


class ContractRevertError(TransactiveError):
    """The contract refused a call; ``reason`` is its revert message."""

    def __init__(self, function: str, reason: str) -> None:
        self.function = function
        self.reason = reason
        super().__init__(f"escrow.{function} reverted: {reason}")


@dataclass(frozen=True, slots=True)
class EscrowTotals:
    """The contract's money: ``balance_wei == locked_wei + credits_wei`` when sound."""

    balance_wei: int
    locked_wei: int
    credits_wei: int


@dataclass(frozen=True, slots=True)
class IntervalSettlement:
    """Receipt of one netted settlement transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    n_trades: int


def _require_extra() -> None:
    if not _HAVE_WEB3:  # pragma: no cover - only without the 'chain' extra
        raise MissingExtraError("web3 and eth-tester", "chain")


def escrow_source() -> str:
    """The escrow contract's Vyper source shipped with the package."""
    files = importlib.resources.files("transactive") / "data" / "contracts" / "escrow.vy"
    return files.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _compile_cached(source_sha256: str, source: str) -> tuple[list[dict[str, Any]], str]:
    del source_sha256  # the cache key; the source itself is compiled
    try:
        import vyper  # heavy, and only needed to build the contract
    except ImportError as exc:  # pragma: no cover - only without the 'chain' extra
        raise MissingExtraError("vyper", "chain") from exc
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def compile_vyper(source: str) -> tuple[list[dict[str, Any]], str]:
    """Compile Vyper source to ``(abi, bytecode)``, cached by its SHA-256.

    Examples
    --------
    >>> abi, bytecode = compile_vyper(escrow_source())
    >>> bytecode.startswith("0x") and any(f.get("name") == "release_batch" for f in abi)
    True
    """
    return _compile_cached(hashlib.sha256(source.encode()).hexdigest(), source)


def _uint(field: str, value: object, *, row: int | None = None, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(field, f"must be an integer, got {type(value).__name__}", row=row)
    v = int(value)
    if v < (1 if positive else 0) or v > _UINT256_MAX:
        bound = "positive" if positive else "non-negative"
        raise InputError(field, f"must be a {bound} uint256, got {v}", row=row)
    return v


def _uint_array(field: str, values: object, *, positive: bool = False) -> list[int]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(field, f"must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object:
        return [_uint(field, v, row=i, positive=positive) for i, v in enumerate(arr.tolist())]
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(field, f"must hold integers, got dtype {arr.dtype}")
    bad = np.flatnonzero(arr < (1 if positive else 0))
    if bad.size:
        bound = "positive" if positive else "non-negative"
        raise InputError(field, f"must be {bound}, got {arr[bad[0]]}", row=int(bad[0]))
    return [int(v) for v in arr.tolist()]


def _batch_ids(trade_ids: object) -> list[int]:
    ids = _uint_array("trade_ids", trade_ids)
    if not ids:
        raise InputError("trade_ids", "is empty")
    if len(ids) > MAX_BATCH:
        raise InputError("trade_ids", f"holds {len(ids)} trades, more than {MAX_BATCH}")
    seen: dict[int, int] = {}
    for row, tid in enumerate(ids):
        if tid in seen:
            raise InputError("trade_ids", f"duplicate trade id {tid} (row {seen[tid]})", row=row)
        seen[tid] = row
    return ids


class EscrowChain:
    """A web3 connection to an EVM, with the escrow contract once deployed.

    Parameters
    ----------
    w3
        A connected :class:`web3.Web3`.
    tester
        The in-process chain behind ``w3``, if any (enables time travel).

    Examples
    --------
    >>> chain = EscrowChain.in_process()
    >>> oracle, buyer, seller = chain.accounts[:3]
    >>> _ = chain.deploy(oracle)
    >>> deadline = chain.now() + 3600
    >>> chain.deposit(7, buyer=buyer, seller=seller, energy_wh=2000, amount_wei=1000,
    ...               deadline=deadline)
    >>> chain.release(7, delivered_wh=1500)  # 75 % delivered
    >>> chain.balances([seller, buyer])
    [750, 250]
    >>> chain.withdraw(seller)
    750
    >>> chain.totals()
    EscrowTotals(balance_wei=250, locked_wei=0, credits_wei=250)
    """

    def __init__(self, w3: Web3, tester: EthereumTester | None = None) -> None:
        _require_extra()
        self.w3 = w3
        self.tester = tester
        self._contract: Any = None
        self._oracle: str | None = None

    @classmethod
    def in_process(cls) -> EscrowChain:
        """A fresh in-process EVM (py-evm) with ten funded, unlocked accounts."""
        _require_extra()
        genesis = PyEVMBackend.generate_genesis_params(overrides={"gas_limit": _GENESIS_GAS_LIMIT})
        tester = EthereumTester(PyEVMBackend(genesis_parameters=genesis))
        return cls(Web3(EthereumTesterProvider(tester)), tester)

    @classmethod
    def connect(cls, url: str) -> EscrowChain:
        """Any Ethereum JSON-RPC node over HTTP(S), e.g. a local dev node."""
        _require_extra()
        if not url.startswith(("http://", "https://")):
            raise InputError("url", f"must be an http(s) JSON-RPC URL, got {url!r}")
        w3 = Web3(HTTPProvider(url))
        if not w3.is_connected():
            raise InputError("url", f"no Ethereum node answers at {url}")
        return cls(w3)

    # -- setup -------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        """The node's unlocked accounts."""
        return list(self.w3.eth.accounts)

    @property
    def contract(self) -> Any:
        """The deployed escrow as a web3 contract (functions, events)."""
        if self._contract is None:
            raise InputError("escrow", "no contract: call deploy() or at() first")
        return self._contract

    @property
    def address(self) -> str:
        """The deployed escrow's address."""
        return str(self.contract.address)

    @property
    def oracle(self) -> str:
        """The settlement oracle: the only account that may release."""
        if self._oracle is None:
            raise InputError("escrow", "no contract: call deploy() or at() first")
        return self._oracle

    def deploy(self, oracle: str, *, sender: str | None = None) -> str:
        """Compile and deploy a new escrow whose settlement role is ``oracle``."""
        oracle = self._address("oracle", oracle)
        sender = self._address("sender", sender or oracle)
        abi, bytecode = compile_vyper(escrow_source())
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self._send("deploy", factory.constructor(oracle), sender)
        self._contract = self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)
        self._oracle = oracle
        return str(receipt["contractAddress"])

    def at(self, address: str) -> None:
        """Bind to an escrow already deployed at ``address``."""
        abi, _ = compile_vyper(escrow_source())
        contract = self.w3.eth.contract(address=self._address("address", address), abi=abi)
        self._oracle = str(contract.functions.oracle().call())
        self._contract = contract

    # -- clock -------------------------------------------------------------------------

    def now(self) -> int:
        """Timestamp (s) of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> int:
        """In-process chains only: jump the clock ahead and mine a block; the new time."""
        seconds = _uint("seconds", seconds, positive=True)
        if self.tester is None:
            raise InputError("seconds", "time travel needs the in-process chain")
        self.tester.time_travel(self.now() + seconds)
        return self.now()

    # -- trades ------------------------------------------------------------------------

    def deposit(
        self, trade_id: int, *, buyer: str, seller: str, energy_wh: int, amount_wei: int,
        deadline: int,
    ) -> None:
        """``buyer`` locks ``amount_wei`` for ``energy_wh`` from ``seller`` until ``deadline``."""
        args = (
            _uint("trade_id", trade_id),
            self._address("seller", seller),
            _uint("energy_wh", energy_wh, positive=True),
            _uint("deadline", deadline),
        )
        amount = _uint("amount_wei", amount_wei, positive=True)
        call = self.contract.functions.deposit(*args)
        self._send("deposit", call, self._address("buyer", buyer), value=amount)

    def deposit_batch(
        self, trade_ids: object, *, buyer: str, sellers: Sequence[str], energies_wh: object,
        amounts_wei: object, deadline: int,
    ) -> None:
        """``buyer`` locks several trades in one transaction (one deadline)."""
        ids = _batch_ids(trade_ids)
        sellers_ = [self._address("sellers", s, row=i) for i, s in enumerate(sellers)]
        energies = _uint_array("energies_wh", energies_wh, positive=True)
        amounts = _uint_array("amounts_wei", amounts_wei, positive=True)
        lengths = {"sellers": len(sellers_), "energies_wh": len(energies),
                   "amounts_wei": len(amounts)}
        for name, n in lengths.items():
            if n != len(ids):
                raise InputError(name, f"has {n} rows, trade_ids has {len(ids)}")
        call = self.contract.functions.deposit_batch(
            ids, sellers_, energies, amounts, _uint("deadline", deadline)
        )
        self._send("deposit_batch", call, self._address("buyer", buyer), value=sum(amounts))

    def release(self, trade_id: int, delivered_wh: int, *, sender: str | None = None) -> None:
        """Settle one trade against its metered delivery (oracle only)."""
        call = self.contract.functions.release(
            _uint("trade_id", trade_id), _uint("delivered_wh", delivered_wh)
        )
        self._send("release", call, self._address("sender", sender or self.oracle))

    def settle_interval(
        self, trade_ids: object, delivered_wh: object, *, sender: str | None = None
    ) -> IntervalSettlement:
        """Settle one interval's trades in ONE transaction (oracle only).

        All trades settle or none does: one closed, unknown or expired trade
        reverts the whole batch.
        """
        ids = _batch_ids(trade_ids)
        delivered = _uint_array("delivered_wh", delivered_wh)
        if len(delivered) != len(ids):
            raise InputError("delivered_wh", f"has {len(delivered)} rows, trade_ids has {len(ids)}")
        call = self.contract.functions.release_batch(ids, delivered)
        receipt = self._send(
            "release_batch", call, self._address("sender", sender or self.oracle)
        )
        return IntervalSettlement(
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            n_trades=len(ids),
        )

    def refund(self, trade_id: int, *, sender: str | None = None) -> None:
        """After its deadline, credit an unreleased trade back to its buyer (anyone may call)."""
        call = self.contract.functions.refund(_uint("trade_id", trade_id))
        self._send("refund", call, self._address("sender", sender or self.accounts[0]))

    def withdraw(self, account: str, amount_wei: int | None = None) -> int:
        """Pull ``amount_wei`` (default: all) of ``account``'s credit; the amount sent."""
        account = self._address("account", account)
        owed = int(self.contract.functions.credits(account).call())
        amount = owed if amount_wei is None else _uint("amount_wei", amount_wei, positive=True)
        self._send("withdraw", self.contract.functions.withdraw(amount), account)
        return amount

    # -- views -------------------------------------------------------------------------

    def balances(self, accounts: Sequence[str]) -> list[int]:
        """Each account's withdrawable credit (wei)."""
        checked = [self._address("accounts", a, row=i) for i, a in enumerate(accounts)]
        if len(checked) > MAX_BATCH:
            raise InputError("accounts", f"holds {len(checked)} accounts, more than {MAX_BATCH}")
        return [int(v) for v in self.contract.functions.credits_of(checked).call()]

    def locked(self, trade_id: int) -> int:
        """The amount still locked for a trade (0 once released or refunded)."""
        return int(self.contract.functions.trades(_uint("trade_id", trade_id)).call()[2])

    def totals(self) -> EscrowTotals:
        """The contract's ether balance and its own locked / credited totals."""
        c = self.contract
        return EscrowTotals(
            balance_wei=int(self.w3.eth.get_balance(c.address)),
            locked_wei=int(c.functions.total_locked().call()),
            credits_wei=int(c.functions.total_credits().call()),
        )

    # -- plumbing ----------------------------------------------------------------------

    def _address(self, field: str, value: object, *, row: int | None = None) -> ChecksumAddress:
        if not isinstance(value, str) or not Web3.is_address(value):
            raise InputError(field, f"is not an Ethereum address: {value!r}", row=row)
        return Web3.to_checksum_address(value)

    def _send(self, function: str, call: Any, sender: str, *, value: int = 0) -> Any:
        tx: dict[str, Any] = {"from": sender, "value": value}
        if self.tester is not None:
            # py-evm estimates gas by binary search (dozens of runs): offer the block's
            # limit instead; unused gas is not charged and a revert is replayed below.
            tx["gas"] = int(self.w3.eth.get_block("latest")["gasLimit"])
        try:
            tx_hash = call.transact(tx)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
            if receipt["status"] != 1:  # mined but reverted: replay it to read the reason
                sent = self.w3.eth.get_transaction(tx_hash)
                replay: TxParams = {
                    "from": sender, "to": sent["to"], "data": sent["input"], "value": Wei(value)
                }
                self.w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
                raise ContractRevertError(function, "reverted without a reason")
        except (ContractLogicError, TransactionFailed) as exc:
            reason = str(getattr(exc, "message", None) or exc).removeprefix("execution reverted: ")
            raise ContractRevertError(function, reason) from None
        return receipt
