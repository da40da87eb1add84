"""SQLite: one file, one writer, ``sqlite3`` underneath, rows that may skip Python entirely.

* Files are opened by absolute path (relative to the manifest) with a 30 s busy
  timeout (``lock_timeout_seconds`` overrides it) and explicit transactions
  (``BEGIN``/``COMMIT`` are issued by the engine, never implicitly). A source
  file is opened read-only and must exist.
* A write transaction locks the whole file, and another file can be ``ATTACH``-ed
  to the target connection: both shape the fill path.
* The load transaction itself serializes loads (the ledger claim takes the write
  lock), so no extra lock is needed.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpone_core.clock import utc_now_iso
from dpone_core.executor.transfer.dialects import sqlite_catalog
from dpone_core.executor.transfer.dialects.base import BatchWriter, Dialect, Rows
from dpone_core.executor.transfer.errors import TransferFailed
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import SourceColumn, SourceShape, TargetShape
from dpone_core.executor.transfer.typemap import (
    TO_SQLITE,
    ColumnType,
    Family,
    sqlite_decimal_type,
)

if TYPE_CHECKING:
    from dpone_core.executor.transfer.connections import Endpoint
    from dpone_core.executor.transfer.urls import ConnectionUrl

__all__ = ["SQLITE_BUSY_TIMEOUT", "SqliteDialect"]

SQLITE_BUSY_TIMEOUT = 30.0
#: Page cache of the target database during an upsert (KiB, SQLite's negative form).
UPSERT_CACHE_KIB = 65536


#: As SQLAlchemy asks: ``deterministic`` only where SQLite reliably supports it.
_DETERMINISTIC = {"deterministic": True} if sqlite3.sqlite_version_info >= (3, 9) else {}


def _regexp(pattern: str, value: str | None) -> bool | None:
    return None if value is None else re.search(pattern, value) is not None


class _OpenedConnection:
    """One ``sqlite3`` connection with the interface of SQLAlchemy's pooled wrapper."""

    def __init__(self, driver: sqlite3.Connection) -> None:
        self.driver_connection = driver

    def close(self) -> None:
        self.driver_connection.close()

    def invalidate(self) -> None:
        self.driver_connection.close()


class SqliteOpener:
    """Opens the endpoint's database with ``sqlite3`` itself (no SQLAlchemy import).

    Every connection gets the ``regexp`` and ``floor`` SQL functions that SQLAlchemy's
    pysqlite dialect registered when it opened them: a source query written with
    ``REGEXP`` or ``floor()`` keeps working.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def raw_connection(self) -> _OpenedConnection:
        driver = sqlite3.connect(
            self.uri,
            uri=True,
            timeout=SQLITE_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            driver.create_function("regexp", 2, _regexp, **_DETERMINISTIC)
            driver.create_function("floor", 1, math.floor, **_DETERMINISTIC)
        except BaseException:
            driver.close()
            raise
        return _OpenedConnection(driver)

    def dispose(self) -> None:
        """Nothing is pooled."""


def quote_identifier(identifier: str) -> str:
    """SQLite's quoted identifier: double quotes, embedded ones doubled (as SQLAlchemy)."""
    return '"' + identifier.replace('"', '""') + '"'


def _database_path(url: ConnectionUrl, base: Path) -> str:
    database = url.database or ""
    if database in ("", ":memory:"):
        return ":memory:"
    if database.startswith("file:"):
        return database
    path = Path(database)
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def _database_uri(path: str, *, read_only: bool) -> str:
    if path == ":memory:":
        return path
    uri = path if path.startswith("file:") else Path(path).as_uri()
    return f"{uri}{'&' if '?' in uri else '?'}mode=ro" if read_only else uri


