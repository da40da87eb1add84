"""The dialect seam: one object per database kind owns everything SQLite and PostgreSQL
spell differently, so the rest of the engine asks a question instead of comparing names.

A :class:`Dialect` answers four kinds of questions:

* **capabilities** (class attributes) -- what a load may rely on: can this target
  read another database of its own kind inside one statement (``ATTACH``), does it
  take ``COPY``, does a write lock the whole database. The fill path
  (:mod:`~dpone_core.executor.transfer.fill`) is chosen from these alone;
* **connections** -- engine creation, session settings, statements, transactions
  and read snapshots on the driver connection (``sqlite3`` or psycopg 3);
* **SQL spelling** -- quoting, placeholders, target column types, staging DDL,
  upsert and de-duplication statements, locks, ledger column types;
* **catalog** -- what the database says about a table or query.

Dialects are stateless: :data:`~dpone_core.executor.transfer.dialects.SQLITE` and
:data:`~dpone_core.executor.transfer.dialects.POSTGRES` are the only instances the
engine uses, and two instances of the same class compare equal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, LiteralString, Protocol

from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import SourceColumn, SourceShape, TargetShape
from dpone_core.executor.transfer.typemap import ColumnType, DialectName

if TYPE_CHECKING:
    from dpone_core.executor.transfer.connections import Endpoint
    from dpone_core.executor.transfer.urls import ConnectionUrl

__all__ = ["BatchWriter", "ConnectionFactory", "Dialect", "Rows", "literal_sql"]

Rows = list[tuple[Any, ...]]
#: Writes one batch of rows into the staging table.
BatchWriter = Callable[[Rows], None]


def literal_sql(sql: str) -> LiteralString:
    """Mark generated SQL as safe for psycopg's ``LiteralString`` hints.

    Every statement is built from quoted identifiers and placeholders; values always
    travel as parameters. (mypy treats ``LiteralString`` as ``str``.)
    """
    return sql


class ConnectionFactory(Protocol):
    """Where an endpoint's one driver connection comes from: SQLAlchemy's ``Engine``
    (PostgreSQL) or SQLite's own opener, which needs no SQLAlchemy at all.

    ``raw_connection()`` returns an object with ``driver_connection`` (the DB-API
    connection), ``close()`` and ``invalidate()``, as SQLAlchemy's pooled wrapper has.
    """

    def raw_connection(self) -> Any: ...

    def dispose(self) -> None: ...


class Dialect(ABC):
    """What one kind of database does differently; see the module docstring."""

    #: The dialect's name, as source column types remember it.
    name: ClassVar[DialectName]
    #: Positional placeholder of the driver.
    placeholder: ClassVar[str]

    # -- capabilities ---------------------------------------------------------------------

    #: A write transaction locks the whole database, so a second connection to the same
    #: database cannot read while the load writes: reads go through the target's connection.
    locks_whole_database: ClassVar[bool]
    #: As a target, reads a table of another database of its own kind inside one statement
    #: (``ATTACH``): staging fills without rows passing through Python.
    attaches_databases: ClassVar[bool]
    #: As a target, takes rows through ``COPY ... FROM STDIN``.
    copy_in: ClassVar[bool]
    #: As a source, streams a query through ``COPY (...) TO STDOUT`` in the text format
    #: that a ``copy_in`` target of the same kind reads.
    copy_out: ClassVar[bool]
    #: As a target, accepts every value the source's driver returns (COPY text parses all);
    #: otherwise the source renders non-basic values as text first.
    binds_any_type: ClassVar[bool]
    #: As a source, its rows only ever hold ``int``, ``float``, ``str``, ``bytes`` and
    #: ``None``: a COPY target formats them in bulk (``copy_text``) instead of per row.
    yields_basic_values: ClassVar[bool]
    #: Staging may clone the target column for column, so that ``INSERT ... SELECT *``
    #: copies pages without decoding rows (SQLite's transfer optimisation).
    clones_staging: ClassVar[bool]
    #: Staging for an existing target lives in a scratch database file next to it.
    scratch_staging: ClassVar[bool]
    #: As a target, stores a floating-point NaN as NaN (SQLite turns it into NULL, so
    #: rows bound for it carry the text ``'NaN'`` instead).
    holds_nan: ClassVar[bool]

    # -- SQL spelling ---------------------------------------------------------------------

    #: Ledger column type of row counts (on-disk format: never change).
    bigint_type: ClassVar[str]
    #: Ledger column type of timestamps (on-disk format: never change).
    timestamp_type: ClassVar[str]
    #: Null-safe "differs" operator between two row values.
    distinct_operator: ClassVar[str]

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    # -- quoting --------------------------------------------------------------------------

    @abstractmethod
    def quote(self, identifier: str) -> str:
        """Always-quoted identifier (psycopg's needs ``%`` doubled)."""

    def table(self, name: TableName) -> str:
        if name.schema:
            return f"{self.quote(name.schema)}.{self.quote(name.name)}"
        return self.quote(name.name)

    def columns(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(name) for name in names)

    # -- connections ----------------------------------------------------------------------

    @abstractmethod
    def create_engine(
        self, url: ConnectionUrl, *, base_dir: Path, read_only: bool, what: str
    ) -> tuple[ConnectionFactory, str | None]:
        """``(engine, database file)``; ``what`` names the connection in a TransferFailed."""

    @abstractmethod
    def prepare_session(self, driver: Any) -> None:
        """Session settings every load relies on (explicit transactions, text styles)."""

    @abstractmethod
    def apply_timeouts(
        self, driver: Any, *, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        """Session limits in seconds: how long to wait for a lock, how long one statement runs."""

    @abstractmethod
    def cancel(self, driver: Any) -> None:
        """Stop the statement running on ``driver`` (from a signal handler's aftermath)."""

    @abstractmethod
    def same_database(self, mine: Endpoint, theirs: Endpoint) -> bool:
        """Whether two endpoints of this dialect reach the same database."""

    @abstractmethod
    def execute(self, driver: Any, sql: str, params: Sequence[Any]) -> int:
        """Execute one statement; returns the driver's rowcount."""

    @abstractmethod
    def fetchall(self, driver: Any, sql: str, params: Sequence[Any]) -> Rows: ...

    @abstractmethod
    def begin(self, driver: Any) -> None:
        """Start the load transaction (whatever read-only statements ran before are ended)."""

    @abstractmethod
    def commit(self, driver: Any) -> None: ...

    @abstractmethod
    def rollback(self, driver: Any) -> None: ...

    @abstractmethod
    def begin_snapshot(self, driver: Any) -> None:
        """Open the read snapshot that the extracted rows and their max cursor share."""

    @abstractmethod
    def end_snapshot(self, driver: Any) -> None: ...

    @abstractmethod
    def iter_batches(
        self, driver: Any, sql: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[Rows]:
        """Stream a query in lists of at most ``batch_size`` rows (one list in memory)."""

    @abstractmethod
    def batch_writer(self, driver: Any, sql: str) -> BatchWriter:
        """An ``executemany`` of ``sql`` per batch."""

    # -- SQL spelling ---------------------------------------------------------------------

    def escape_query(self, query: str) -> str:
        """A user's query text as the driver must receive it next to parameters."""
        return query

    @abstractmethod
    def export_expression(self, column: ColumnType, quoted: str, target: Dialect) -> str:
        """Select expression that hands this source column to ``target`` in a bindable type."""

    @abstractmethod
    def target_type(self, column: ColumnType) -> str:
        """The DDL type of a new target column for a source column (see ``typemap``)."""

    @abstractmethod
    def staging_ddl(self, table_sql: str, body: str, *, becomes_target: bool) -> str:
        """``CREATE TABLE`` of a staging table (``becomes_target``: renamed into place)."""

    @abstractmethod
    def serialize_loads(self, db: Endpoint, target: TableName) -> None:
        """Make loads into ``target`` take turns inside the open load transaction."""

    @abstractmethod
    def lock_writers_out(self, db: Endpoint, table_sql: str) -> None:
        """Keep other writers off the target during an upsert (readers stay unblocked)."""

    @abstractmethod
    def prepare_upsert(self, db: Endpoint, target: TableName) -> None:
        """Session settings that make the upsert into ``target`` fast (inside the load)."""

    @abstractmethod
    def now(self) -> Any:
        """The current time as a ledger timestamp parameter."""

    @abstractmethod
    def comparable(self, ref: str, declared: str) -> str:
        """``ref`` in a form that has an equality operator (for change detection)."""

    @abstractmethod
    def deduplicate_sql(self, staging_sql: str, keys_sql: str, not_null: str) -> str:
        """``DELETE`` every staged row but the last extracted one per non-NULL key."""

    @abstractmethod
    def key_index_sql(self, index: str, target: TableName, keys_sql: str) -> str:
        """``CREATE UNIQUE INDEX`` named ``index`` on ``target``'s key columns."""

    @abstractmethod
    def upsert_head(
        self, table_sql: str, columns_sql: str, staging_sql: str, target: TableName
    ) -> tuple[str, str, str]:
        """``(INSERT ... SELECT head, alias of the old row, alias of the new row)``."""

    @abstractmethod
    def update_head(self, table_sql: str, target: TableName) -> tuple[str, str]:
        """``(UPDATE ... SET head, alias of the target row)`` of an ``UPDATE ... FROM``."""

    # -- catalog --------------------------------------------------------------------------

    @abstractmethod
    def table_exists(self, db: Endpoint, name: TableName) -> bool: ...

    @abstractmethod
    def qualified_name(self, db: Endpoint, name: TableName) -> str:
        """``database.schema.table`` as catalogs (and Dagster's ``dagster/table_name``) name it."""

    @abstractmethod
    def check_target_schema(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> None:
        """ManifestError unless the target's schema exists (ledger and staging live there)."""

    @abstractmethod
    def describe_source(
        self, db: Endpoint, shape: SourceShape, *, file: str, field_name: str
    ) -> tuple[list[SourceColumn], list[frozenset[str]]]:
        """``(columns, unique keys)`` of the source table or query; ManifestError if absent."""

    @abstractmethod
    def describe_target(
        self, db: Endpoint, name: TableName, *, file: str, field_name: str
    ) -> TargetShape | None:
        """The target table's definition, or None when it does not exist yet."""
