"""Refusals of the live exchange, each with the HTTP status the API answers.

Every refusal is an :class:`~transactive.errors.InputError` (it names the
field and the problem) and is raised before anything changes.
"""

from __future__ import annotations

from transactive.errors import InputError

__all__ = ["Conflict", "Forbidden", "Halted", "NotFound", "RateLimited", "Refused",
           "Unauthorized"]


class Refused(InputError):
    """A request the exchange refuses: malformed or outside the rules (422)."""

    status = 422


class Unauthorized(Refused):
    """No valid signature by a registered key (401)."""

    status = 401


class Forbidden(Refused):
    """Signed, but not allowed: a role missing, the trial full (403)."""

    status = 403


class NotFound(Refused):
    """No such object among the caller's own (404): another participant's
    objects are not found either."""

    status = 404


class Conflict(Refused):
    """A duplicate id, a replayed nonce, an order no longer open (409)."""

    status = 409


class RateLimited(Refused):
    """Over the participant's order rate (429)."""

    status = 429


class Halted(Refused):
    """Trading is halted by the circuit breaker (503) until ``retry_after_s``."""

    status = 503

    def __init__(self, field: str, problem: str, *, retry_after_s: float) -> None:
        super().__init__(field, problem)
        self.retry_after_s = retry_after_s
