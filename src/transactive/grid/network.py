"""The network model: buses, branches, generators and loads as typed tables.

A :class:`Network` holds five pandas tables whose columns are declared once,
as data, in :data:`SCHEMA` (name, kind, default, unit and meaning). The tables
are validated completely when the network is built; every error names the
table, the column and the row. A network is never changed by any solver:
results live in separate result objects (see :mod:`transactive.grid.dcopf`).
The solvers read the validated columns as arrays (:meth:`Network.column`);
the DataFrames are built on first use, so a clearing that never asks for one
(``transactive opf``) does not import pandas.

Conventions (stated once, used by every grid module):

- Buses keep their case numbers (MATPOWER ``BUS_I``); every output reports
  them. Internally a bus is addressed by its *position* (row) in ``bus``.
- Powers are in MW / MVAr, impedances in per unit on ``base_mva`` and the
  bus ``vn_kv`` (``z_base_ohm = vn_kv**2 / base_mva``), angles in degrees.
- Loads consume ``p_mw`` (positive = consumption); generators inject ``p_mw``
  (a dispatchable load is a generator with ``p_min_mw < 0``).
- A branch rating of ``inf`` means unlimited (MATPOWER writes ``0``).
- Generator cost per hour is ``cost_per_mw2h * p**2 + cost_per_mwh * p +
  cost_per_h`` (MATPOWER ``gencost`` model 2), or a convex piecewise-linear
  curve given as breakpoints in the ``pwl_cost`` table (model 1).
- ``branch.in_service``/``gen.in_service`` switch elements off; a bus of
  ``type`` 4 (isolated) must have nothing in service attached.

Examples
--------
>>> net = Network(
...     bus={"bus": [1, 2], "type": [3, 1]},
...     branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1], "rate_a_mw": [50.0]},
...     gen={"bus": [1], "p_max_mw": [100.0], "cost_per_mwh": [20.0]},
...     load={"bus": [2], "p_mw": [40.0]},
... )
>>> net
Network('', 2 buses, 1 branches, 1 generators, 1 loads, base 100.0 MVA)
>>> net.ref_bus, net.bus_position([2, 1]).tolist()
(1, [1, 0])
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from transactive.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    TableLike: TypeAlias = pd.DataFrame | Mapping[str, Any]

__all__ = ["SCHEMA", "Column", "Network", "TableLike", "build_table", "table_columns"]

Columns: TypeAlias = dict[str, npt.NDArray[Any]]
"""A validated table as arrays: column name -> read-only 1-d array, all of one length."""


def __getattr__(name: str) -> Any:
    if name == "TableLike":  # needs pandas, so it is made when first imported
        import pandas as pd

        # What a table may be given as: a DataFrame or a mapping of column -> values.
        return pd.DataFrame | Mapping[str, Any]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

Kind = Literal["int", "float", "bool"]

#: Bus types as in MATPOWER.
PQ, PV, REF, ISOLATED = 1, 2, 3, 4


@dataclass(frozen=True)
class Column:
    """One column of a network table: declared once, drives validation and docs.

    ``default`` is ``None`` for a required column. ``allow_inf`` lets a float
    column hold ``+/-inf`` (limits); NaN is never allowed.
    """

    name: str
    kind: Kind
    default: float | int | bool | None
    doc: str
    allow_inf: bool = False


_INF = float("inf")

#: The columns of every table, in order.
SCHEMA: dict[str, tuple[Column, ...]] = {
    "bus": (
        Column("bus", "int", None, "bus number (MATPOWER BUS_I), unique, > 0"),
        Column("type", "int", PQ, "1 PQ, 2 PV, 3 reference, 4 isolated"),
        Column("vn_kv", "float", 0.0, "base (nominal) voltage, kV"),
        Column("gs_mw", "float", 0.0, "shunt conductance: MW consumed at 1 pu voltage"),
        Column("bs_mvar", "float", 0.0, "shunt susceptance: MVAr injected at 1 pu voltage"),
        Column("vm_pu", "float", 1.0, "voltage magnitude (initial / set point), pu"),
        Column("va_deg", "float", 0.0, "voltage angle (initial), degrees"),
        Column("vm_max_pu", "float", 1.1, "upper voltage limit, pu"),
        Column("vm_min_pu", "float", 0.9, "lower voltage limit, pu"),
        Column("area", "int", 1, "area number"),
        Column("zone", "int", 1, "loss zone number"),
    ),
    "branch": (
        Column("from_bus", "int", None, "bus number of the from end"),
        Column("to_bus", "int", None, "bus number of the to end"),
        Column("r_pu", "float", 0.0, "series resistance, pu"),
        Column("x_pu", "float", None, "series reactance, pu (non-zero when in service)"),
        Column("b_pu", "float", 0.0, "total line charging susceptance, pu"),
        Column("rate_a_mw", "float", _INF, "normal (long-term) rating, MW; inf = none", True),
        Column("rate_b_mw", "float", _INF, "short-term rating, MW; inf = none", True),
        Column("rate_c_mw", "float", _INF, "emergency (post-contingency) rating, MW", True),
        Column("tap", "float", 1.0, "off-nominal turns ratio at the from end (1 = line)"),
        Column("shift_deg", "float", 0.0, "phase shift angle, degrees"),
        Column("in_service", "bool", True, "False switches the branch off"),
        Column("angmin_deg", "float", -360.0, "minimum angle difference, degrees"),
        Column("angmax_deg", "float", 360.0, "maximum angle difference, degrees"),
    ),
    "gen": (
        Column("bus", "int", None, "bus number"),
        Column("p_max_mw", "float", None, "maximum active power, MW"),
        Column("p_min_mw", "float", 0.0, "minimum active power, MW (< 0: dispatchable load)"),
        Column("p_mw", "float", 0.0, "active power set point, MW"),
        Column("q_mvar", "float", 0.0, "reactive power set point, MVAr"),
        Column("q_max_mvar", "float", _INF, "maximum reactive power, MVAr", True),
        Column("q_min_mvar", "float", -_INF, "minimum reactive power, MVAr", True),
        Column("vm_pu", "float", 1.0, "voltage set point, pu"),
        Column("in_service", "bool", True, "False switches the generator off"),
        Column("cost_per_mw2h", "float", 0.0, "quadratic cost coefficient, per MW^2 h (>= 0)"),
        Column("cost_per_mwh", "float", 0.0, "linear cost coefficient, per MWh"),
        Column("cost_per_h", "float", 0.0, "fixed cost when running, per h"),
    ),
    "load": (
        Column("bus", "int", None, "bus number"),
        Column("p_mw", "float", None, "active power consumed, MW"),
        Column("q_mvar", "float", 0.0, "reactive power consumed, MVAr"),
    ),
    "pwl_cost": (
        Column("gen", "int", None, "generator row (position in the gen table)"),
        Column("p_mw", "float", None, "breakpoint output, MW (increasing per generator)"),
        Column("cost_per_h", "float", None, "cost at the breakpoint, per h"),
    ),
}


_DTYPE = {"int": np.int64, "float": np.float64, "bool": np.bool_}


def table_columns(name: str, data: TableLike | None,
                  columns: tuple[Column, ...] | None = None) -> Columns:
    """Validate ``data`` as table ``name``: known columns only, defaults filled,
    typed, as read-only arrays. ``columns`` defaults to ``SCHEMA[name]``;
    errors name ``<name>.<column>`` and the row."""
    columns = SCHEMA[name] if columns is None else columns
    if data is None:
        data = {c.name: np.zeros(0) for c in columns}
    if not (isinstance(data, Mapping) or _is_frame(data)):
        raise InputError(name, f"expected a DataFrame or a mapping, got {type(data).__name__}")
    known = {c.name for c in columns}
    unknown = [str(k) for k in data if k not in known]
    if unknown:
        raise InputError(f"{name}.{unknown[0]}", f"unknown column (known: {sorted(known)})")
    raw = {str(k): np.asarray(v) for k, v in data.items()}
    lengths = {k: v.shape[0] if v.ndim == 1 else -1 for k, v in raw.items()}
    if any(n < 0 for n in lengths.values()) or len(set(lengths.values())) > 1:
        raise InputError(name, f"columns must be 1-d and of equal length, got {lengths}")
    n = next(iter(lengths.values()), 0)
    out: Columns = {}
    for col in columns:
        field = f"{name}.{col.name}"
        if col.name not in raw:
            if col.default is None:
                raise InputError(field, "is required")
            out[col.name] = _readonly(np.full(n, col.default, dtype=_DTYPE[col.kind]))
            continue
        values = raw[col.name]
        if col.kind == "bool":
            if values.dtype.kind not in "biuf":
                raise InputError(field, f"must be true/false, got type {values.dtype}")
            out[col.name] = _readonly(values.astype(bool))
            continue
        try:
            arr = values.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(field, f"must be numeric, got type {values.dtype}") from None
        bad = np.isnan(arr) if col.allow_inf else ~np.isfinite(arr)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(field, f"must be a finite number, got {arr[row]!r}", row=row)
        if col.kind == "int":
            frac = arr != np.round(arr)
            if frac.any():
                row = int(np.flatnonzero(frac)[0])
                raise InputError(field, f"must be an integer, got {arr[row]!r}", row=row)
            arr = arr.astype(np.int64)
        out[col.name] = _readonly(arr)
    return out


def build_table(name: str, data: TableLike | None,
                columns: tuple[Column, ...] | None = None) -> pd.DataFrame:
    """Build a validated table from ``data``: known columns only, defaults filled,
    typed, a fresh RangeIndex. ``columns`` defaults to ``SCHEMA[name]``; errors
    name ``<name>.<column>`` and the row."""
    return _frame(table_columns(name, data, columns))


def _is_frame(data: object) -> bool:
    """Whether ``data`` is a pandas DataFrame (without importing pandas: one
    cannot exist before pandas is imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def _frame(columns: Columns) -> pd.DataFrame:
    """A DataFrame (own, writable copies of the columns; a fresh RangeIndex)."""
    import pandas as pd

    return pd.DataFrame({k: np.array(v) for k, v in columns.items()},
                        index=pd.RangeIndex(_length(columns)))


def _length(columns: Columns) -> int:
    return len(next(iter(columns.values())))


def _check(mask: npt.NDArray[np.bool_], field: str, problem: str) -> None:
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise InputError(field, problem, row=row)


@dataclass(frozen=True, eq=False)
class Network:
    """A power network as validated, typed tables (see :data:`SCHEMA`).

    Parameters
    ----------
    bus, branch, gen, load : DataFrame or mapping of column -> values
        The tables; missing optional columns take their defaults. Unknown
        columns are an error (they are usually typos).
    pwl_cost : DataFrame or mapping, optional
        Piecewise-linear cost breakpoints (``gen``, ``p_mw``, ``cost_per_h``);
        a generator listed here must have zero polynomial costs.
    base_mva : float
        System MVA base of the per-unit impedances.
    name : str
        A label for reports.

    Notes
    -----
    The tables are copies owned by the network: treat them as read-only and
    use :meth:`replace` to derive a changed network (it validates again).
    Each table is a DataFrame built from the validated columns when it is
    first used; :meth:`column` reads a column without it.
    """

    bus: pd.DataFrame
    branch: pd.DataFrame
    gen: pd.DataFrame
    load: pd.DataFrame
    pwl_cost: pd.DataFrame | None = None
    base_mva: float = 100.0
    name: str = ""
    _columns: dict[str, Columns] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the given tables are validated into columns and dropped: the
        # attributes are _Table descriptors that build the DataFrames on first use
        tables = {t: table_columns(t, self.__dict__.pop(t)) for t in _TABLES}
        object.__setattr__(self, "_columns", tables)
        if not np.isfinite(self.base_mva) or self.base_mva <= 0:
            raise InputError("base_mva", f"must be > 0, got {self.base_mva!r}")
        object.__setattr__(self, "base_mva", float(self.base_mva))
        self._validate()

    # ---------------------------------------------------------------- validation
    def _validate(self) -> None:
        bus, br, gen, load = (self._columns[t] for t in ("bus", "branch", "gen", "load"))
        if self.n_bus == 0:
            raise InputError("bus", "the network has no buses")
        nums = bus["bus"]
        _check(nums <= 0, "bus.bus", "bus numbers must be > 0")
        order = np.argsort(nums, kind="stable")
        dup = np.flatnonzero(nums[order][1:] == nums[order][:-1])
        if dup.size:
            row = int(order[dup[0] + 1])
            raise InputError("bus.bus", f"duplicate bus number {nums[row]}", row=row)
        _check(~np.isin(bus["type"], (PQ, PV, REF, ISOLATED)), "bus.type",
               "must be 1 (PQ), 2 (PV), 3 (reference) or 4 (isolated)")
        _check(bus["vn_kv"] < 0, "bus.vn_kv", "must be >= 0")
        _check(bus["vm_min_pu"] > bus["vm_max_pu"], "bus.vm_min_pu",
               "is above vm_max_pu")
        for table, col in (("branch", "from_bus"), ("branch", "to_bus"), ("gen", "bus"),
                           ("load", "bus")):
            self.bus_position(self._columns[table][col], f"{table}.{col}")
        _check(br["from_bus"] == br["to_bus"], "branch.to_bus",
               "a branch must join two different buses")
        on = br["in_service"]
        _check(on & (br["x_pu"] == 0), "branch.x_pu",
               "is zero on an in-service branch (the DC model needs a reactance)")
        for rate in ("rate_a_mw", "rate_b_mw", "rate_c_mw"):
            _check(br[rate] <= 0, f"branch.{rate}",
                   "must be > 0 (a negative or zero limit; use inf for no limit)")
        _check(br["tap"] <= 0, "branch.tap", "must be > 0")
        _check(br["angmin_deg"] > br["angmax_deg"], "branch.angmin_deg",
               "is above angmax_deg")
        pmax, pmin = gen["p_max_mw"], gen["p_min_mw"]
        _check(pmin > pmax, "gen.p_min_mw", "is above p_max_mw")
        _check(gen["q_min_mvar"] > gen["q_max_mvar"], "gen.q_min_mvar",
               "is above q_max_mvar")
        _check(gen["cost_per_mw2h"] < 0, "gen.cost_per_mw2h",
               "must be >= 0 (a negative quadratic cost is not convex)")
        isolated = bus["type"] == ISOLATED
        if isolated.any():
            for table, col, live in (
                ("branch", "from_bus", on), ("branch", "to_bus", on),
                ("gen", "bus", gen["in_service"]),
                ("load", "bus", np.ones(_length(load), bool)),
            ):
                pos = self.bus_position(self._columns[table][col], f"{table}.{col}")
                _check(live & isolated[pos], f"{table}.{col}",
                       "is an isolated bus (type 4) but the element is in service")
        self._validate_pwl()

    def _validate_pwl(self) -> None:
        pwl = self._columns["pwl_cost"]
        g = pwl["gen"]
        if g.size == 0:
            return
        _check((g < 0) | (g >= self.n_gen), "pwl_cost.gen", "is not a generator row")
        p, c = pwl["p_mw"], pwl["cost_per_h"]
        order = np.lexsort((p, g))
        if not np.array_equal(order, np.arange(g.size)):
            raise InputError("pwl_cost", "rows must be sorted by gen, then increasing p_mw")
        counts = np.bincount(g, minlength=self.n_gen)
        _check(counts[g] < 2, "pwl_cost.gen", "a piecewise cost needs at least 2 breakpoints")
        same = g[1:] == g[:-1]
        dp = np.diff(p)
        _check(np.r_[False, same & (dp <= 0)], "pwl_cost.p_mw", "must increase per generator")
        slope = np.where(same, np.diff(c) / np.where(dp > 0, dp, 1.0), np.nan)
        worse = same[1:] & same[:-1] & (slope[1:] < slope[:-1] - 1e-9 * np.abs(slope[:-1]))
        _check(np.r_[False, False, worse], "pwl_cost.cost_per_h",
               "piecewise cost is not convex (slopes must not decrease)")
        poly = np.column_stack([self.column("gen", c)
                                for c in ("cost_per_mw2h", "cost_per_mwh", "cost_per_h")])
        listed = np.zeros(self.n_gen, bool)
        listed[g] = True
        _check(listed & (poly != 0).any(axis=1), "gen.cost_per_mwh",
               "a generator with a piecewise cost must have zero polynomial costs")

    # ------------------------------------------------------------------ indexing
    @cached_property
    def _lookup(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Bus numbers sorted, and the position of each."""
        order = np.argsort(self.column("bus", "bus"), kind="stable")
        return self.column("bus", "bus")[order], order

    def bus_position(self, numbers: npt.ArrayLike, field: str = "bus") -> npt.NDArray[np.int64]:
        """Positions (rows of ``bus``) of the given bus numbers.

        Raises InputError naming ``field`` and the row of the first unknown bus.
        """
        nums = np.asarray(numbers, dtype=np.int64).ravel()
        known, order = self._lookup
        at = np.searchsorted(known, nums)
        hit = at < known.size
        hit[hit] = known[at[hit]] == nums[hit]
        pos = np.full(nums.size, -1, dtype=np.int64)
        pos[hit] = order[at[hit]]
        if (pos < 0).any():
            row = int(np.flatnonzero(pos < 0)[0])
            raise InputError(field, f"refers to a bus that does not exist: {nums[row]}", row=row)
        return pos

    def column(self, table: str, name: str) -> npt.NDArray[Any]:
        """One validated column as a read-only numpy array (what solvers read).

        Examples
        --------
        >>> Network(bus={"bus": [1]}, branch=None, gen=None, load=None).column("bus", "bus")
        array([1])
        """
        arr = self._columns.get(table, {}).get(name)
        if arr is None:
            raise InputError("column", f"no column {table}.{name}")
        return arr

    @property
    def n_bus(self) -> int:
        """Number of buses."""
        return _length(self._columns["bus"])

    @property
    def n_branch(self) -> int:
        """Number of branches (in service or not)."""
        return _length(self._columns["branch"])

    @property
    def n_gen(self) -> int:
        """Number of generators (in service or not)."""
        return _length(self._columns["gen"])

    @property
    def bus_numbers(self) -> npt.NDArray[np.int64]:
        """Bus numbers in position order (read-only)."""
        return self.column("bus", "bus")

    @cached_property
    def from_position(self) -> npt.NDArray[np.int64]:
        """Bus position of each branch's from end (read-only)."""
        return _readonly(self.bus_position(self.column("branch", "from_bus"), "branch.from_bus"))

    @cached_property
    def to_position(self) -> npt.NDArray[np.int64]:
        """Bus position of each branch's to end (read-only)."""
        return _readonly(self.bus_position(self.column("branch", "to_bus"), "branch.to_bus"))

    @cached_property
    def gen_position(self) -> npt.NDArray[np.int64]:
        """Bus position of each generator (read-only)."""
        return _readonly(self.bus_position(self.column("gen", "bus"), "gen.bus"))

    @cached_property
    def load_position(self) -> npt.NDArray[np.int64]:
        """Bus position of each load (read-only)."""
        return _readonly(self.bus_position(self.column("load", "bus"), "load.bus"))

    @cached_property
    def bus_load_mw(self) -> npt.NDArray[np.float64]:
        """Active load per bus position, MW: loads plus shunt ``gs_mw`` (read-only)."""
        d = np.bincount(self.load_position, weights=self.column("load", "p_mw"),
                        minlength=self.n_bus)
        return _readonly(d + self.column("bus", "gs_mw"))

    @cached_property
    def ref_position(self) -> int:
        """Position of the reference bus: the first bus of type 3; failing that,
        the first bus of type 2 (PV) with an in-service generator, as MATPOWER's
        ``bustypes`` picks one; failing that, the bus of the in-service
        generator with the largest ``p_max_mw``; failing that, bus position 0.
        (:func:`~transactive.grid.dcopf.dcopf` refuses the last two.)

        Examples
        --------
        >>> net = Network(bus={"bus": [1, 2, 3], "type": [1, 2, 2]},
        ...               branch={"from_bus": [1, 2], "to_bus": [2, 3], "x_pu": [0.1, 0.1]},
        ...               gen={"bus": [3, 2], "p_max_mw": [50.0, 10.0]}, load=None)
        >>> net.ref_bus
        2
        """
        ref = np.flatnonzero(self.column("bus", "type") == REF)
        if ref.size:
            return int(ref[0])
        pv = self.pv_with_generator
        if pv.size:
            return int(pv[0])
        on = np.flatnonzero(self.column("gen", "in_service"))
        if on.size:
            return int(self.gen_position[on[np.argmax(self.column("gen", "p_max_mw")[on])]])
        return 0

    @cached_property
    def pv_with_generator(self) -> npt.NDArray[np.int64]:
        """Positions of the buses of type 2 (PV) with an in-service generator,
        in bus order (read-only)."""
        has_gen = np.zeros(self.n_bus, dtype=bool)
        has_gen[self.gen_position[self.column("gen", "in_service")]] = True
        return _readonly(np.flatnonzero((self.column("bus", "type") == PV) & has_gen))

    @property
    def ref_bus(self) -> int:
        """Bus number of the reference (slack) bus, see :attr:`ref_position`."""
        return int(self.bus_numbers[self.ref_position])

    # -------------------------------------------------------------- topology
    @cached_property
    def island_labels(self) -> npt.NDArray[np.int64]:
        """Island label per bus position over in-service branches (read-only).

        Labels are 0, 1, ... with the reference bus's island labelled 0; an
        isolated bus (type 4) gets -1.
        """
        on = self.column("branch", "in_service")
        f, t, n = self.from_position[on], self.to_position[on], self.n_bus
        graph = sp.coo_matrix((np.ones(f.size), (f, t)), shape=(n, n)).tocsr()
        _, labels = connected_components(graph, directed=False)
        labels = labels.astype(np.int64)
        # relabel so the reference island is 0 and others follow by first bus
        _, first = np.unique(labels, return_index=True)
        rank = np.empty_like(first)
        order = np.argsort(first)
        ref_label = labels[self.ref_position]
        order = np.r_[ref_label, order[order != ref_label]]
        rank[order] = np.arange(order.size)
        labels = rank[labels]
        isolated = self.column("bus", "type") == ISOLATED
        if isolated.any():
            labels = np.where(isolated, -1, labels)
            live = np.unique(labels[labels >= 0])
            labels = np.where(labels >= 0, np.searchsorted(live, labels), -1)
        return _readonly(labels)

    def islands(self) -> list[npt.NDArray[np.int64]]:
        """Bus numbers of each island (reference island first); isolated
        (type 4) buses are left out.

        Examples
        --------
        >>> net = Network(bus={"bus": [1, 2, 3], "type": [3, 1, 1]},
        ...               branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]},
        ...               gen={"bus": [1], "p_max_mw": [10.0]}, load={"bus": [3], "p_mw": [1.0]})
        >>> [i.tolist() for i in net.islands()]
        [[1, 2], [3]]
        """
        labels = self.island_labels
        return [self.bus_numbers[labels == k] for k in range(int(labels.max(initial=-1)) + 1)]

    def check_connected(self) -> None:
        """Raise :class:`InputError` naming the islands if the network is split."""
        isl = self.islands()
        if len(isl) > 1:
            parts = "; ".join(
                f"[{', '.join(map(str, i[:8].tolist()))}{', ...' if i.size > 8 else ''}]"
                for i in isl[1:4])
            raise InputError(
                "branch",
                f"the network is split into {len(isl)} islands; buses not connected to the "
                f"reference bus {self.ref_bus}: {parts}{' ...' if len(isl) > 4 else ''}")

    # ----------------------------------------------------------------- deriving
    def replace(self, **changes: Any) -> Network:
        """A new, validated network with some tables or fields replaced.

        Examples
        --------
        >>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
        ...               branch={"from_bus": [1], "to_bus": [2], "x_pu": [0.1]},
        ...               gen={"bus": [1], "p_max_mw": [9.0]}, load={"bus": [2], "p_mw": [4.0]})
        >>> net.replace(load={"bus": [2], "p_mw": [5.0]}).bus_load_mw.tolist()
        [0.0, 5.0]
        """
        fields: dict[str, Any] = {
            **self._columns, "base_mva": self.base_mva, "name": self.name,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise InputError(sorted(unknown)[0], "is not a field of Network")
        fields.update(changes)
        return Network(**fields)

    def __repr__(self) -> str:
        return (f"Network({self.name!r}, {self.n_bus} buses, {self.n_branch} branches, "
                f"{self.n_gen} generators, {_length(self._columns['load'])} loads, "
                f"base {self.base_mva} MVA)")


_TABLES = ("bus", "branch", "gen", "load", "pwl_cost")  # of a Network, as in SCHEMA


class _Table:
    """``Network.bus`` and the other tables: the DataFrame of the validated
    columns, built on first use and then kept by the network."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, net: Network | None, owner: type | None = None) -> Any:
        if net is None:
            return self
        frame = net.__dict__[self.name] = _frame(net._columns[self.name])
        return frame


for _name in _TABLES:  # after @dataclass, which has made its __init__ from the fields
    setattr(Network, _name, _Table(_name))


def _readonly(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return arr


def bus_values(name: str, value: npt.ArrayLike | None, n: int,
               default: npt.ArrayLike | float = 0.0) -> npt.NDArray[np.float64]:
    """One finite value per bus (``default`` where ``value`` is None); an
    :class:`InputError` names ``name`` and the first bad row otherwise."""
    if value is None:
        return np.broadcast_to(np.asarray(default, dtype=np.float64), (n,)).copy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,):
        raise InputError(name, f"must have one value per bus ({n}), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(name, "must be finite", row=int(np.flatnonzero(bad)[0]))
    return arr