class SqliteDialect(Dialect):
    """SQLite through ``sqlite3`` (see the module docstring)."""

    name = "sqlite"
    placeholder = "?"

    locks_whole_database = True
    attaches_databases = True
    copy_in = False
    copy_out = False
    binds_any_type = False
    yields_basic_values = True
    clones_staging = True
    scratch_staging = True
    holds_nan = False

    bigint_type = "INTEGER"
    timestamp_type = "TEXT"
    distinct_operator = "IS NOT"

    def quote(self, identifier: str) -> str:
        return quote_identifier(identifier)

    # -- connections ----------------------------------------------------------------------

    def create_engine(
        self, url: ConnectionUrl, *, base_dir: Path, read_only: bool, what: str
    ) -> tuple[SqliteOpener, str | None]:
        path = _database_path(url, base_dir)
        if (
            read_only
            and path != ":memory:"
            and not path.startswith("file:")
            and not os.path.exists(path)
        ):
            raise TransferFailed(f"cannot open {what}: SQLite database file not found: {path}")
        return SqliteOpener(_database_uri(path, read_only=read_only)), path

    def prepare_session(self, driver: Any) -> None:
        driver.isolation_level = None

    def apply_timeouts(
        self, driver: Any, *, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        # A statement timeout has no SQLite counterpart (documented); the busy timeout
        # bounds the wait for another connection's lock.
        if lock_timeout is not None:
            driver.execute(f"PRAGMA busy_timeout = {max(int(lock_timeout * 1000), 1)}")

    def cancel(self, driver: Any) -> None:
        driver.interrupt()

    def same_database(self, mine: Endpoint, theirs: Endpoint) -> bool:
        a, b = mine.sqlite_path, theirs.sqlite_path
        if a is None or b is None or ":memory:" in (a, b):
            return False
        return os.path.realpath(a) == os.path.realpath(b)

    def execute(self, driver: Any, sql: str, params: Sequence[Any]) -> int:
        rowcount: int = driver.execute(sql, tuple(params)).rowcount
        return rowcount

    def fetchall(self, driver: Any, sql: str, params: Sequence[Any]) -> Rows:
        return [tuple(row) for row in driver.execute(sql, tuple(params)).fetchall()]

    def begin(self, driver: Any) -> None:
        driver.execute("BEGIN")

    def commit(self, driver: Any) -> None:
        if driver.in_transaction:
            driver.execute("COMMIT")

    def rollback(self, driver: Any) -> None:
        if driver.in_transaction:
            driver.execute("ROLLBACK")

    def begin_snapshot(self, driver: Any) -> None:
        driver.execute("BEGIN")

    def end_snapshot(self, driver: Any) -> None:
        self.commit(driver)

    def iter_batches(
        self, driver: Any, sql: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[Rows]:
        cur = driver.execute(sql, params)
        try:
            while rows := cur.fetchmany(batch_size):
                yield rows
        finally:
            cur.close()

    def batch_writer(self, driver: Any, sql: str) -> BatchWriter:
        executemany = driver.executemany

        def write(rows: Rows) -> None:
            executemany(sql, rows)

        return write

    # -- SQL spelling ---------------------------------------------------------------------

    def export_expression(self, column: ColumnType, quoted: str, target: Dialect) -> str:
        # sqlite3 only ever returns int, float, str, bytes and None: every target binds them.
        return quoted

    def target_type(self, column: ColumnType) -> str:
        if column.dialect == self.name:
            return column.declared
        if column.family is Family.NUMERIC:
            return sqlite_decimal_type(column)
        return TO_SQLITE[column.family]

    def staging_ddl(self, table_sql: str, body: str, *, becomes_target: bool) -> str:
        return f"CREATE TABLE {table_sql} ({body})"

    def serialize_loads(self, db: Endpoint, target: TableName) -> None:
        """Nothing to do: the ledger claim takes the file's write lock."""

    def lock_writers_out(self, db: Endpoint, table_sql: str) -> None:
        """Nothing to do: the load transaction already holds the file's write lock."""

    def prepare_upsert(self, db: Endpoint, target: TableName) -> None:
        """A 64 MiB page cache for the target's database while the upsert runs.

        The upsert probes the target's key index once per staged row and rewrites the
        changed rows; with SQLite's default 2 MiB cache a million-row target keeps
        re-reading the same index and table pages (the upsert took ~25 % longer at
        1 M rows). The cache grows only as pages are read, and the load's connection
        is closed after the load, so it costs memory only during this load.
        """
        schema = self.quote(target.schema or "main")
        db.sqlite.execute(f"PRAGMA {schema}.cache_size = -{UPSERT_CACHE_KIB}")

    def now(self) -> Any:
        return utc_now_iso()

    def comparable(self, ref: str, declared: str) -> str:
        return ref

    def deduplicate_sql(self, staging_sql: str, keys_sql: str, not_null: str) -> str:
        return (
            f"DELETE FROM {staging_sql} WHERE {not_null} AND rowid NOT IN "
            f"(SELECT max(rowid) FROM {staging_sql} WHERE {not_null} GROUP BY {keys_sql})"
        )

    def key_index_sql(self, index: str, target: TableName, keys_sql: str) -> str:
        # The index is created in the table's schema; ON names the table without it.
        qualified = self.quote(index)
        if target.schema:
            qualified = f"{self.quote(target.schema)}.{qualified}"
        return f"CREATE UNIQUE INDEX {qualified} ON {self.quote(target.name)} ({keys_sql})"

    def upsert_head(
        self, table_sql: str, columns_sql: str, staging_sql: str, target: TableName
    ) -> tuple[str, str, str]:
        # The target may only be named by its bare name inside the upsert clause, and
        # ``WHERE true`` keeps the parser from reading ON CONFLICT as a join constraint.
        head = (
            f"INSERT INTO {table_sql} ({columns_sql}) SELECT {columns_sql} FROM "
            + staging_sql
            + " WHERE true"
        )
        return head, self.quote(target.name), "excluded"

    def update_head(self, table_sql: str, target: TableName) -> tuple[str, str]:
        return f"UPDATE {table_sql} SET ", self.quote(target.name)

    # -- catalog --------------------------------------------------------------------------

    def qualified_name(self, db: Endpoint, name: TableName) -> str:
        # A SQLite file is its own database: its file name, then the schema (main).
        database = Path(db.sqlite_path).stem if db.is_file and db.sqlite_path else "memory"
        return f"{database}.{name.schema or 'main'}.{name.name}"

    def table_exists(self, db: Endpoint, name: TableName) -> bool:
        return sqlite_catalog.table_exists(db, name)

    def check_target_schema(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> None:
        sqlite_catalog.schema_of(name, file, field_name)

    def describe_source(
        self, db: Endpoint, shape: SourceShape, *, file: str, field_name: str
    ) -> tuple[list[SourceColumn], list[frozenset[str]]]:
        return sqlite_catalog.describe_source(db, shape, file, field_name)

    def describe_target(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> TargetShape | None:
        return sqlite_catalog.describe_target(db, name, file, field_name)
