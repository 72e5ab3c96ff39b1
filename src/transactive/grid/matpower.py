"""Case readers and writer: MATPOWER ``.m`` files (version 2), PYPOWER case
dicts and pandapower nets, all through the one MATPOWER column layout.

MATPOWER semantics kept on reading: a branch ``RATE_*`` of 0 means no limit
(``inf`` in a :class:`~transactive.grid.network.Network`), a ``TAP`` of 0 means
1, ``PD``/``QD`` become one load per bus with a non-zero load, ``gencost``
model 2 (polynomial, up to quadratic) and model 1 (piecewise linear) are
supported; rows of reactive-power costs (a ``gencost`` of ``2*ng`` rows) are
ignored. Bus numbers are kept as they are in the file.

Examples
--------
>>> import io
>>> text = '''function mpc = tiny
... mpc.version = '2';
... mpc.baseMVA = 100;
... mpc.bus = [1 3 0 0 0 0 1 1 0 230 1 1.1 0.9; 2 1 50 10 0 0 1 1 0 230 1 1.1 0.9];
... mpc.gen = [1 0 0 100 -100 1 100 1 80 0];
... mpc.branch = [1 2 0.01 0.1 0 40 0 0 0 0 1 -360 360];
... mpc.gencost = [2 0 0 2 25 0];
... '''
>>> net = parse_matpower(text, name="tiny")
>>> net.branch[["from_bus", "to_bus", "x_pu", "rate_a_mw"]].to_numpy().tolist()
[[1.0, 2.0, 0.1, 40.0]]
>>> float(net.gen.loc[0, "cost_per_mwh"]), float(net.load.loc[0, "p_mw"])
(25.0, 50.0)
>>> parse_matpower(write_matpower_text(net), name="again").branch.equals(net.branch)
True
"""

from __future__ import annotations

import copy
import re
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, MissingExtraError
from transactive.grid.network import Network

__all__ = [
    "from_pandapower",
    "from_ppc",
    "parse_matpower",
    "read_matpower",
    "write_matpower",
    "write_matpower_text",
]

_BLOCK = re.compile(r"mpc\.(\w+)\s*=\s*(\[.*?\]|\{.*?\}|'[^']*'|[^;\n]+)\s*;?", re.S)
_COMMENT = re.compile(r"%[^\n]*")

# MATPOWER column positions (0-based)
_BUS = ("bus", "type", "pd", "qd", "gs_mw", "bs_mvar", "area", "vm_pu", "va_deg", "vn_kv",
        "zone", "vm_max_pu", "vm_min_pu")
_GEN = ("bus", "p_mw", "q_mvar", "q_max_mvar", "q_min_mvar", "vm_pu", "mbase", "in_service",
        "p_max_mw", "p_min_mw")
_BRANCH = ("from_bus", "to_bus", "r_pu", "x_pu", "b_pu", "rate_a_mw", "rate_b_mw",
           "rate_c_mw", "tap", "shift_deg", "in_service", "angmin_deg", "angmax_deg")


def _matrix(name: str, body: str) -> npt.NDArray[np.float64]:
    """Parse a MATLAB numeric matrix literal ``[ ... ]`` into a 2-d float array."""
    inner = body.strip()[1:-1]
    lines = inner.replace(",", " ").replace(";", "\n").split("\n")
    if any(line.strip() for line in lines):
        try:  # numpy's parser (C), for the common case: numbers, equal rows
            return np.loadtxt(lines, dtype=np.float64, comments=None, ndmin=2)
        except ValueError:
            pass  # something it does not read: Python's float() below, and the error
    rows = []
    for line in re.split(r"[;\n]", inner):
        tokens = line.replace(",", " ").split()
        if tokens:
            try:
                rows.append([float(t) for t in tokens])
            except ValueError:
                raise InputError(f"mpc.{name}", f"not a numeric row: {line.strip()!r}") from None
    if not rows:
        return np.zeros((0, 0))
    width = max(len(r) for r in rows)
    short = [i for i, r in enumerate(rows) if len(r) != width]
    if short:
        raise InputError(f"mpc.{name}", f"rows have different lengths (row {short[0]})",
                         row=short[0])
    return np.asarray(rows, dtype=np.float64)


