"""Statements: one row per participant and interval, written as they are settled.

A statement row has the columns of :data:`STATEMENT_COLUMNS` (see
:mod:`~transactive.settlement.rules` for each line). :class:`StatementRows`
holds rows in columns, in settlement order (interval by interval, each
interval's participants in order); :class:`StatementWriter` appends them to a
file, and :func:`read_statements` / :func:`iter_statements` read any of the
three forms back as a DataFrame with those columns.

Files
-----
``statements.csv`` (:data:`STATEMENTS_FILE`)
    The plain CSV, header first, the columns of :data:`STATEMENT_COLUMNS`.
``statements.csv.gz`` (:data:`STATEMENTS_GZ_FILE`)
    The same CSV through one gzip stream (RFC 1952, level :data:`GZIP_LEVEL`,
    no file name and a zero time stamp in its header, so the same run writes
    the same bytes).
``statements.parquet`` (:data:`STATEMENTS_PARQUET_FILE`)
    Apache Parquet, the compact form for long runs: one row group per write
    (a day of a simulated run), zstd level :data:`PARQUET_ZSTD_LEVEL`. Every
    value of the statement is kept, in integers where the statement has them;
    what a statement derives is left out and recomputed on reading. Its
    columns, in order:

    - ``interval`` (int64); ``participant`` (dictionary-encoded text);
    - the posted whole units (int64): ``metered_wh``, ``imbalance_wh``,
      ``market_wh``, ``market_cents``, ``utility_cents``, ``imbalance_cents``,
      ``grid_fee_cents``, ``carbon_cents``;
    - their exact amounts in millionths (int64), in the same order:
      ``metered_exact_uwh``, ``imbalance_exact_uwh``, ``market_exact_uwh``,
      ``market_exact_ucents``, ``utility_exact_ucents``,
      ``imbalance_exact_ucents``, ``grid_fee_exact_ucents``,
      ``carbon_exact_ucents``;
    - the rates (float64): ``utility_price_per_kwh``,
      ``imbalance_price_per_kwh``, ``grid_fee_per_kwh``.

    The schema's metadata key ``transactive.statements`` holds
    ``{"version": 1, "grid_fee": "flat"}`` (or ``"locational"``). The
    statement columns are then ``planned_wh = metered_wh - imbalance_wh``,
    ``utility_wh = planned_wh - market_wh``, ``grid_fee_wh = max(market_wh, 0)``
    (``"flat"``) or ``market_wh`` (``"locational"``), ``energy_cents = market +
    utility + imbalance cents``, ``total_cents = energy + grid fee + carbon
    cents``, each ``*_exact_*`` column the millionths divided by 10**6 (and
    ``planned_exact_wh`` from ``metered - imbalance``).

    The integer columns are stored byte-stream-split, so that zstd sees the
    near-constant high bytes apart from the random low ones. Measured on the
    default scenario with 1,000 households: 15.5 bytes a row over a year
    (35 million rows, 519 MiB); on its 50-household week 16.1, against 21.6
    for the gzip-ed CSV of the same rows. On a week of those rows
    replicated to 1,000 households with noise, the exact amounts stored as
    remainders of the posted units take 17.0 bytes a row against 15.9, and zstd
    level 1 takes 18.8 in about the same time (the encoding, not the
    compression, takes most of it); without the byte-stream split 19.2 (level
    1). Level 2 writes the default scenario's days in the size of level 3
    (15.53 bytes a row against 15.54) in a fifth less time (the same days, 19
    against 24 ms a day, median of 6 runs on a busy machine). Writing a day of
    1,000 households takes about 15 ms of CPU at level 2 (required columns, so
    no definition levels; the rates without a dictionary, which
    zstd makes redundant: 19 ms with one, the same size; no column
    statistics but the interval's, 8 MiB pages, a day's values handed to each
    column's encoder at once rather than 1,024 at a time), on a thread of its
    own while settlement goes on (:class:`StatementWriter`), against about
    1.3 s to format the same rows as CSV.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError
from transactive.settlement.amounts import EXACT_COLUMNS, MICRO, ROUNDED

__all__ = ["GZIP_LEVEL", "PARQUET_ZSTD_LEVEL", "STATEMENTS_FILE", "STATEMENTS_GZ_FILE",
           "STATEMENTS_PARQUET_FILE", "STATEMENT_COLUMNS", "SUMMED_COLUMNS", "StatementRows",
           "StatementWriter", "iter_statements", "read_statements", "statement_totals",
           "statements_path"]

STATEMENTS_FILE = "statements.csv"
#: The statements as one gzip-ed CSV stream (runs settled by day before Parquet).
STATEMENTS_GZ_FILE = "statements.csv.gz"
#: The statements of a run settled by day: Parquet, one row group a day.
STATEMENTS_PARQUET_FILE = "statements.parquet"

#: zlib level of gzip-ed statements (gzip's default): within 3 % of the smallest
#: at a quarter of level 9's time.
GZIP_LEVEL = 6
#: zstd level of Parquet statements: 15.9 bytes a row against 18.8 at level 1 (on
#: the same rows), in about the same time (the encoding takes most of it); the
#: size of level 3 in a fifth less time.
PARQUET_ZSTD_LEVEL = 2

GridFeeMode = Literal["flat", "locational"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Columns of a statement, one row per participant and interval.
STATEMENT_COLUMNS = (
    "interval", "participant", "metered_wh", "planned_wh", "market_wh", "market_cents",
    "utility_wh", "utility_price_per_kwh", "utility_cents", "imbalance_wh",
    "imbalance_price_per_kwh", "imbalance_cents", "energy_cents", "grid_fee_wh",
    "grid_fee_per_kwh", "grid_fee_cents", "carbon_cents", "total_cents", *EXACT_COLUMNS,
)
_RATES = ("utility_price_per_kwh", "imbalance_price_per_kwh", "grid_fee_per_kwh")


@dataclass(frozen=True, eq=False)
class StatementRows:
    """Statement rows in columns: row ``r`` is participant ``labels[code[r]]`` in
    interval ``interval[r]``, rows in settlement order.

    ``posted`` and ``exact_micro`` are (:data:`~transactive.settlement.amounts.ROUNDED`
    x rows): the whole units posted and the exact amounts in millionths; the
    rates are per row; ``grid_fee`` says how the grid-fee energy is counted
    (see :mod:`~transactive.settlement.rules`).

    Examples
    --------
    >>> rows = StatementRows.from_columns(
    ...     interval=np.array([0, 0]), participant=np.array(["a", "b"]),
    ...     posted=np.array([[50, -20], [50, -20], [0, 0], [0, 0], [15, -1], [0, 0], [0, 0],
    ...                      [0, 0]]), exact_micro=np.zeros((8, 2), dtype=np.int64),
    ...     utility_price_per_kwh=np.array([0.3, 0.05]), imbalance_price_per_kwh=np.zeros(2),
    ...     grid_fee_per_kwh=np.zeros(2))
    >>> rows.frame()[["participant", "utility_wh", "total_cents"]].values.tolist()
    [['a', 50, 15], ['b', -20, -1]]
    """

    interval: IntArray
    labels: npt.NDArray[Any]
    code: npt.NDArray[np.intp]
    posted: IntArray
    exact_micro: IntArray
    utility_price_per_kwh: FloatArray
    imbalance_price_per_kwh: FloatArray
    grid_fee_per_kwh: FloatArray
    grid_fee: GridFeeMode = "flat"

    @classmethod
    def from_columns(cls, *, interval: IntArray, participant: npt.NDArray[Any],
                     posted: IntArray, exact_micro: IntArray,
                     utility_price_per_kwh: FloatArray, imbalance_price_per_kwh: FloatArray,
                     grid_fee_per_kwh: FloatArray, grid_fee: GridFeeMode = "flat"
                     ) -> StatementRows:
        """Rows from one label per row (the labels are factorized)."""
        code, labels = pd.factorize(participant)
        return cls(np.asarray(interval, dtype=np.int64), np.asarray(labels),
                   code.astype(np.intp), posted, exact_micro, utility_price_per_kwh,
                   imbalance_price_per_kwh, grid_fee_per_kwh, grid_fee)

    def __len__(self) -> int:
        return int(self.interval.size)

    @property
    def participant(self) -> npt.NDArray[Any]:
        """The label of each row."""
        return self.labels[self.code]

    def column(self, name: str) -> npt.NDArray[Any]:
        """The values of statement column ``name`` (of :data:`STATEMENT_COLUMNS`)."""
        p = dict(zip(ROUNDED, self.posted, strict=True))
        if name in p:
            return p[name]
        if name in EXACT_COLUMNS:
            return self.exact_micro[EXACT_COLUMNS.index(name)] / MICRO
        if name in (*_RATES, "interval", "participant"):
            return np.asarray(getattr(self, name))
        if name == "utility_wh":
            return p["planned_wh"] - p["market_wh"]
        if name == "imbalance_wh":
            return p["metered_wh"] - p["planned_wh"]
        if name == "grid_fee_wh":
            return (np.maximum(p["market_wh"], 0) if self.grid_fee == "flat"
                    else p["market_wh"].copy())
        energy = p["market_cents"] + p["utility_cents"] + p["imbalance_cents"]
        if name == "energy_cents":
            return energy
        if name == "total_cents":
            return energy + p["grid_fee_cents"] + p["carbon_cents"]
        raise InputError("columns", f"no statement column {name!r}")

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows as a DataFrame with the columns of :data:`STATEMENT_COLUMNS`
        (or ``columns`` of them)."""
        names = list(STATEMENT_COLUMNS if columns is None else columns)
        if not len(self):
            return pd.DataFrame(columns=names)
        return pd.DataFrame({name: self.column(name) for name in names}, columns=names)

    @staticmethod
    def concat(parts: Sequence[StatementRows]) -> StatementRows:
        """The rows of ``parts``, one after the other."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            empty = np.zeros(0)
            return StatementRows(empty.astype(np.int64), np.array([], dtype=object),
                                 empty.astype(np.intp), np.zeros((len(ROUNDED), 0), np.int64),
                                 np.zeros((len(ROUNDED), 0), np.int64), empty, empty, empty)
        if len({p.grid_fee for p in parts}) > 1:
            raise InputError("grid_fee", "statement rows of one file share one grid-fee mode")
        return StatementRows.from_columns(
            interval=np.concatenate([p.interval for p in parts]),
            participant=np.concatenate([p.participant for p in parts]),
            posted=np.concatenate([p.posted for p in parts], axis=1),
            exact_micro=np.concatenate([p.exact_micro for p in parts], axis=1),
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _RATES},
            grid_fee=parts[0].grid_fee)


# ------------------------------------------------------------------ Parquet form
#: The Parquet file's posted and exact columns, in the order of ROUNDED (the
#: planned line is stored as the imbalance, metered - planned).
_STORED = ("metered_wh", "imbalance_wh", "market_wh", "market_cents", "utility_cents",
           "imbalance_cents", "grid_fee_cents", "carbon_cents")
_STORED_EXACT = tuple("{}_exact_u{}".format(*name.rsplit("_", 1)) for name in _STORED)
_META_KEY = b"transactive.statements"
_PAGE_BYTES = 8 << 20
#: Values handed to a column's encoder at a time (pyarrow's default: 1,024): a
#: day of 1,000 households (96,096 rows) at once, about a tenth less CPU, the
#: same bytes (a page still ends only past _PAGE_BYTES).
_BATCH_ROWS = 1 << 17


def _stored(lines: IntArray) -> IntArray:
    """Lines in ROUNDED order (lines x rows) -> the stored order (planned -> imbalance)."""
    out = lines.copy()
    out[1] = lines[0] - lines[1]
    return out


class _ParquetSink:
    """Row groups appended to a Parquet file, each written on a worker thread
    while the caller goes on (at most one waiting)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: Any = None
        self._grid_fee: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="statements")
        self._last: Future[None] | None = None

    def _open(self, grid_fee: str) -> Any:
        import pyarrow as pa  # heavy: only runs that write Parquet load it
        import pyarrow.parquet as pq

        # every value is present: required columns carry no definition levels
        # (the same data, written faster; see the module docstring)
        fields = [pa.field("interval", pa.int64(), nullable=False),
                  pa.field("participant", pa.dictionary(pa.int32(), pa.string()),
                           nullable=False)]
        fields += [pa.field(name, pa.int64(), nullable=False)
                   for name in (*_STORED, *_STORED_EXACT)]
        fields += [pa.field(name, pa.float64(), nullable=False) for name in _RATES]
        meta = {_META_KEY: json.dumps({"version": 1, "grid_fee": grid_fee}).encode()}
        self._schema = pa.schema(fields, metadata=meta)
        self._grid_fee = grid_fee
        return pq.ParquetWriter(
            self.path, self._schema, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL,
            use_dictionary=["participant"], write_statistics=["interval"],
            column_encoding={name: "BYTE_STREAM_SPLIT" for name in (*_STORED, *_STORED_EXACT)},
            data_page_size=_PAGE_BYTES, dictionary_pagesize_limit=_PAGE_BYTES,
            write_batch_size=_BATCH_ROWS)

    def write(self, rows: StatementRows) -> None:
        import pyarrow as pa

        if self._writer is None:
            self._writer = self._open(rows.grid_fee)
        elif rows.grid_fee != self._grid_fee:
            raise InputError("grid_fee", "statement rows of one file share one grid-fee mode")
        labels = pa.array(np.asarray(rows.labels).astype(str))
        columns = [pa.array(rows.interval.astype(np.int64, copy=False)),
                   pa.DictionaryArray.from_arrays(pa.array(rows.code.astype(np.int32)), labels)]
        for lines in (rows.posted, rows.exact_micro):  # planned stored as metered - planned
            columns += [pa.array(np.ascontiguousarray(lines[j] if j != 1 else
                                                      lines[0] - lines[1]))
                        for j in range(len(_STORED))]
        columns += [pa.array(np.asarray(getattr(rows, name), dtype=np.float64))
                    for name in _RATES]
        table = pa.Table.from_arrays(columns, schema=self._schema)
        self.wait()
        self._last = self._pool.submit(self._writer.write_table, table,
                                       row_group_size=max(len(rows), 1))

    def wait(self) -> None:
        """Wait for the row group being written (and raise what it raised)."""
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()
            if self._writer is None:
                self._writer = self._open("flat")  # an empty file still has its schema
            self._writer.close()


