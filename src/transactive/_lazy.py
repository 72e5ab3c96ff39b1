"""Lazy public faces (SPEC 1): a package names its public API up front and
imports each name's module on first use, so ``import transactive`` and
``transactive --help`` cost no pandas, SciPy or matplotlib."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


class _Package(types.ModuleType):
    """A package whose public name is also one of its own submodules
    (``grid.dcopf``, the function of ``grid/dcopf.py``). Importing the
    submodule sets the package's attribute to the module; here the public
    name the submodule defines is kept instead (what an eager ``from .dcopf
    import dcopf`` in the package gives)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
                and name in self.__dict__.get("__all__", ()) and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


def attach(package: str, exports: Mapping[str, str]
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    ``exports`` maps each public name to the module that defines it, or to
    ``"module:name"`` where the public name is another name there; a name the
    module does not define stands for the module itself (e.g.
    ``{"matrices": "transactive.grid.matrices"}``). A public name that is
    also a submodule of the package and a name that submodule defines
    (``{"dcopf": "transactive.grid.dcopf"}``) stays that name when the
    submodule is imported (the package's module becomes a :class:`_Package`).

    Examples
    --------
    >>> get, names, public = attach("demo", {"sqrt": "math", "json": "json",
    ...                                      "root": "math:sqrt"})
    >>> get("sqrt")(9.0), get("root")(4.0), get("json").__name__, public
    (3.0, 2.0, 'json', ['json', 'root', 'sqrt'])
    """
    # constants, then classes, then functions and modules (isort's order)
    public = sorted(exports, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    module = sys.modules.get(package)
    if module is not None and any(t == f"{package}.{n}" for n, t in exports.items()):
        module.__class__ = _Package

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        loaded = importlib.import_module(module)
        if hasattr(loaded, attr or name):  # a name defined in the module (even one
            return getattr(loaded, attr or name)  # the module shares, as audit.audit)
        return loaded  # the module itself

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__, public
