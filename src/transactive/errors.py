"""The errors transactive raises.

Every error the library raises on purpose derives from :class:`TransactiveError`.
Errors caused by what a user passed in (an order file, a scenario, a network
case, an API request) are :class:`InputError`: they name the field (and the
row, where there is one) and the problem, and are raised before any state
changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["InputError", "MissingExtraError", "SolverError", "TransactiveError",
           "validation_error"]


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


def validation_error(errors: Sequence[Mapping[str, Any]], root: str) -> InputError:
    """The first of pydantic's ``ValidationError.errors()`` as an
    :class:`InputError` naming the field by its dotted path (``root`` for the
    whole object); a check of the whole object that names its field first
    (``"limits.price_cap: must be above ..."``) is put under that field.

    Examples
    --------
    >>> str(validation_error([{"loc": ("limits", "x"), "msg": "x", "type": "extra_forbidden"}],
    ...                      "config"))
    "field 'limits.x': unknown field"
    """
    err = errors[0]
    path = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, InputError):
        msg = cause.problem
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    head, sep, rest = msg.partition(": ")
    if not path and sep and head.replace(".", "").replace("_", "").isalnum():
        path, msg = head, rest
    return InputError(path or root, msg)


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