def _parquet_rows(path: Path, wanted: Sequence[str]) -> Iterator[StatementRows]:
    """The statement rows of a Parquet statements file, one row group at a time,
    with what the ``wanted`` statement columns need (the other lines zero)."""
    import pyarrow.parquet as pq

    unknown = [c for c in wanted if c not in STATEMENT_COLUMNS]
    if unknown:
        raise InputError("columns", f"no statement column {unknown[0]!r}")
    with pq.ParquetFile(path) as f:
        meta = f.schema_arrow.metadata or {}
        if _META_KEY not in meta:
            raise InputError("statements", f"{path} is not a statements file (no "
                             f"{_META_KEY.decode()} metadata)")
        grid_fee = json.loads(meta[_META_KEY])["grid_fee"]
        stored = _stored_columns(wanted)
        for g in range(f.num_row_groups):
            yield _row_group(f.read_row_group(g, columns=stored), stored, grid_fee)


def _row_group(table: Any, stored: Sequence[str], grid_fee: GridFeeMode) -> StatementRows:
    """The statement rows of one row group read as ``stored`` columns (a
    pyarrow Table); what was not read is zero."""
    n = table.num_rows

    def column(name: str, dtype: type = np.int64) -> npt.NDArray[Any]:
        return table.column(name).to_numpy() if name in stored else np.zeros(n, dtype=dtype)

    def lines(names: tuple[str, ...]) -> IntArray:
        """Stored lines in ROUNDED order (zeros, not copied, if none was read)."""
        if not any(c in stored for c in names):
            return np.broadcast_to(np.zeros((1, 1), dtype=np.int64), (len(names), n))
        return _stored(np.stack([column(c) for c in names]))

    labels, code = np.zeros(0, dtype=object), np.zeros(n, dtype=np.intp)
    if "participant" in stored:
        part = table.column("participant").combine_chunks()
        labels = part.dictionary.to_numpy(zero_copy_only=False).astype(object)
        code = part.indices.to_numpy().astype(np.intp)
    return StatementRows(column("interval"), labels, code, lines(_STORED), lines(_STORED_EXACT),
                         column("utility_price_per_kwh", np.float64),
                         column("imbalance_price_per_kwh", np.float64),
                         column("grid_fee_per_kwh", np.float64), grid_fee=grid_fee)


