"""The mechanism registry: market designs by name, behind one contract.

A mechanism is a function ``clear(orders, **options) -> Clearing`` that

- takes an :class:`~transactive.orders.OrderBatch` and keyword-only options,
- never changes its input,
- returns a :class:`~transactive.clearing.Clearing` in which no order trades
  more than its quantity or at a price worse than its limit, and energy bought
  equals energy sold among the participants, unless the design has a
  counterparty of its own (an AMM's pool, the substation of a network market),
  whose net trade it reports in ``Clearing.info``,
- raises :class:`~transactive.errors.InputError` for bad options.

Register one with :func:`register`; :func:`clear` looks it up by name and
checks the options against its signature before calling it. A mechanism of a
higher layer (``p2p_admm`` in :mod:`transactive.decentral`) registers itself
the same way when its module is imported; :func:`defer` names that module
here, and :func:`get` imports it the first time the name is asked for, so
every caller sees every mechanism while importing the markets costs nothing
more.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch

__all__ = ["Mechanism", "available", "check_options", "clear", "defer", "get", "register"]


Mechanism = Callable[..., Clearing]
"""What a registered mechanism is: ``fn(orders, /, **options) -> Clearing``."""

_M = TypeVar("_M", bound=Mechanism)
_REGISTRY: dict[str, Mechanism] = {}
_DEFERRED: dict[str, str] = {}  # name -> the module whose import registers it


def register(name: str) -> Callable[[_M], _M]:
    """Decorator: register a mechanism under ``name`` (which must be new)."""

    def decorate(fn: _M) -> _M:
        if name in _REGISTRY:
            raise ValueError(f"mechanism {name!r} is already registered")
        _REGISTRY[name] = fn
        _DEFERRED.pop(name, None)
        return fn

    return decorate


def defer(name: str, module: str) -> None:
    """Name ``module`` as the one whose import registers mechanism ``name``."""
    if name in _REGISTRY or name in _DEFERRED:
        raise ValueError(f"mechanism {name!r} is already registered")
    _DEFERRED[name] = module


def available() -> list[str]:
    """Names of the registered mechanisms (deferred ones too), sorted."""
    return sorted({*_REGISTRY, *_DEFERRED})


def get(name: str) -> Mechanism:
    """The mechanism registered as ``name``; :class:`InputError` if none is."""
    if name in _DEFERRED and name not in _REGISTRY:
        importlib.import_module(_DEFERRED[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            "mechanism", f"unknown mechanism {name!r}; available: {', '.join(available())}"
        ) from None


def check_options(mechanism: str, options: Mapping[str, Any],
                  supplied: Collection[str] = ()) -> None:
    """Refuse an unknown mechanism, an option it does not take, or a missing
    required option (options named in ``supplied`` count as given)."""
    params = inspect.signature(get(mechanism)).parameters
    keyword = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in options:
            if key not in keyword:
                raise InputError(
                    key, f"not an option of mechanism {mechanism!r} "
                    f"(options: {', '.join(keyword) or 'none'})"
                )
    for name, param in keyword.items():
        if (param.default is inspect.Parameter.empty and name not in options
                and name not in supplied):
            raise InputError(name, f"mechanism {mechanism!r} needs this option")


def clear(orders: OrderBatch, mechanism: str = "uniform", **options: Any) -> Clearing:
    """Clear ``orders`` with the mechanism registered as ``mechanism``.

    Options are passed to the mechanism as keywords; an option it does not
    take is refused with an :class:`InputError` naming it.

    Examples
    --------
    >>> import transactive as te
    >>> ob = te.OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                    price=[0.30, 0.10], quantity=[2.0, 1.5])
    >>> c = te.clear(ob, "uniform")
    >>> # the buyer is partly filled: only its limit clears the market
    >>> round(c.clearing_price, 3), c.volume
    (0.3, 1.5)
    """
    if not isinstance(orders, OrderBatch):
        raise InputError("orders", f"expected an OrderBatch, got {type(orders).__name__}")
    check_options(mechanism, options)
    return get(mechanism)(orders, **options)
