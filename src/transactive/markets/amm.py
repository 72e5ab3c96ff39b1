"""Automated market makers: a pool of energy credits (kWh) against money.

A :class:`Pool` holds ``energy_kwh`` and ``money`` and quotes a price from an
invariant that every swap must keep (or grow):

- ``"constant_product"`` -- ``x * y = k`` (Uniswap v2): liquidity at every price;
- ``"constant_sum"`` -- ``x * peg + y = D``: one fixed price ``peg`` until a reserve
  runs out;
- ``"stableswap"`` -- Egorov's (2019) StableSwap curve with amplification ``A``:
  ``4A(u + v) + D = 4AD + D^3 / (4uv)`` with ``u = x * peg`` and ``v = y``: flat
  (constant sum) near the peg, constant product far from it. ``D`` is found by
  Newton's method; the reserve that balances a trade solves a quadratic.

For the two pegged curves the energy reserve is scaled to money by
``peg_price_per_kwh`` (default: the opening price), so the curve is balanced
at the peg; the constant product curve does not depend on it.

Rules every state transition keeps
----------------------------------
- Pools are immutable: :meth:`Pool.swap`, :meth:`Pool.buy`,
  :meth:`Pool.deposit` and :meth:`Pool.withdraw` return a new pool and a
  receipt; a refused operation raises :class:`~transactive.errors.InputError`
  and changes nothing.
- The fee is charged on the input asset and stays in the pool, so the
  invariant only grows; liquidity providers own the reserves pro rata to
  their shares, and with them the fees.
- Rounding always favours the pool: the reserve that balances the curve is
  rounded up by ``16 * eps`` times the pool's size (``x * peg + y``), every amount paid out is
  rounded down and every amount taken in is rounded up, so in exact
  arithmetic no swap creates energy or money and the product ``x * y`` of a
  constant product pool never falls. No reserve can be drained: a swap that
  would empty one is refused.
- :meth:`Pool.quote` and :meth:`Pool.quote_buy` run the same code as the swap
  and return the very receipt the swap would.

As a market design (``"amm"``)
------------------------------
:func:`clear_amm` executes each order of a batch against the pool in time
order. A buy order buys energy up to its quantity while the *marginal* cost of
the next kWh (the pool's price divided by ``1 - fee``) is at most its limit
price; a sell order sells up to its quantity while the marginal receipt (the
price times ``1 - fee``) is at least its limit. A marginal rule bounds the
average: no order pays more (or receives less) per kWh on average than its
limit. The pool, not another participant, is the counterparty, so energy
bought need not equal energy sold: ``Clearing.volume`` is the energy buyers
bought from the pool, and ``info`` gives ``energy_sold_kwh``,
``pool_net_kwh`` (energy the pool took in, sold minus bought) and
``pool_money_change`` (money the pool took in, equal to
``operator_surplus``). A constant sum pool keeps a sliver (``1e-9``) of each
reserve, so limit orders against it fill partly rather than emptying it.

:func:`arbitrage_to_band` trades a pool back between the utility's feed-in
(``low``) and retail (``high``) prices, as an arbitrageur with the utility on
the other side would: it anchors the pool in a simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Literal, Protocol

import numpy as np

from transactive.clearing import Clearing
from transactive.errors import InputError, SolverError
from transactive.markets.registry import register
from transactive.orders import BUY, SELL, OrderBatch

__all__ = ["Invariant", "Pool", "Position", "Receipt", "arbitrage_to_band", "clear_amm"]

Invariant = Literal["constant_product", "constant_sum", "stableswap"]
Asset = Literal["energy", "money"]
_INVARIANTS: tuple[Invariant, ...] = ("constant_product", "constant_sum", "stableswap")
_MARGIN = 16 * float(np.finfo(np.float64).eps)
_KEEP = 1e-9  # share of a reserve a constant sum pool never pays out to a limit order
_INF = math.inf


# ------------------------------------------------------------- rounding helpers
def _up(a: float, scale: float) -> float:
    """``a`` enlarged by the safety margin relative to ``scale``, the size of the
    reserves it was computed from (for a quantity the pool must hold)."""
    return a + _MARGIN * scale


def _round(value: Fraction, *, up: bool) -> float:
    """The float nearest ``value`` on the requested side."""
    f = float(value)
    if up and Fraction(f) < value:
        return math.nextafter(f, _INF)
    if not up and Fraction(f) > value:
        return math.nextafter(f, -_INF)
    return f


def _nudge(value: float, error: float, up: bool) -> float:
    """``value`` moved one float outward when the exact result ``value + error``
    lies beyond it on the requested side."""
    if up and error > 0:
        return math.nextafter(value, _INF)
    if not up and error < 0:
        return math.nextafter(value, -_INF)
    return value


def _add(a: float, b: float, *, up: bool) -> float:
    """``a + b`` rounded up or down (TwoSum gives the exact rounding error)."""
    s = a + b
    bb = s - a
    return _nudge(s, (a - (s - bb)) + (b - bb), up)


def _sub(a: float, b: float, *, up: bool) -> float:
    return _add(a, -b, up=up)


def _two_product(a: float, b: float) -> tuple[float, float]:
    """``a * b`` and its exact rounding error (Dekker's product, no overflow)."""
    p = a * b
    ca, cb = 134217729.0 * a, 134217729.0 * b  # 2^27 + 1: Veltkamp's split
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _mul(a: float, b: float, *, up: bool) -> float:
    p, error = _two_product(a, b)
    return _nudge(p, error, up)


def _div(a: float, b: float, *, up: bool) -> float:
    """``a / b`` (``b > 0``) rounded up or down: the sign of the exact remainder
    ``a - q * b`` tells on which side of ``q`` the quotient lies."""
    q = a / b
    p, error = _two_product(q, b)
    return _nudge(q, (a - p) - error, up)


def _amount(name: str, value: float, *, allow_inf: bool = False) -> float:
    """Validate a non-negative amount (``inf`` only where allowed)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"must be a number, got {value!r}") from None
    if math.isnan(x) or x < 0 or (math.isinf(x) and not allow_inf):
        raise InputError(name, f"must be a finite number >= 0, got {value!r}")
    return x


# ------------------------------------------------------------- invariant curves
class _Curve(Protocol):
    """An invariant on scaled reserves ``u`` (energy in money) and ``v`` (money),
    symmetric in its two arguments."""

    def level(self, u: float, v: float) -> float: ...

    def other(self, u: float, v: float, u_new: float) -> float:
        """The ``v`` that keeps the level of ``(u, v)`` when ``u`` becomes ``u_new``."""
        ...

    def price(self, u: float, v: float) -> float:
        """``-dv/du`` along the curve: money per scaled unit of energy."""
        ...

    def u_at_price(self, u: float, v: float, price: float) -> float:
        """The ``u`` on the curve through ``(u, v)`` where :meth:`price` is ``price``."""
        ...


class _ConstantProduct:
    def level(self, u: float, v: float) -> float:
        return 2.0 * math.sqrt(u * v)

    def other(self, u: float, v: float, u_new: float) -> float:
        return u * v / u_new

    def price(self, u: float, v: float) -> float:
        return v / u

    def u_at_price(self, u: float, v: float, price: float) -> float:
        return math.sqrt(u * v / price)


class _ConstantSum:
    def level(self, u: float, v: float) -> float:
        return u + v

    def other(self, u: float, v: float, u_new: float) -> float:
        return u + v - u_new

    def price(self, u: float, v: float) -> float:
        return 1.0

    def u_at_price(self, u: float, v: float, price: float) -> float:  # pragma: no cover
        raise AssertionError("a constant sum curve has one price")


@dataclass(frozen=True)
class _StableSwap:
    amplification: float

    def level(self, u: float, v: float) -> float:
        """``D`` by Newton's method on ``f(D) = 4A(u+v) + D - 4AD - D^3/(4uv)``,
        from ``D = u + v`` (which lies above the root, where the iteration is
        monotone)."""
        ann, s = 4.0 * self.amplification, u + v
        d = s
        for _ in range(256):
            d_p = d**3 / (4.0 * u * v)
            d_next = (ann * s + 2.0 * d_p) * d / ((ann - 1.0) * d + 3.0 * d_p)
            if abs(d_next - d) <= 4.0 * np.finfo(np.float64).eps * d:
                return d_next
            d = d_next
        raise SolverError("StableSwap invariant: Newton's method did not converge")

    def other(self, u: float, v: float, u_new: float) -> float:
        return self._other_on(self.level(u, v), u_new)

    def _other_on(self, d: float, u_new: float) -> float:
        # With D fixed the invariant is a quadratic in v: v^2 + b v - c = 0.
        ann = 4.0 * self.amplification
        b = u_new + d / ann - d
        c = d**3 / (4.0 * ann * u_new)
        root = math.sqrt(b * b + 4.0 * c)
        return 2.0 * c / (b + root) if b > 0 else 0.5 * (root - b)

    def _price_on(self, u: float, v: float, d: float) -> float:
        ann, d3 = 4.0 * self.amplification, d**3
        return (ann + d3 / (4.0 * u * u * v)) / (ann + d3 / (4.0 * u * v * v))

    def price(self, u: float, v: float) -> float:
        return self._price_on(u, v, self.level(u, v))

    def u_at_price(self, u: float, v: float, price: float) -> float:
        d = self.level(u, v)

        def gap(log_u: float) -> float:
            un = math.exp(log_u)
            return math.log(self._price_on(un, self._other_on(d, un), d)) - math.log(price)

        lo, hi = math.log(d) - 60.0, math.log(d) + 60.0
        if gap(lo) <= 0:
            return math.exp(lo)
        if gap(hi) >= 0:
            return math.exp(hi)
        from scipy.optimize import brentq  # heavy: loaded by the pools that solve for it

        return math.exp(brentq(gap, lo, hi, xtol=1e-15, rtol=4 * np.finfo(np.float64).eps))


# ------------------------------------------------------------- records
@dataclass(frozen=True)
class Receipt:
    """One swap, seen by the trader.

    ``side`` is ``BUY`` (+1) when the trader got energy and ``SELL`` (-1) when
    it gave energy; ``energy_kwh`` and ``money`` are the amounts that changed
    hands (money paid on a buy, received on a sell), fee included; ``fee`` is
    in ``fee_asset`` (the asset the trader gave). Prices are per kWh:
    ``price_before``/``price_after`` are the pool's marginal price without fee,
    ``average_price_per_kwh = money / energy_kwh`` and ``price_impact`` is the
    relative move of the marginal price, ``price_after / price_before - 1``.
    """

    side: int
    energy_kwh: float
    money: float
    fee: float
    fee_asset: Asset
    price_before: float
    price_after: float

    @property
    def average_price_per_kwh(self) -> float:
        return self.money / self.energy_kwh if self.energy_kwh > 0 else float("nan")

    @property
    def price_impact(self) -> float:
        return self.price_after / self.price_before - 1.0


@dataclass(frozen=True)
class Position:
    """A liquidity provider's stake: ``shares`` of a pool, bought with
    ``energy_kwh`` and ``money`` (the basis that impermanent loss compares to)."""

    shares: float
    energy_kwh: float
    money: float


# ------------------------------------------------------------- the pool
@dataclass(frozen=True)
class Pool:
    """A two-asset pool of energy credits against money (immutable).

    Build one with :meth:`create`. Fields: reserves ``energy_kwh`` and
    ``money``, ``invariant``, ``fee`` (fraction of the input, ``0 <= fee < 1``),
    ``amplification`` (StableSwap ``A``), ``peg_price_per_kwh`` (the price at
    which the pegged curves are balanced) and ``shares`` (total LP shares).

    Examples
    --------
    >>> pool = Pool.create(100.0, 25.0, fee=0.003)      # 100 kWh at 0.25 per kWh
    >>> pool.price_per_kwh
    0.25
    >>> q = pool.quote_buy(10.0)                        # price of 10 kWh, before trading
    >>> new_pool, receipt = pool.buy(10.0)
    >>> receipt == q, round(receipt.money, 6), round(receipt.price_impact, 4)  # (2500/90-25)/0.997
    (True, 2.786136, 0.2349)
    >>> new_pool.energy_kwh * new_pool.money >= pool.energy_kwh * pool.money
    True
    """

    energy_kwh: float
    money: float
    invariant: Invariant = "constant_product"
    fee: float = 0.003
    amplification: float = 100.0
    peg_price_per_kwh: float = 1.0
    shares: float = 0.0
    _curve: _Curve = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.invariant not in _INVARIANTS:
            raise InputError("invariant", f"must be one of {', '.join(_INVARIANTS)}, "
                             f"got {self.invariant!r}")
        x = _amount("energy_kwh", self.energy_kwh)
        y = _amount("money", self.money)
        s = _amount("shares", self.shares)
        if (x > 0) != (y > 0) or (x > 0) != (s > 0):
            raise InputError("pool", "reserves and shares must be all positive or all zero "
                             "(an empty pool)")
        fee = _amount("fee", self.fee)
        if fee >= 1:
            raise InputError("fee", f"must be below 1, got {self.fee!r}")
        if not (_amount("amplification", self.amplification) > 0):
            raise InputError("amplification", "must be > 0")
        if not (_amount("peg_price_per_kwh", self.peg_price_per_kwh) > 0):
            raise InputError("peg_price_per_kwh", "must be > 0")
        curve: _Curve
        if self.invariant == "constant_product":
            curve = _ConstantProduct()
        elif self.invariant == "constant_sum":
            curve = _ConstantSum()
        else:
            curve = _StableSwap(float(self.amplification))
        for name, value in (("energy_kwh", x), ("money", y), ("fee", fee), ("shares", s)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_curve", curve)

    @classmethod
    def create(
        cls, energy_kwh: float, money: float, *, invariant: Invariant = "constant_product",
        fee: float = 0.003, amplification: float = 100.0,
        peg_price_per_kwh: float | None = None,
    ) -> Pool:
        """Open a pool with these reserves; its first provider owns all its
        shares (``Position(pool.shares, energy_kwh, money)``): as many as the
        deposit is worth in money at the opening price. ``peg_price_per_kwh``
        defaults to the opening price ``money / energy_kwh``."""
        x, y = _amount("energy_kwh", energy_kwh), _amount("money", money)
        if x <= 0 or y <= 0:
            raise InputError("energy_kwh" if x <= 0 else "money",
                             "a pool opens with both reserves > 0")
        peg = y / x if peg_price_per_kwh is None else peg_price_per_kwh
        empty = cls(0.0, 0.0, invariant, fee, amplification, peg, 0.0)
        return empty._opened(x, y)

    def _evolve(self, **changes: float) -> Pool:
        """A copy with new reserves or shares, without re-validation: every
        internal transition checks its amounts before it calls this."""
        new = object.__new__(Pool)
        state = {k: v for k, v in self.__dict__.items() if k not in ("price_per_kwh", "level")}
        state.update(changes)
        new.__dict__.update(state)
        return new

    def _opened(self, x: float, y: float) -> Pool:
        peg = self.peg_price_per_kwh
        price = peg * self._curve.price(x * peg, y)
        return replace(self, energy_kwh=x, money=y, shares=y + x * price)

    # ----------------------------------------------------------------- prices
    @property
    def is_empty(self) -> bool:
        return self.shares == 0

    def _require_liquid(self) -> None:
        if self.is_empty:
            raise InputError("pool", "is empty: deposit liquidity first")

    @cached_property
    def price_per_kwh(self) -> float:
        """The marginal price of energy without fee (money per kWh)."""
        self._require_liquid()
        peg = self.peg_price_per_kwh
        return peg * self._curve.price(self.energy_kwh * peg, self.money)

    @cached_property
    def level(self) -> float:
        """The invariant's level ``D`` in money (it never falls on a swap)."""
        self._require_liquid()
        return self._curve.level(self.energy_kwh * self.peg_price_per_kwh, self.money)

    def value(self, price_per_kwh: float | None = None) -> float:
        """The reserves valued at ``price_per_kwh`` (default: the pool's price)."""
        p = self.price_per_kwh if price_per_kwh is None else price_per_kwh
        return self.energy_kwh * p + self.money

    # ----------------------------------------------------------------- swaps
    def _receipt(self, new: Pool, side: int, energy: float, money: float, fee: float,
                 fee_asset: Asset) -> tuple[Pool, Receipt]:
        return new, Receipt(side, energy, money, fee, fee_asset, self.price_per_kwh,
                            new.price_per_kwh)

    def _sell_energy(self, energy_in: float, min_out: float) -> tuple[Pool, Receipt]:
        x, y, peg = self.energy_kwh, self.money, self.peg_price_per_kwh
        fee = _mul(energy_in, self.fee, up=True)
        x_curve = _add(x, _sub(energy_in, fee, up=False), up=False)
        y_new = _up(self._curve.other(x * peg, y, x_curve * peg), x * peg + y)
        if not y_new > 0:
            raise InputError("amount", "would drain the pool's money reserve")
        out = max(_sub(y, y_new, up=False), 0.0)
        if out < min_out:
            raise InputError("min_out", f"slippage limit: {out!r} money out, below "
                             f"min_out={min_out!r}")
        new = self._evolve(energy_kwh=_add(x, energy_in, up=False),
                           money=y_new if out > 0 else y)
        return self._receipt(new, SELL, energy_in, out, fee, "energy")

    def _spend_money(self, money_in: float, min_out: float) -> tuple[Pool, Receipt]:
        x, y, peg = self.energy_kwh, self.money, self.peg_price_per_kwh
        fee = _mul(money_in, self.fee, up=True)
        y_curve = _add(y, _sub(money_in, fee, up=False), up=False)
        scale = x * peg + y
        x_new = _up(_up(self._curve.other(y, x * peg, y_curve), scale) / peg, scale / peg)
        if not x_new > 0:
            raise InputError("amount", "would drain the pool's energy reserve")
        out = max(_sub(x, x_new, up=False), 0.0)
        if out < min_out:
            raise InputError("min_out", f"slippage limit: {out!r} kWh out, below "
                             f"min_out={min_out!r}")
        new = self._evolve(energy_kwh=x_new if out > 0 else x,
                           money=_add(y, money_in, up=False))
        return self._receipt(new, BUY, out, money_in, fee, "money")

    def _buy_energy(self, energy_out: float, max_money: float) -> tuple[Pool, Receipt]:
        x, y, peg = self.energy_kwh, self.money, self.peg_price_per_kwh
        if energy_out >= x:
            raise InputError("energy_kwh", f"would drain the pool's energy reserve "
                             f"({x!r} kWh); ask for less")
        x_new = _sub(x, energy_out, up=False)
        y_curve = _up(self._curve.other(x * peg, y, x_new * peg), x * peg + y)
        net = max(_sub(y_curve, y, up=True), 0.0)
        money_in = _div(net, _sub(1.0, self.fee, up=False), up=True)
        if money_in > max_money:
            raise InputError("max_money", f"slippage limit: costs {money_in!r}, above "
                             f"max_money={max_money!r}")
        new = self._evolve(energy_kwh=x_new, money=_add(y, money_in, up=False))
        return self._receipt(new, BUY, energy_out, money_in, money_in - net, "money")

    def quote(self, give: Asset, amount: float, *, min_out: float = 0.0) -> Receipt:
        """The receipt :meth:`swap` would return, without trading."""
        return self.swap(give, amount, min_out=min_out)[1]

    def swap(self, give: Asset, amount: float, *, min_out: float = 0.0
             ) -> tuple[Pool, Receipt]:
        """Swap an exact ``amount`` of ``give`` (``"energy"`` in kWh or
        ``"money"``) for the other asset; refuse if less than ``min_out`` would
        come out. Returns the new pool and the receipt."""
        self._require_liquid()
        amount = _amount("amount", amount)
        min_out = _amount("min_out", min_out)
        if give == "energy":
            return self._sell_energy(amount, min_out)
        if give == "money":
            return self._spend_money(amount, min_out)
        raise InputError("give", f"must be 'energy' or 'money', got {give!r}")

    def quote_buy(self, energy_kwh: float, *, max_money: float = _INF) -> Receipt:
        """The receipt :meth:`buy` would return, without trading."""
        return self.buy(energy_kwh, max_money=max_money)[1]

    def buy(self, energy_kwh: float, *, max_money: float = _INF) -> tuple[Pool, Receipt]:
        """Buy exactly ``energy_kwh``; refuse if it would cost more than
        ``max_money``. Returns the new pool and the receipt."""
        self._require_liquid()
        energy = _amount("energy_kwh", energy_kwh)
        return self._buy_energy(energy, _amount("max_money", max_money, allow_inf=True))

    # ----------------------------------------------------------------- limit orders
    def _limit_amount(self, side: int, limit: float, quantity: float) -> float:
        """Energy a limit order trades under the marginal rule (module docstring)."""
        x, y, peg, keep = self.energy_kwh, self.money, self.peg_price_per_kwh, 1.0 - self.fee
        flat = self.invariant == "constant_sum"
        if side == BUY:
            target = limit * keep  # the pool price at which the marginal cost is the limit
            if self.price_per_kwh >= target:
                return 0.0
            room = x * (1.0 - _KEEP) if flat else x - self._curve.u_at_price(
                x * peg, y, target / peg) / peg
        else:
            if limit <= 0:
                return quantity if not flat else min(quantity, y * (1.0 - _KEEP) / (peg * keep))
            target = limit / keep
            if self.price_per_kwh <= target:
                return 0.0
            room = y * (1.0 - _KEEP) / (peg * keep) if flat else (
                self._curve.u_at_price(x * peg, y, target / peg) / peg - x) / keep
        return max(min(quantity, room), 0.0)

    def limit_order(self, side: int, price_per_kwh: float, energy_kwh: float
                    ) -> tuple[Pool, Receipt | None]:
        """Trade a limit order against the pool by the marginal rule: buy
        (``side=+1``) while the marginal cost per kWh is at most the limit, or
        sell (``-1``) while the marginal receipt is at least it, up to
        ``energy_kwh`` (``inf`` for no cap). Returns the new pool and the
        receipt, or the same pool and ``None`` when nothing trades. A fill whose
        average price would pass the limit (a dust amount, where the rounding
        in the pool's favour dominates) does not trade."""
        self._require_liquid()
        if side not in (BUY, SELL):
            raise InputError("side", f"must be +1 (buy) or -1 (sell), got {side!r}")
        if not math.isfinite(price_per_kwh):
            raise InputError("price_per_kwh", f"must be finite, got {price_per_kwh!r}")
        quantity = _amount("energy_kwh", energy_kwh, allow_inf=True)
        amount = self._limit_amount(side, float(price_per_kwh), quantity)
        if math.isinf(amount):
            raise InputError("energy_kwh", "an order without a quantity cap needs a limit "
                             "price the pool's price can reach (> 0)")
        if not amount > 0:
            return self, None
        limit = float(price_per_kwh)
        if side == BUY:
            new, receipt = self._buy_energy(amount, _INF)
            worse = receipt.average_price_per_kwh > limit
        else:
            new, receipt = self._sell_energy(amount, 0.0)
            worse = receipt.average_price_per_kwh < limit
        if worse:  # a dust fill whose rounding (in the pool's favour) passes the limit
            return self, None
        return new, receipt

    # ----------------------------------------------------------------- liquidity
    def deposit(self, energy_kwh: float, money: float, *, min_shares: float = 0.0
                ) -> tuple[Pool, Position]:
        """Add liquidity for new shares. Into a pool with reserves the deposit
        is taken in the pool's proportion (the limiting asset in full, the
        other pro rata: see the returned :class:`Position` for what was taken);
        into an empty pool both amounts are taken and set the price."""
        e = _amount("energy_kwh", energy_kwh)
        m = _amount("money", money)
        min_shares = _amount("min_shares", min_shares)
        if e <= 0 or m <= 0:
            raise InputError("energy_kwh" if e <= 0 else "money", "a deposit needs both "
                             "assets > 0")
        if self.is_empty:
            new = self._opened(e, m)
            minted, used_e, used_m = new.shares, e, m
        else:
            x, y, s = Fraction(self.energy_kwh), Fraction(self.money), Fraction(self.shares)
            minted = _round(s * min(Fraction(e) / x, Fraction(m) / y), up=False)
            used_e = min(e, _round(x * Fraction(minted) / s, up=True))
            used_m = min(m, _round(y * Fraction(minted) / s, up=True))
            new = replace(self, energy_kwh=_add(self.energy_kwh, used_e, up=False),
                          money=_add(self.money, used_m, up=False),
                          shares=_add(self.shares, minted, up=True))
        if minted < min_shares or minted <= 0:
            raise InputError("min_shares", f"deposit would mint {minted!r} shares "
                             f"(min_shares={min_shares!r})")
        return new, Position(minted, used_e, used_m)

    def withdraw(self, shares: float, *, min_energy_kwh: float = 0.0, min_money: float = 0.0
                 ) -> tuple[Pool, Position]:
        """Redeem ``shares`` for their part of both reserves (fees included).
        Returns the new pool and a :class:`Position` holding the redeemed
        shares and the amounts paid out."""
        self._require_liquid()
        s = _amount("shares", shares)
        if s <= 0 or s > self.shares:
            raise InputError("shares", f"must be > 0 and at most the pool's {self.shares!r}, "
                             f"got {shares!r}")
        if s == self.shares:
            e_out, m_out, s_left = self.energy_kwh, self.money, 0.0
        else:
            part = Fraction(s) / Fraction(self.shares)
            e_out = _round(Fraction(self.energy_kwh) * part, up=False)
            m_out = _round(Fraction(self.money) * part, up=False)
            s_left = _sub(self.shares, s, up=True)
        x_left = _sub(self.energy_kwh, e_out, up=False)
        y_left = _sub(self.money, m_out, up=False)
        if s_left > 0 and not (x_left > 0 and y_left > 0):
            raise InputError("shares", "would leave dust reserves behind: withdraw all shares")
        if e_out < _amount("min_energy_kwh", min_energy_kwh) or m_out < _amount(
                "min_money", min_money):
            raise InputError("shares", f"withdrawal pays {e_out!r} kWh and {m_out!r} money, "
                             "below the minimum asked")
        new = replace(self, energy_kwh=x_left, money=y_left, shares=s_left)
        return new, Position(s, e_out, m_out)

    def impermanent_loss(self, position: Position, *, price_per_kwh: float | None = None
                         ) -> float:
        """The position's value in the pool relative to having held its deposit:
        ``value_in_pool / value_held - 1`` at ``price_per_kwh`` (default: the
        pool's price). Negative is a loss; the fees earned are included.

        Examples
        --------
        A constant product pool with no fee loses ``2 sqrt(r) / (1 + r) - 1``
        when the price moves by the factor ``r``; here ``r = 4``:

        >>> pool = Pool.create(100.0, 100.0, fee=0.0)
        >>> founder = Position(pool.shares, 100.0, 100.0)
        >>> moved, _ = pool.buy(50.0)                   # the price goes from 1 to 4
        >>> round(moved.price_per_kwh, 9), round(moved.impermanent_loss(founder), 6)
        (4.0, -0.2)
        """
        self._require_liquid()
        p = self.price_per_kwh if price_per_kwh is None else float(price_per_kwh)
        held = position.energy_kwh * p + position.money
        return self.value(p) * position.shares / self.shares / held - 1.0


# ------------------------------------------------------------- market design
@register("amm")
def clear_amm(orders: OrderBatch, /, *, pool: Pool) -> Clearing:
    """Execute each order against ``pool`` in time order (see the module
    docstring for the rule and for how the clearing reports a pool trade).

    Returns
    -------
    Clearing
        ``accepted`` is each order's energy, ``price`` its average price per
        kWh fee included, ``payment`` the money it paid (negative: received);
        ``clearing_price`` is the pool's final marginal price. ``info`` holds
        ``pool`` (the final :class:`Pool`), ``energy_sold_kwh``,
        ``pool_net_kwh`` and ``pool_money_change``.

    Examples
    --------
    >>> import transactive as te
    >>> pool = Pool.create(1000.0, 250.0, fee=0.003)
    >>> ob = te.OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                    price=[0.30, 0.20], quantity=[5.0, 3.0])
    >>> c = te.clear(ob, "amm", pool=pool)
    >>> c.accepted.tolist(), round(c.info["pool_net_kwh"], 6)
    ([5.0, 3.0], -2.0)
    """
    if not isinstance(pool, Pool):
        raise InputError("pool", f"expected an amm.Pool, got {type(pool).__name__}")
    pool._require_liquid()
    n = len(orders)
    accepted, money = np.zeros(n), np.zeros(n)
    assert orders.time is not None  # always set by OrderBatch
    sequence = np.lexsort((np.arange(n), orders.time))
    for i in sequence.tolist():
        side = int(orders.side[i])
        pool, receipt = pool.limit_order(side, float(orders.price[i]),
                                         float(orders.quantity[i]))
        if receipt is not None:
            accepted[i], money[i] = receipt.energy_kwh, receipt.money
    buy = orders.is_buy
    payment = np.where(buy, money, -money)
    unit = np.divide(money, accepted, out=np.full(n, np.nan), where=accepted > 0)
    sold = float(accepted[~buy].sum())
    return Clearing.from_allocation(
        "amm", orders, accepted, unit, pool.price_per_kwh, payment=payment,
        info={
            "pool": pool,
            "energy_sold_kwh": sold,
            "pool_net_kwh": sold - float(accepted[buy].sum()),
            "pool_money_change": float(payment.sum()),
        },
    )


def arbitrage_to_band(pool: Pool, low_price: float, high_price: float
                      ) -> tuple[Pool, Receipt | None]:
    """Trade the pool back into the band between the utility's feed-in price
    ``low_price`` and retail price ``high_price`` (per kWh).

    When the pool pays more for energy than retail (marginal receipt above
    ``high_price``), an arbitrageur buys from the utility and sells to the
    pool until the receipt falls to ``high_price``; when the pool sells energy
    below the feed-in price (marginal cost below ``low_price``) it buys from
    the pool and feeds in until the cost rises to ``low_price``. Returns the
    new pool and the arbitrage swap, or the same pool and ``None``.

    Examples
    --------
    >>> pool = Pool.create(100.0, 50.0, fee=0.0)        # 0.50 per kWh
    >>> anchored, trade = arbitrage_to_band(pool, 0.08, 0.30)
    >>> round(anchored.price_per_kwh, 9), trade.side
    (0.3, -1)
    """
    low = float(low_price)
    high = float(high_price)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise InputError("low_price", f"need finite low_price <= high_price, got {low_price!r} "
                         f"and {high_price!r}")
    if high <= 0:
        raise InputError("high_price", "must be > 0: a pool's price is always positive")
    pool._require_liquid()
    keep = 1.0 - pool.fee
    if pool.price_per_kwh * keep > high:
        return pool.limit_order(SELL, high, _INF)
    if pool.price_per_kwh / keep < low:
        return pool.limit_order(BUY, low, _INF)
    return pool, None