def parse_matpower(text: str, *, name: str = "") -> Network:
    """Build a :class:`Network` from the text of a MATPOWER version-2 case file."""
    text = _COMMENT.sub("", text)
    fields: dict[str, str] = {m.group(1): m.group(2) for m in _BLOCK.finditer(text)}
    version = fields.get("version", "'2'").strip().strip("'\"")
    if version != "2":
        raise InputError("mpc.version", f"only MATPOWER case format version 2 is supported, "
                                        f"got {version!r}")
    ppc: dict[str, Any] = {}
    try:
        ppc["baseMVA"] = float(fields.get("baseMVA", "100"))
    except ValueError:
        raise InputError("mpc.baseMVA", f"must be a number, got {fields['baseMVA']!r}") from None
    for key in ("bus", "gen", "branch", "gencost"):
        if key in fields:
            if not fields[key].lstrip().startswith("["):
                raise InputError(f"mpc.{key}", "must be a numeric matrix [ ... ]")
            ppc[key] = _matrix(key, fields[key])
    return from_ppc(ppc, name=name)


def read_matpower(path: str | PathLike[str]) -> Network:
    """Read a MATPOWER version-2 ``.m`` case file.

    Parameters
    ----------
    path : str or path
        The ``.m`` file. The network is named after the file stem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError("case", f"cannot read {str(p)!r}: {exc.strerror}") from None
    return parse_matpower(text, name=p.stem)


def _need(ppc: dict[str, Any], key: str, width: int) -> npt.NDArray[np.float64]:
    if key not in ppc:
        raise InputError(f"mpc.{key}", "is missing")
    arr = np.asarray(ppc[key], dtype=np.float64)
    if arr.size == 0 and key != "bus":
        return np.zeros((0, width))
    if arr.ndim != 2 or arr.shape[1] < width:
        raise InputError(f"mpc.{key}", f"needs at least {width} columns, got shape {arr.shape}")
    return arr


def _costs(gencost: npt.NDArray[np.float64] | None, ng: int) -> tuple[
        dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]] | None]:
    """Polynomial cost columns and piecewise breakpoints from ``gencost``."""
    poly = {k: np.zeros(ng) for k in ("cost_per_mw2h", "cost_per_mwh", "cost_per_h")}
    if gencost is None or gencost.size == 0 or ng == 0:
        return poly, None
    if gencost.ndim != 2 or gencost.shape[0] < ng or gencost.shape[1] < 5:
        raise InputError("mpc.gencost", f"needs one row per generator ({ng}) and at least "
                                        f"5 columns, got shape {gencost.shape}")
    gc = gencost[:ng]
    model, ncost = gc[:, 0].astype(int), gc[:, 3].astype(int)
    bad = np.flatnonzero(~np.isin(model, (1, 2)))
    if bad.size:
        raise InputError("mpc.gencost", f"MODEL must be 1 or 2, got {model[bad[0]]}",
                         row=int(bad[0]))
    width = np.where(model == 2, ncost, 2 * ncost)
    bad = np.flatnonzero((4 + width > gc.shape[1]) | (width < 1))
    if bad.size:
        raise InputError("mpc.gencost", "NCOST does not fit the row", row=int(bad[0]))
    bad = np.flatnonzero((model == 2) & (ncost > 3))
    if bad.size:
        raise InputError("mpc.gencost", f"polynomial costs above quadratic are not supported "
                                        f"(NCOST={ncost[bad[0]]})", row=int(bad[0]))
    for k, key in enumerate(("cost_per_h", "cost_per_mwh", "cost_per_mw2h")):
        # coefficient of p**k sits at column 4 + ncost - 1 - k
        has = (model == 2) & (ncost > k)
        rows = np.flatnonzero(has)
        poly[key][rows] = gc[rows, 4 + ncost[rows] - 1 - k]
    pwl_rows = np.flatnonzero(model == 1)
    if pwl_rows.size == 0:
        return poly, None
    gens, ps, cs = [], [], []
    for g in pwl_rows:  # once per piecewise generator, at read time only
        pts = gc[g, 4:4 + 2 * ncost[g]]
        gens.append(np.full(ncost[g], g))
        ps.append(pts[0::2])
        cs.append(pts[1::2])
    pwl = {"gen": np.concatenate(gens), "p_mw": np.concatenate(ps),
           "cost_per_h": np.concatenate(cs)}
    return poly, pwl


def from_ppc(ppc: dict[str, Any], *, name: str = "") -> Network:
    """Build a :class:`Network` from a MATPOWER/PYPOWER case dict.

    Parameters
    ----------
    ppc : dict
        Keys ``baseMVA``, ``bus``, ``gen``, ``branch`` and optionally
        ``gencost``, with MATPOWER's column layout (extra columns ignored).
    name : str
        A label for the network.
    """
    bus = _need(ppc, "bus", 13)
    gen = _need(ppc, "gen", 10)
    branch = _need(ppc, "branch", 11)
    gencost = ppc.get("gencost")
    bus_t = {c: bus[:, i] for i, c in enumerate(_BUS)}
    pd_, qd = bus_t.pop("pd"), bus_t.pop("qd")
    has_load = (pd_ != 0) | (qd != 0)
    load = {"bus": bus[has_load, 0], "p_mw": pd_[has_load], "q_mvar": qd[has_load]}
    gen_t: dict[str, npt.NDArray[Any]] = {c: gen[:, i] for i, c in enumerate(_GEN)
                                          if c != "mbase"}
    gen_t["in_service"] = gen_t["in_service"] > 0
    poly, pwl = _costs(None if gencost is None else np.asarray(gencost, float), gen.shape[0])
    gen_t.update(poly)
    ncol = min(branch.shape[1], len(_BRANCH))
    br_t: dict[str, npt.NDArray[Any]] = {c: branch[:, i].copy()
                                         for i, c in enumerate(_BRANCH[:ncol])}
    for rate in ("rate_a_mw", "rate_b_mw", "rate_c_mw"):
        br_t[rate] = np.where(br_t[rate] == 0, np.inf, br_t[rate])
    br_t["tap"] = np.where(br_t["tap"] == 0, 1.0, br_t["tap"])
    br_t["in_service"] = br_t["in_service"] > 0
    tables: dict[str, Any] = {"bus": bus_t, "branch": br_t, "gen": gen_t, "load": load,
                              "pwl_cost": pwl}  # mappings of columns: no DataFrames here
    return Network(**tables, base_mva=float(ppc.get("baseMVA", 100)), name=name)


def _number(v: float) -> str:
    """``v`` in at most 10 significant digits when that reads back exactly,
    else in the shortest text that does (a written case reads back unchanged)."""
    short = f"{v:.10g}"
    return short if float(short) == v else repr(float(v))


def _rows(arr: npt.NDArray[np.float64]) -> str:
    return "\n".join("\t" + "\t".join(_number(v) for v in row) + ";" for row in arr)


def write_matpower_text(net: Network, *, header: str = "") -> str:
    """The MATPOWER version-2 text of ``net`` (loads summed per bus into PD/QD).

    ``header`` is written as ``%`` comment lines after the function line.
    """
    b = net.bus
    pd_ = np.bincount(net.load_position, weights=net.load["p_mw"].to_numpy(),
                      minlength=net.n_bus)
    qd = np.bincount(net.load_position, weights=net.load["q_mvar"].to_numpy(),
                     minlength=net.n_bus)
    bus = np.column_stack([b["bus"].to_numpy(), b["type"].to_numpy(), pd_, qd]
                          + [b[c].to_numpy() for c in _BUS[4:]])
    g = net.gen
    gen = np.column_stack([g[c].to_numpy() if c != "mbase" else np.full(net.n_gen, net.base_mva)
                           for c in _GEN])
    br = net.branch
    branch = np.column_stack([br[c] for c in _BRANCH]).astype(float)
    for k in (5, 6, 7):
        branch[:, k] = np.where(np.isinf(branch[:, k]), 0.0, branch[:, k])
    pwl = net.pwl_cost
    if pwl is not None and len(pwl):
        raise InputError("pwl_cost", "writing piecewise-linear costs is not supported")
    cost = np.column_stack([np.full(net.n_gen, 2.0), np.zeros(net.n_gen), np.zeros(net.n_gen),
                            np.full(net.n_gen, 3.0), g["cost_per_mw2h"], g["cost_per_mwh"],
                            g["cost_per_h"]])
    func = re.sub(r"\W", "_", net.name) or "case"
    comments = "".join(f"%   {line}\n" for line in header.splitlines())
    return (
        f"function mpc = {func}\n{comments}mpc.version = '2';\nmpc.baseMVA = {net.base_mva:g};\n\n"
        "%% bus data\n%\tbus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin\n"
        f"mpc.bus = [\n{_rows(bus)}\n];\n\n"
        "%% generator data\n%\tbus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin\n"
        f"mpc.gen = [\n{_rows(gen)}\n];\n\n"
        "%% branch data\n%\tfbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus"
        f"\tangmin\tangmax\nmpc.branch = [\n{_rows(branch)}\n];\n\n"
        "%% generator cost data\n%\t2\tstartup\tshutdown\tn\tc2\tc1\tc0\n"
        f"mpc.gencost = [\n{_rows(cost)}\n];\n"
    )


def write_matpower(net: Network, path: str | PathLike[str], *, header: str = "") -> None:
    """Write ``net`` as a MATPOWER version-2 ``.m`` case file (see
    :func:`write_matpower_text`)."""
    Path(path).write_text(write_matpower_text(net, header=header), encoding="utf-8")


def from_pandapower(net: Any, *, bus_numbers: str = "index") -> Network:
    """Convert a pandapower net through pandapower's own PYPOWER conversion.

    The conversion is pandapower's (``to_ppc`` in OPF mode), so the result is
    the model pandapower itself optimises: loads and static generators are
    summed per bus, controllable units become generators in pandapower's
    internal order (external grids first) with their ``poly_cost`` costs.
    The caller's net is not changed (a copy is converted).

    Parameters
    ----------
    net : pandapower.pandapowerNet
        The net; out-of-service buses are dropped by pandapower.
    bus_numbers : {"index", "name"}
        Number buses by the pandapower bus index + 1 (``"index"``), or by the
        bus ``name`` where every name is a positive integer (``"name"``, as in
        pandapower's copies of the MATPOWER cases).

    Raises
    ------
    MissingExtraError
        If pandapower is not installed.
    """
    try:
        from pandapower.converter.pypower import to_ppc
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("pandapower", "bench") from None
    import pandas as pd
    if bus_numbers not in ("index", "name"):
        raise InputError("bus_numbers", f"must be 'index' or 'name', got {bus_numbers!r}")
    work = copy.deepcopy(net)
    with warnings.catch_warnings():  # pandapower's notes about its own older data
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pandapower")
        ppc = to_ppc(work, init="flat", calculate_voltage_angles=True, mode="opf")
    lookup = np.asarray(work._pd2ppc_lookups["bus"])
    pp_index = work.bus.index.to_numpy()
    internal = lookup[pp_index]
    in_ppc = (internal >= 0) & (internal < ppc["bus"].shape[0])
    if bus_numbers == "name":
        names = pd.to_numeric(work.bus["name"], errors="coerce").to_numpy()
        if np.isnan(names[in_ppc]).any() or (names[in_ppc] <= 0).any():
            raise InputError("bus_numbers", "bus names are not all positive integers")
        label = names.astype(np.int64)
    else:
        label = pp_index.astype(np.int64) + 1
    numbers = np.zeros(ppc["bus"].shape[0], dtype=np.int64)
    numbers[internal[in_ppc]] = label[in_ppc]
    ppc = dict(ppc)
    ppc["bus"] = np.asarray(ppc["bus"][:, :13], float).copy()
    ppc["gen"] = np.asarray(ppc["gen"][:, :10], float).copy()
    ppc["branch"] = np.asarray(ppc["branch"][:, :13], float).copy()
    for arr, cols in ((ppc["bus"], (0,)), (ppc["gen"], (0,)), (ppc["branch"], (0, 1))):
        for c in cols:
            arr[:, c] = numbers[arr[:, c].astype(np.int64)]
    return from_ppc(ppc, name=str(work.name or ""))
