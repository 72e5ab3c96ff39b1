"""The errors transactive raises.

Every error the library raises on purpose derives from :class:`TransactiveError`.
Errors caused by what a user passed in (an order file, a scenario, a network
case, an API request) are :class:`InputError`: they name the field (and the
row, where there is one) and the problem, and are raised before any state
changes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InputError", "MissingExtraError", "SolverError", "TransactiveError"]


class TransactiveError(Exception):
    """Base class of every error transactive raises on purpose."""


class InputError(TransactiveError, ValueError):
    """Bad user input: names the field, the row (if any) and the problem.

    Examples
    --------
    >>> str(InputError("price", "must be finite", row=3))
    "row 3: field 'price': must be finite"
    """

    def __init__(self, field: str, problem: str, *, row: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.row = row
        where = f"row {row}: " if row is not None else ""
        super().__init__(f"{where}field '{field}': {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as made (a run's settlement process sends its errors back)
        return _input_error, (type(self), self.field, self.problem, self.row)


def _input_error(cls: type[InputError], field: str, problem: str, row: int | None
                 ) -> InputError:
    return cls(field, problem, row=row)


class SolverError(TransactiveError):
    """An optimisation could not be solved (infeasible, unbounded, numerical)."""


class MissingExtraError(TransactiveError, ImportError):
    """An optional dependency is missing; the message says what to install."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"this feature needs '{package}': install it with "
            f"pip install 'transactive[{extra}]'"
        )
