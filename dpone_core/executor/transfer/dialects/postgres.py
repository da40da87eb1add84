"""PostgreSQL: psycopg 3 underneath, ``COPY`` for bulk rows, MVCC for everything else.

* ``postgresql://`` URLs run on psycopg 3 and give up connecting after 15 s
  (``?connect_timeout=N`` overrides): a host that drops packets would otherwise
  hang a load for minutes.
* Sessions run with ``TimeZone=UTC`` and ISO date styles so that text forms of
  values (``COPY`` text, casts for SQLite) are unambiguous between databases.
* Loads into one target take turns on a transaction-scoped advisory lock, so a
  watermark read at the start of a load is still the latest one when it commits.
* Staging tables that are not renamed into place are ``UNLOGGED``: they never
  need to survive a server crash (the transaction that made them would not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpone_core.clock import utc_now
from dpone_core.executor.transfer.dialects import postgres_catalog
from dpone_core.executor.transfer.dialects.base import BatchWriter, Dialect, Rows, literal_sql
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import SourceColumn, SourceShape, TargetShape
from dpone_core.executor.transfer.typemap import (
    NUMERIC_MODIFIERS,
    TO_POSTGRES,
    ColumnType,
    Family,
    pg_to_sqlite_cast,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from dpone_core.executor.transfer.connections import Endpoint
    from dpone_core.executor.transfer.urls import ConnectionUrl

__all__ = ["CONNECT_TIMEOUT", "PostgresDialect", "advisory_key"]

CONNECT_TIMEOUT = 15
_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
)
#: Types without an equality operator: compared as text when detecting changes.
_NO_EQUALITY = ("json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle")


def advisory_key(target: TableName) -> int:
    """The ``pg_advisory_xact_lock`` key of a target table (stable across processes)."""
    digest = hashlib.sha256(f"dpone-load:{target.display}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 (see the module docstring)."""

    name = "postgresql"
    placeholder = "%s"

    locks_whole_database = False
    attaches_databases = False
    copy_in = True
    copy_out = True
    binds_any_type = True
    yields_basic_values = False
    clones_staging = False
    scratch_staging = False
    holds_nan = True

    bigint_type = "BIGINT"
    timestamp_type = "TIMESTAMPTZ"
    distinct_operator = "IS DISTINCT FROM"

    @cached_property
    def _quote_identifier(self) -> Callable[[str], str]:
        # Imported here: SQLAlchemy and its PostgreSQL dialects cost a SQLite-only
        # transfer more than its load (tests/test_import_budget.py).
        from sqlalchemy.dialects.postgresql import psycopg as sa_psycopg

        dialect = sa_psycopg.dialect()  # type: ignore[no-untyped-call]
        quote: Callable[[str], str] = dialect.identifier_preparer.quote_identifier
        return quote

    def quote(self, identifier: str) -> str:
        """SQLAlchemy's psycopg quoting: it knows to double ``%`` for the driver."""
        return self._quote_identifier(identifier)

    # -- connections ----------------------------------------------------------------------

    def create_engine(
        self, url: ConnectionUrl, *, base_dir: Path, read_only: bool, what: str
    ) -> tuple[sa.Engine, str | None]:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        # Only SQLite URLs are parsed without SQLAlchemy (urls.parse_connection_url).
        assert isinstance(url, sa.URL), url
        connect_args = (
            {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}
        )
        return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args), None

    def prepare_session(self, driver: Any) -> None:
        driver.rollback()
        driver.autocommit = False
        for statement in _SESSION:
            driver.execute(literal_sql(statement))
        driver.commit()

    def apply_timeouts(
        self, driver: Any, *, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        for setting, seconds in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        ):
            if seconds is not None:
                milliseconds = max(int(seconds * 1000), 1)
                driver.execute(literal_sql(f"SET {setting} = {milliseconds}"))
        driver.commit()

    def cancel(self, driver: Any) -> None:
        # A cancel request on its own connection; the server stops the statement (also
        # one that waits for a lock), so the session does not linger holding its locks.
        driver.cancel_safe(timeout=5.0)

    def same_database(self, mine: Endpoint, theirs: Endpoint) -> bool:
        return mine.url == theirs.url

    def execute(self, driver: Any, sql: str, params: Sequence[Any]) -> int:
        with driver.cursor() as cur:
            cur.execute(literal_sql(sql), tuple(params))
            rowcount: int = cur.rowcount
            return rowcount

    def fetchall(self, driver: Any, sql: str, params: Sequence[Any]) -> Rows:
        with driver.cursor() as cur:
            cur.execute(literal_sql(sql), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def begin(self, driver: Any) -> None:
        # psycopg opens a transaction with the next statement; end what ran before.
        driver.rollback()

    def commit(self, driver: Any) -> None:
        driver.commit()

    def rollback(self, driver: Any) -> None:
        driver.rollback()

    def begin_snapshot(self, driver: Any) -> None:
        import psycopg

        driver.rollback()
        driver.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        driver.read_only = True

    def end_snapshot(self, driver: Any) -> None:
        driver.commit()
        driver.isolation_level = None
        driver.read_only = None

    def iter_batches(
        self, driver: Any, sql: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[Rows]:
        # A server-side cursor: the server holds the result, memory holds one batch.
        with driver.cursor(name="dpone_extract") as named:
            named.itersize = batch_size
            named.execute(literal_sql(sql), params)
            while batch := named.fetchmany(batch_size):
                yield batch

    def batch_writer(self, driver: Any, sql: str) -> BatchWriter:
        def write(rows: Rows) -> None:
            with driver.cursor() as cur:
                cur.executemany(literal_sql(sql), rows)

        return write

    # -- SQL spelling ---------------------------------------------------------------------

    def escape_query(self, query: str) -> str:
        return query.replace("%", "%%")

    def export_expression(self, column: ColumnType, quoted: str, target: Dialect) -> str:
        if target.binds_any_type:
            return quoted
        return pg_to_sqlite_cast(column, quoted)

    def target_type(self, column: ColumnType) -> str:
        if column.dialect == self.name:
            # Enums, domains, extension types may not exist in the target database.
            return column.declared if column.builtin else "text"
        if column.family is Family.NUMERIC:
            match = NUMERIC_MODIFIERS.search(column.declared)
            if match:
                precision, scale = match.group(1), match.group(2)
                return f"numeric({precision},{scale})" if scale else f"numeric({precision})"
        return TO_POSTGRES[column.family]

    def staging_ddl(self, table_sql: str, body: str, *, becomes_target: bool) -> str:
        unlogged = "" if becomes_target else "UNLOGGED "
        return f"CREATE {unlogged}TABLE {table_sql} ({body})"

    def serialize_loads(self, db: Endpoint, target: TableName) -> None:
        db.run("SELECT pg_advisory_xact_lock(%s)", (advisory_key(target),))

    def lock_writers_out(self, db: Endpoint, table_sql: str) -> None:
        db.run(f"LOCK TABLE {table_sql} IN SHARE ROW EXCLUSIVE MODE")

    def prepare_upsert(self, db: Endpoint, target: TableName) -> None:
        """Nothing to do: shared buffers, not the session, cache the target's pages."""

    def now(self) -> Any:
        return utc_now()

    def comparable(self, ref: str, declared: str) -> str:
        if declared.lower().split("(")[0].strip() in _NO_EQUALITY:
            return f"{ref}::text"
        return ref

    def deduplicate_sql(self, staging_sql: str, keys_sql: str, not_null: str) -> str:
        # Staging is insert-only within this transaction, so physical order is load order.
        return (
            f"DELETE FROM {staging_sql} AS s USING (SELECT ctid AS row_id, row_number() OVER "
            f"(PARTITION BY {keys_sql} ORDER BY ctid DESC) AS position FROM {staging_sql} "
            f"WHERE {not_null}) AS d WHERE s.ctid = d.row_id AND d.position > 1"
        )

    def key_index_sql(self, index: str, target: TableName, keys_sql: str) -> str:
        return f"CREATE UNIQUE INDEX {self.quote(index)} ON {self.table(target)} ({keys_sql})"

    def upsert_head(
        self, table_sql: str, columns_sql: str, staging_sql: str, target: TableName
    ) -> tuple[str, str, str]:
        head = (
            f"INSERT INTO {table_sql} AS t ({columns_sql}) SELECT {columns_sql} FROM {staging_sql}"
        )
        return head, "t", "EXCLUDED"

    def update_head(self, table_sql: str, target: TableName) -> tuple[str, str]:
        return f"UPDATE {table_sql} AS t SET ", "t"

    # -- catalog --------------------------------------------------------------------------

    def qualified_name(self, db: Endpoint, name: TableName) -> str:
        schema = name.schema or str(db.scalar("select current_schema()"))
        return f"{db.url.database}.{schema}.{name.name}"

    def table_exists(self, db: Endpoint, name: TableName) -> bool:
        return postgres_catalog.table_exists(db, name)

    def check_target_schema(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> None:
        postgres_catalog.check_schema(db, name, file, field_name)

    def describe_source(
        self, db: Endpoint, shape: SourceShape, *, file: str, field_name: str
    ) -> tuple[list[SourceColumn], list[frozenset[str]]]:
        return postgres_catalog.describe_source(db, shape, file, field_name)

    def describe_target(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> TargetShape | None:
        return postgres_catalog.describe_target(db, name, file, field_name)