#: The statement columns each stored column of the Parquet form is needed for
#: (the others: the stored column of the same name).
_LINE_USES = {
    "metered_wh": ("metered_wh", "planned_wh", "utility_wh"),
    "imbalance_wh": ("planned_wh", "utility_wh", "imbalance_wh"),
    "market_wh": ("market_wh", "utility_wh", "grid_fee_wh"),
    "market_cents": ("market_cents", "energy_cents", "total_cents"),
    "utility_cents": ("utility_cents", "energy_cents", "total_cents"),
    "imbalance_cents": ("imbalance_cents", "energy_cents", "total_cents"),
    "grid_fee_cents": ("grid_fee_cents", "total_cents"),
    "carbon_cents": ("carbon_cents", "total_cents"),
    "metered_exact_uwh": ("metered_exact_wh", "planned_exact_wh"),
    "imbalance_exact_uwh": ("planned_exact_wh",),
}


def _stored_columns(wanted: Sequence[str]) -> list[str]:
    """The stored columns of the Parquet form that ``wanted`` statement columns need."""
    exact = dict(zip(_STORED_EXACT, (*EXACT_COLUMNS[:1], "", *EXACT_COLUMNS[2:]),
                     strict=True))
    needed = []
    for name in ("interval", "participant", *_STORED, *_STORED_EXACT, *_RATES):
        uses = _LINE_USES.get(name, (exact.get(name, name),))
        if any(u in wanted for u in uses):
            needed.append(name)
    return needed


