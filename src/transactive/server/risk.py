"""The sandbox trial's risk controls: order-rate limits and the circuit breaker.

Both are functions of the times the journal records (``at_ms`` of every
command and gate), so replaying the journal rebuilds them exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from transactive.server.config import Breaker
from transactive.server.errors import RateLimited

__all__ = ["CircuitBreaker", "Halt", "RateLimiter"]


class RateLimiter:
    """A token bucket per participant: ``rate`` orders a second, bursts up to
    one second's worth.

    Examples
    --------
    >>> lim = RateLimiter(2.0)
    >>> lim.take("a", 2, at_ms=0); lim.take("a", 1, at_ms=100)
    Traceback (most recent call last):
    ...
    transactive.server.errors.RateLimited: field 'orders': over 2 orders a second ...
    >>> lim.take("a", 1, at_ms=600)   # 1.2 tokens came back
    """

    def __init__(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        self.burst = max(1.0, rate_per_s)
        self._tokens: dict[str, tuple[float, int]] = {}

    def take(self, participant: str, n: int, *, at_ms: int) -> None:
        """Spend ``n`` tokens or raise :class:`RateLimited` (nothing spent)."""
        tokens, last = self._tokens.get(participant, (self.burst, at_ms))
        tokens = min(self.burst, tokens + max(0, at_ms - last) * self.rate / 1000)
        if n > tokens + 1e-9:
            wait = (n - tokens) / self.rate
            raise RateLimited("orders", f"over {self.rate:g} orders a second for "
                              f"{participant!r}: retry in {wait:.2f} s")
        self._tokens[participant] = (tokens - n, at_ms)


@dataclass(frozen=True)
class Halt:
    """One halt of trading: when, why, until when."""

    start_ms: int
    until_ms: int
    price_per_kwh: float
    reference_per_kwh: float


@dataclass
class CircuitBreaker:
    """Halts trading when a price moves more than ``max_move`` (relative) from
    the mean of the last ``window`` prices; trading resumes by itself after
    ``halt_s``. It judges a price once it has at least ``min(window, 3)``
    before it (a reference of a single trade is no reference).

    Examples
    --------
    >>> cb = CircuitBreaker(Breaker(max_move=0.5, window=3, halt_s=10))
    >>> [cb.observe(p, at_ms=t) for t, p in enumerate([0.20, 0.22, 0.21, 0.50])]
    [False, False, False, True]
    >>> cb.halted_until(5), cb.halted_until(10_003)
    (10003, None)
    """

    rules: Breaker
    _prices: deque[float] = field(init=False)
    halts: list[Halt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._prices = deque(maxlen=self.rules.window)

    def halted_until(self, at_ms: int) -> int | None:
        """The end of the halt in force at ``at_ms``, or ``None``."""
        if self.halts and at_ms < self.halts[-1].until_ms:
            return self.halts[-1].until_ms
        return None

    def observe(self, price_per_kwh: float, *, at_ms: int) -> bool:
        """Record a trade or clearing price; ``True`` if it halts trading."""
        prices = self._prices
        halt = False
        if len(prices) >= min(self.rules.window, 3) and self.halted_until(at_ms) is None:
            ref = sum(prices) / len(prices)
            if abs(price_per_kwh - ref) > self.rules.max_move * max(abs(ref), 0.01):
                self.halts.append(Halt(at_ms, at_ms + round(self.rules.halt_s * 1000),
                                       price_per_kwh, ref))
                halt = True
        prices.append(price_per_kwh)
        return halt
