"""The two SQL stores under the ledger: SQLite (default) and PostgreSQL.

Both expose the same five calls to :mod:`transactive.settlement.ledger`, which
owns every rule; this module only knows how to open a database, create the
schema, take the single-writer lock and run statements. SQL is written once
with ``?`` placeholders; the PostgreSQL store rewrites them for psycopg.

- **SQLite** (stdlib ``sqlite3``): WAL journal, ``synchronous=FULL`` (a commit
  is on disk before it returns), foreign keys on, and ``BEGIN IMMEDIATE`` for
  every write so one writer at a time holds the lock for the whole batch. A
  new SQLite ledger keeps ``transfers.seq`` as an ``INTEGER PRIMARY KEY`` (the
  table's own row id: one b-tree less to write per transfer, and a scan in
  posting order reads the table in place); a ledger made before keeps its
  ``BIGINT PRIMARY KEY`` and works unchanged (same columns, same rows).
- **PostgreSQL** (SQLAlchemy + psycopg): every write transaction first locks
  the one row of ``ledger_state`` (``SELECT ... FOR UPDATE``), which serialises
  writers exactly like SQLite's write lock; reads run at REPEATABLE READ.

Two calls exist for bulk work and differ by dialect behind one contract:
:meth:`Store.in_list` (a condition ``column IN <the values>``: a list of
parameters, at most :attr:`Store.in_chunk` of them, on SQLite; one array
parameter, ``= ANY(?)``, on PostgreSQL) and :meth:`Store.try_executemany`
(many rows under a savepoint, undone and answered ``False`` if one of them
breaks a constraint).
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from transactive.errors import InputError, MissingExtraError

__all__ = ["PostgresStore", "SQLiteStore", "Store", "open_store"]

SCHEMA_VERSION = 1

_TABLES = (
    """CREATE TABLE IF NOT EXISTS ledger_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        seq BIGINT NOT NULL,
        head TEXT NOT NULL,
        cursor BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        unit TEXT NOT NULL,
        allow_negative INTEGER NOT NULL CHECK (allow_negative IN (0, 1)),
        debits BIGINT NOT NULL DEFAULT 0,
        credits BIGINT NOT NULL DEFAULT 0,
        CHECK (allow_negative = 1 OR credits >= debits))""",
    """CREATE TABLE IF NOT EXISTS transfers (
        seq {seq_type} PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        debit TEXT NOT NULL REFERENCES accounts (id),
        credit TEXT NOT NULL REFERENCES accounts (id),
        amount BIGINT NOT NULL CHECK (amount > 0),
        code TEXT NOT NULL,
        interval_no BIGINT NOT NULL)""",
)

# Nothing is edited: the database itself refuses to change or delete a transfer.
_SQLITE_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS transfers_no_update BEFORE UPDATE ON transfers
    BEGIN SELECT RAISE(ABORT, 'transfers are immutable'); END""",
    """CREATE TRIGGER IF NOT EXISTS transfers_no_delete BEFORE DELETE ON transfers
    BEGIN SELECT RAISE(ABORT, 'transfers are immutable'); END""",
)
_POSTGRES_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION transactive_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'transfers are immutable'; END $$""",
    """CREATE OR REPLACE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION transactive_immutable()""",
)

_INIT_STATE = (
    "INSERT INTO ledger_state (id, version, seq, head, cursor) VALUES (1, ?, 0, ?, 0) "
    "ON CONFLICT (id) DO NOTHING"
)
GENESIS = "0" * 64
_ONE_ROW = re.compile(r"^(INSERT INTO .* VALUES )(\([?, ]+\))$", re.DOTALL)
_ROWS = 100  # rows per INSERT statement on SQLite (well inside its 999 parameters)


class Store(ABC):
    """One connection to a ledger database (not shared between threads)."""

    dialect: str = ""
    location: str = ""
    seq_type: str = "BIGINT"  # the type of transfers.seq in a new database
    in_chunk: int = 500  # at most this many values in one in_list

    @abstractmethod
    def begin_write(self) -> None:
        """Start a transaction holding the single-writer lock."""
        ...

    @abstractmethod
    def begin_read(self) -> None:
        """Start a transaction that sees one consistent snapshot."""
        ...

    @abstractmethod
    def commit(self) -> None:
        ...

    @abstractmethod
    def rollback(self) -> None:
        ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        ...

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        ...

    @abstractmethod
    def try_executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> bool:
        """Run ``sql`` for every row inside the open transaction, under a
        savepoint: ``True`` if all went in; ``False``, with none of them kept
        and the transaction still usable, if one broke a constraint."""
        ...

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A condition ``column IN values`` with its parameters (at most
        :attr:`in_chunk` values).

        Examples
        --------
        >>> SQLiteStore(":memory:").in_list("id", ["a", "b"])
        ('id IN (?,?)', ['a', 'b'])
        """
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    @abstractmethod
    def close(self) -> None:
        ...

    def create_schema(self, triggers: Sequence[str]) -> None:
        self.begin_write_unlocked()
        try:
            for statement in (*_TABLES, *triggers):
                self.execute(statement.replace("{seq_type}", self.seq_type))
            self.execute(_INIT_STATE, (SCHEMA_VERSION, GENESIS))
            version = self.query("SELECT version FROM ledger_state WHERE id = 1")[0][0]
            if version != SCHEMA_VERSION:
                raise InputError("ledger", f"schema version {version} is not supported "
                                 f"(this transactive writes version {SCHEMA_VERSION})")
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def begin_write_unlocked(self) -> None:
        """Start a write transaction before the state row exists."""
        self.begin_write()