# ------------------------------------------------------------------ CSV forms
class _CsvSink:
    """Rows appended to a CSV file, gzip-ed if its name ends in ``.gz``."""

    def __init__(self, path: Path) -> None:
        self._raw: IO[bytes] | None = None
        if path.suffix == ".gz":
            self._raw = path.open("wb")
            binary = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw,
                                   compresslevel=GZIP_LEVEL, mtime=0)
            self._file: IO[str] = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        else:
            self._file = path.open("w", encoding="utf-8", newline="")
        self._file.write(",".join(STATEMENT_COLUMNS) + "\n")

    def write(self, rows: StatementRows) -> None:
        rows.frame().to_csv(self._file, header=False, index=False, lineterminator="\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._raw is not None and not self._raw.closed:
            self._raw.close()


class StatementWriter:
    """Append statement rows to ``path``: CSV (``.csv``), gzip-ed CSV
    (``.csv.gz``) or Parquet (``.parquet``), as the module docstring specifies.

    Parquet row groups are written on a worker thread, so :meth:`write`
    returns while the previous one may still be written; :meth:`close`
    waits for it, and an error writing one is raised by the next call.

    Examples
    --------
    >>> import tempfile
    >>> from transactive.settlement.rules import IntervalPrices, compute_lines, statement_rows
    >>> lines = compute_lines(0, None, ["a", "b"], [0.5, -0.2], IntervalPrices(0.3, 0.05))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("statements.csv.gz", "statements.parquet"):
    ...         with StatementWriter(f"{tmp}/{name}") as out:
    ...             out.write(statement_rows([lines]))
    ...         print(name, read_statements(f"{tmp}/{name}")["total_cents"].tolist())
    statements.csv.gz [15, -1]
    statements.parquet [15, -1]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".gz", ".parquet"):
            raise InputError("statements", f"must end in .csv, .csv.gz or .parquet, "
                             f"got {self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink: _CsvSink | _ParquetSink = (_ParquetSink(self.path)
                                               if self.path.suffix == ".parquet"
                                               else _CsvSink(self.path))
        self.rows = 0
        self._closed = False

    def write(self, rows: StatementRows) -> None:
        """Append ``rows`` (after the rows written before)."""
        if len(rows):
            self._sink.write(rows)
            self.rows += len(rows)

    def close(self) -> None:
        """Finish the file (wait for the last row group, flush and close)."""
        if not self._closed:
            self._closed = True
            self._sink.close()

    def __enter__(self) -> StatementWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# ------------------------------------------------------------------ reading
def statements_path(run_dir: str | Path) -> Path | None:
    """The statements file of a run folder (``statements.csv``,
    ``statements.parquet`` or ``statements.csv.gz``), or None if the run was
    not settled."""
    for name in (STATEMENTS_FILE, STATEMENTS_PARQUET_FILE, STATEMENTS_GZ_FILE):
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None


def _source(source: str | Path) -> Path:
    path = Path(source)
    if path.is_dir():
        found = statements_path(path)
        if found is None:
            raise InputError("run_dir", f"no statements in {path}: the run was not settled")
        return found
    if not path.is_file():
        raise InputError("statements", f"no such file: {path}")
    return path


def iter_statements(source: str | Path, columns: Sequence[str] | None = None, *,
                    chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """The statement rows of a run folder or statements file, a part at a time:
    a day (a Parquet row group) or ``chunk_rows`` rows of a CSV. ``columns``
    (default all of :data:`STATEMENT_COLUMNS`) selects columns. For a year of
    statements, which does not fit in memory as one frame."""
    path = _source(source)
    if path.suffix == ".parquet":
        wanted = list(STATEMENT_COLUMNS if columns is None else columns)
        for rows in _parquet_rows(path, wanted):
            yield rows.frame(wanted)
        return
    usecols = None if columns is None else list(columns)
    with pd.read_csv(path, usecols=usecols, chunksize=chunk_rows,
                     float_precision="round_trip") as reader:
        for chunk in reader:
            yield chunk if usecols is None else chunk.reindex(columns=usecols)


def read_statements(source: str | Path, columns: Sequence[str] | None = None
                    ) -> pd.DataFrame:
    """The statements of a run folder (or a statements file) as one DataFrame:
    one row per participant and interval, in settlement order, the columns of
    :data:`STATEMENT_COLUMNS` (or ``columns`` of them), whichever form the file
    has (CSV, gzip-ed CSV, Parquet). Exact amounts read back exactly (the
    millionths divided by 10**6, as written).

    Examples
    --------
    >>> import tempfile
    >>> from transactive.settlement.rules import IntervalPrices, compute_lines, statement_rows
    >>> with tempfile.TemporaryDirectory() as run:
    ...     with StatementWriter(f"{run}/{STATEMENTS_PARQUET_FILE}") as out:
    ...         out.write(statement_rows([compute_lines(
    ...             0, None, ["a"], [0.0014], IntervalPrices(0.3, 0.05))]))
    ...     read_statements(run, ["participant", "metered_wh", "metered_exact_wh"])
      participant  metered_wh  metered_exact_wh
    0           a           1               1.4
    """
    path = _source(source)
    if path.suffix != ".parquet":
        usecols = None if columns is None else list(columns)
        frame = pd.read_csv(path, usecols=usecols, float_precision="round_trip")
        return frame if usecols is None else frame.reindex(columns=usecols)
    parts = list(iter_statements(path, columns))
    if not parts:
        return pd.DataFrame(columns=list(STATEMENT_COLUMNS if columns is None else columns))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


#: The statement columns :func:`statement_totals` sums (whole Wh and cents).
SUMMED_COLUMNS = tuple(c for c in STATEMENT_COLUMNS[2:]
                       if c.endswith(("_wh", "_cents")) and "_exact_" not in c)


def statement_totals(source: str | Path, columns: Sequence[str] = SUMMED_COLUMNS
                     ) -> pd.DataFrame:
    """Each participant's statement lines summed over a run folder's (or a
    statements file's) rows: one row per participant, in order of first
    appearance, the ``columns`` of :data:`SUMMED_COLUMNS` (int64, Wh and cents).
    Read a day (or a million CSV rows) at a time, so a year's statements sum
    in the memory of a day.

    Examples
    --------
    >>> import tempfile
    >>> from transactive.settlement.rules import IntervalPrices, compute_lines, statement_rows
    >>> with tempfile.TemporaryDirectory() as run:
    ...     with StatementWriter(f"{run}/{STATEMENTS_PARQUET_FILE}") as out:
    ...         for k in range(3):
    ...             out.write(statement_rows([compute_lines(
    ...                 k, None, ["a", "b"], [0.05, -0.2], IntervalPrices(0.3, 0.05))]))
    ...     totals = statement_totals(run, ["metered_wh", "total_cents"])
    >>> totals.index.tolist(), totals["metered_wh"].tolist(), totals["total_cents"].tolist()
    (['a', 'b'], [150, -600], [6, -3])
    """
    names = list(columns)
    bad = [c for c in names if c not in SUMMED_COLUMNS]
    if bad:
        raise InputError("columns", f"{bad[0]!r} is not a summed statement column (one of "
                         f"{', '.join(SUMMED_COLUMNS)})")
    path = _source(source)
    index: dict[Any, int] = {}
    parts: list[tuple[npt.NDArray[np.intp], IntArray]] = []  # rows of `index`, their sums
    if path.suffix == ".parquet":
        labels, at = np.zeros(0, dtype=object), np.zeros(0, dtype=np.intp)
        for rows in _parquet_rows(path, ["participant", *names]):
            if not np.array_equal(rows.labels, labels):  # a run's days share their labels
                labels = rows.labels
                at = np.array([index.setdefault(p, len(index)) for p in labels.tolist()],
                              dtype=np.intp)
            # a day's sums of whole units: exact in double precision (far below 2**53)
            parts.append((at, np.column_stack([
                np.bincount(rows.code, weights=rows.column(name), minlength=at.size)
                for name in names]).round().astype(np.int64)))
    else:
        for chunk in iter_statements(path, ["participant", *names]):
            per = chunk.groupby("participant", sort=False)[names].sum()
            at = np.array([index.setdefault(p, len(index)) for p in per.index.tolist()],
                          dtype=np.intp)
            parts.append((at, per.to_numpy(dtype=np.int64)))
    total = np.zeros((len(index), len(names)), dtype=np.int64)
    for at, sums in parts:
        total[at] += sums
    return pd.DataFrame(total, index=pd.Index(list(index), name="participant"), columns=names)
