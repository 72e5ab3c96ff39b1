"""Built-in network cases, shipped as MATPOWER files in ``transactive/data/cases``.

============  ======================================================================
name          case
============  ======================================================================
``case9``     WSCC 9-bus (MATPOWER ``case9``)
``case14``    IEEE 14-bus (MATPOWER ``case14``)
``case30``    IEEE 30-bus with line limits (MATPOWER ``case30``, Alsac & Stott)
``case118``   IEEE 118-bus (MATPOWER ``case118``; no line limits)
``case33bw``  IEEE 33-bus radial feeder, Baran & Wu (1989), 12.66 kV, base 10 MVA
============  ======================================================================

Each file holds MATPOWER's own data, element for element (for the four
transmission cases, as PYPOWER ships them; MATPOWER's "no limit" rating 0
where PYPOWER writes 9900). The feeder is MATPOWER's ``case33bw`` without its
five open tie switches, so its 32 branches form the radial feeder. The test
``tests/test_cases_ac.py`` holds every case against PYPOWER's (or, for the
feeder, pandapower's) data and AC power flow. Bus numbers are MATPOWER's.
``ieee33`` is an alias of ``case33bw``.

Reference for the feeder: M. E. Baran and F. F. Wu, "Network reconfiguration in
distribution systems for loss reduction and load balancing", IEEE Trans. Power
Delivery 4(2), 1401-1407, 1989. Its branch impedances in ohm are
``r_pu * vn_kv**2 / base_mva`` (``vn_kv`` = 12.66, ``base_mva`` = 10).

Examples
--------
>>> available_cases()
['case118', 'case14', 'case30', 'case33bw', 'case9']
>>> net = load_case("case9")
>>> net.n_bus, net.n_branch, net.ref_bus
(9, 9, 1)
"""

from __future__ import annotations

from importlib import resources
from os import PathLike
from pathlib import Path

from transactive.errors import InputError
from transactive.grid.matpower import parse_matpower, read_matpower
from transactive.grid.network import Network

__all__ = ["available_cases", "load_case"]

_ALIASES = {"ieee33": "case33bw"}


def _data() -> resources.abc.Traversable:
    return resources.files("transactive").joinpath("data", "cases")


def available_cases() -> list[str]:
    """Names of the built-in cases, sorted."""
    files = _data().iterdir()
    return sorted(f.name[:-2] for f in files if f.name.endswith(".m"))


def load_case(case: str | PathLike[str]) -> Network:
    """A built-in case by name, or a MATPOWER ``.m`` file by path.

    Parameters
    ----------
    case : str or path
        A name from :func:`available_cases` (or ``ieee33``), or a path to a
        ``.m`` file (anything ending in ``.m`` or naming an existing file).

    Raises
    ------
    InputError
        If the name is unknown (the message lists the built-in names) or the
        file cannot be read or is not a valid case.
    """
    text = str(case)
    if isinstance(case, PathLike) or text.endswith(".m") or Path(text).is_file():
        return read_matpower(text)
    name = _ALIASES.get(text.lower(), text.lower())
    if name not in available_cases():
        raise InputError("case", f"unknown case {text!r}; built-in cases are "
                                 f"{', '.join(available_cases())}, or give a .m file path")
    body = _data().joinpath(f"{name}.m").read_text(encoding="utf-8")
    return parse_matpower(body, name=name)