class SQLiteStore(Store):
    """SQLite in WAL mode with ``synchronous=FULL``; ``":memory:"`` for a scratch ledger."""

    dialect = "sqlite"
    seq_type = "INTEGER"  # the row id itself

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.location = path
        if path != ":memory:":
            file = Path(path)
            if not create and not file.exists():
                raise InputError("ledger", f"no ledger database at {path}")
            if create:
                file.parent.mkdir(parents=True, exist_ok=True)
        try:
            # a concurrent Settlement commits on a thread of its own, one block at
            # a time, never while another thread uses the connection
            self._db = sqlite3.connect(path, isolation_level=None, timeout=60.0,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not create and not self.query(
                "SELECT name FROM sqlite_master WHERE name = 'ledger_state'"
            ):
                self._db.close()
                raise InputError("ledger", f"{path} is not a transactive ledger")
        except sqlite3.DatabaseError as exc:
            raise InputError("ledger", f"cannot open {path} as a SQLite ledger: {exc}") from None
        self.create_schema(_SQLITE_TRIGGERS)

    def begin_write(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        self._db.execute("BEGIN DEFERRED")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        match = _ONE_ROW.match(sql)
        if match is None:
            self._db.executemany(sql, rows)
            return
        # an INSERT of many rows: _ROWS rows a statement (fewer steps, the same rows)
        batch = rows if isinstance(rows, list) else list(rows)
        whole = len(batch) - len(batch) % _ROWS
        if whole:
            self._db.executemany(match[1] + ",".join([match[2]] * _ROWS), [
                tuple(chain.from_iterable(batch[i:i + _ROWS])) for i in range(0, whole, _ROWS)])
        if whole < len(batch):
            self._db.executemany(sql, batch[whole:])

    def try_executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> bool:
        self._db.execute("SAVEPOINT bulk")
        try:
            self.executemany(sql, rows)
        except sqlite3.IntegrityError:
            self._db.execute("ROLLBACK TO SAVEPOINT bulk")
            self._db.execute("RELEASE SAVEPOINT bulk")
            return False
        except BaseException:
            self._db.execute("ROLLBACK TO SAVEPOINT bulk")
            self._db.execute("RELEASE SAVEPOINT bulk")
            raise
        self._db.execute("RELEASE SAVEPOINT bulk")
        return True

    def close(self) -> None:
        self._db.close()


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresStore(Store):
    """PostgreSQL through SQLAlchemy and psycopg (the ``postgres`` extra)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, schema: str | None = None, create: bool = True) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise MissingExtraError("sqlalchemy", "postgres") from None
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise MissingExtraError("psycopg", "postgres") from None
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise InputError("schema", f"must match {_SCHEMA_NAME.pattern}, got {schema!r}")
        driver_url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)
        self.location = re.sub(r"://[^@/]*@", "://***@", driver_url)
        self._integrity_error = sa.exc.IntegrityError
        try:
            self._engine = sa.create_engine(driver_url, poolclass=sa.pool.NullPool)
            self._conn = self._engine.connect()
        except (sa.exc.ArgumentError, sa.exc.OperationalError) as exc:
            raise InputError("ledger", f"cannot connect to {self.location}: "
                             f"{str(exc).splitlines()[0]}") from None
        self._tx: Any = None
        if schema is not None:
            self._conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self._conn.exec_driver_sql(f'SET search_path TO "{schema}"')
            self._conn.commit()
        if not create:
            found = self.query("SELECT to_regclass('ledger_state') IS NOT NULL")[0][0]
            self._conn.rollback()
            if not found:
                raise InputError("ledger", f"{self.location} holds no transactive ledger")
        self.create_schema(_POSTGRES_TRIGGERS)

    def begin_write_unlocked(self) -> None:
        self._tx = self._conn.begin()
        # Serialise concurrent schema creation on a fresh database.
        self._conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7204161)")

    def begin_write(self) -> None:
        self._tx = self._conn.begin()
        self._conn.exec_driver_sql("SELECT seq FROM ledger_state WHERE id = 1 FOR UPDATE")

    def begin_read(self) -> None:
        self._tx = self._conn.begin()
        self._conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def commit(self) -> None:
        self._tx.commit()
        self._tx = None

    def rollback(self) -> None:
        if self._tx is not None:
            self._tx.rollback()
            self._tx = None
        elif self._conn.in_transaction():
            self._conn.rollback()

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self._conn.exec_driver_sql(self._sql(sql), tuple(params))
        return [tuple(row) for row in result.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.exec_driver_sql(self._sql(sql) if params else sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            self._conn.exec_driver_sql(self._sql(sql), batch)

    def try_executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> bool:
        batch = [tuple(r) for r in rows]
        if not batch:
            return True
        nested = self._conn.begin_nested()  # a SAVEPOINT inside the open transaction
        try:
            self._conn.exec_driver_sql(self._sql(sql), batch)
        except self._integrity_error:
            nested.rollback()
            return False
        except BaseException:
            nested.rollback()
            raise
        nested.commit()
        return True

    in_chunk = 1 << 20

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def close(self) -> None:
        self.rollback()
        self._conn.close()
        self._engine.dispose()


def open_store(target: str | Path, *, schema: str | None = None, create: bool = True) -> Store:
    """A SQLite store for a path (or ``sqlite:///path``, ``":memory:"``), a
    PostgreSQL store for a ``postgresql://`` URL."""
    text = str(target)
    if re.match(r"^postgres(ql)?(\+\w+)?://", text):
        return PostgresStore(text, schema=schema, create=create)
    if schema is not None:
        raise InputError("schema", "only a PostgreSQL ledger has schemas")
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):] or ":memory:"
    elif "://" in text:
        raise InputError("ledger", f"unsupported database URL {text!r} "
                         "(use a file path, sqlite:///path or postgresql://...)")
    return SQLiteStore(text, create=create)
