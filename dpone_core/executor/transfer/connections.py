"""Connections of a transfer: URL normalisation and one driver connection per side.

SQLAlchemy Core parses the URL, owns the engine and the identifier quoting; the
load itself runs on the driver connection underneath (``sqlite3`` or psycopg 3),
because bulk paths (``executemany``, ``COPY``, ``ATTACH``) live there.

* ``postgresql://`` and ``postgres://`` mean ``postgresql+psycopg://`` (psycopg 3).
  Sessions run with ``TimeZone=UTC`` and ISO date styles so that text forms of
  values are unambiguous on the way between databases.
* PostgreSQL connections give up after 15 s (``?connect_timeout=N`` overrides).
* SQLite files are opened by absolute path with a 30 s busy timeout and explicit
  transactions (``BEGIN``/``COMMIT`` are issued by the engine, never implicitly).
  A source file is opened read-only and must exist.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, LiteralString, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.errors import TransferFailed, describe_exception
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.typemap import Dialect
from dpone_core.redact import redact, redact_url

if TYPE_CHECKING:
    import psycopg

__all__ = ["SQLITE_BUSY_TIMEOUT", "Endpoint", "literal_sql", "normalize_url", "open_endpoint"]

SQLITE_BUSY_TIMEOUT = 30.0
_PG_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
)


def normalize_url(text: str) -> URL:
    """Parse a connection URL; ``postgresql://`` becomes ``postgresql+psycopg://``."""
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_path(url: URL, base: Path) -> str:
    database = url.database or ""
    if database in ("", ":memory:"):
        return ":memory:"
    if database.startswith("file:"):
        return database
    path = Path(database)
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def _sqlite_uri(path: str, *, read_only: bool) -> str:
    if path == ":memory:":
        return path
    uri = path if path.startswith("file:") else Path(path).as_uri()
    return f"{uri}{'&' if '?' in uri else '?'}mode=ro" if read_only else uri


@dataclass
class Endpoint:
    """One side of a load: its engine, its driver connection and dialect helpers."""

    role: str
    name: str
    url: URL
    dialect: Dialect
    engine: sa.Engine
    raw: Any
    #: SQLite only: absolute database path (or ``:memory:``).
    sqlite_path: str | None = None
    _closed: bool = field(default=False, repr=False)

    # -- identity ---------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        return redact(redact_url(self.url.render_as_string(hide_password=True)))

    @property
    def label(self) -> str:
        return f"{self.role} connection {self.name!r} ({self.safe_url})"

    def same_database(self, other: Endpoint) -> bool:
        if self.dialect != other.dialect:
            return False
        if self.dialect == "sqlite":
            mine, theirs = self.sqlite_path, other.sqlite_path
            if mine is None or theirs is None or ":memory:" in (mine, theirs):
                return False
            return os.path.realpath(mine) == os.path.realpath(theirs)
        return self.url == other.url

    # -- drivers ----------------------------------------------------------------------------

    @property
    def sqlite(self) -> sqlite3.Connection:
        assert self.dialect == "sqlite"
        return cast(sqlite3.Connection, self.raw.driver_connection)

    @property
    def pg(self) -> psycopg.Connection[Any]:
        assert self.dialect == "postgresql"
        return cast("psycopg.Connection[Any]", self.raw.driver_connection)

    # -- SQL helpers ------------------------------------------------------------------------

    @property
    def ph(self) -> str:
        """Positional placeholder of the driver."""
        return "?" if self.dialect == "sqlite" else "%s"

    def quote(self, identifier: str) -> str:
        quoted: str = self.engine.dialect.identifier_preparer.quote_identifier(identifier)
        return quoted

    def table(self, name: TableName) -> str:
        if name.schema:
            return f"{self.quote(name.schema)}.{self.quote(name.name)}"
        return self.quote(name.name)

    def columns(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(name) for name in names)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; returns the driver's rowcount."""
        if self.dialect == "sqlite":
            return self.sqlite.execute(sql, tuple(params)).rowcount
        with self.pg.cursor() as cur:
            cur.execute(literal_sql(sql), tuple(params))
            return cur.rowcount

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "sqlite":
            return [tuple(row) for row in self.sqlite.execute(sql, tuple(params)).fetchall()]
        with self.pg.cursor() as cur:
            cur.execute(literal_sql(sql), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- transactions -----------------------------------------------------------------------

    def begin(self) -> None:
        """Start a transaction (PostgreSQL starts one implicitly with the next statement;
        whatever read-only statements ran before are ended first)."""
        if self.dialect == "sqlite":
            self.sqlite.execute("BEGIN")
        else:
            self.pg.rollback()

    def commit(self) -> None:
        if self.dialect == "sqlite":
            if self.sqlite.in_transaction:
                self.sqlite.execute("COMMIT")
        else:
            self.pg.commit()

    def rollback(self) -> None:
        """Roll back whatever is open; never raises (used on error paths)."""
        with contextlib.suppress(Exception):
            if self.dialect == "sqlite":
                if self.sqlite.in_transaction:
                    self.sqlite.execute("ROLLBACK")
            else:
                self.pg.rollback()

    @contextlib.contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """A nested scope: an error inside undoes only the scope, then re-raises."""
        self.run(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.run(f"ROLLBACK TO SAVEPOINT {name}")
            self.run(f"RELEASE SAVEPOINT {name}")
            raise
        self.run(f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.rollback()
        with contextlib.suppress(Exception):
            self.raw.close()
        with contextlib.suppress(Exception):
            self.engine.dispose()


def literal_sql(sql: str) -> LiteralString:
    """Mark generated SQL as safe for psycopg's ``LiteralString`` hints.

    Every statement is built from quoted identifiers and placeholders; values always
    travel as parameters. (mypy treats ``LiteralString`` as ``str``.)
    """
    return sql


def open_endpoint(
    role: str,
    process_name: str,
    connection_name: str,
    connections: Mapping[str, str],
    *,
    manifest: str,
    base_dir: Path,
    read_only: bool = False,
) -> Endpoint:
    """Connect one side of a load; a URL problem is a ManifestError, a refusal TransferFailed."""
    field_name = f"processes.{process_name}.{role}.connection"
    if connection_name not in connections:
        known = ", ".join(repr(name) for name in connections) or "(none defined)"
        raise ManifestError(
            manifest,
            field_name,
            f"expected the name of a connection under 'connections': {known} "
            f"(got {connection_name!r})",
        )
    text = connections[connection_name]
    try:
        url = normalize_url(text)
    except Exception:
        raise ManifestError(
            manifest,
            f"connections.{connection_name}",
            f"expected a SQLAlchemy URL such as sqlite:///data/shop.db (got {redact_url(text)!r})",
        ) from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ManifestError(
            manifest,
            f"connections.{connection_name}",
            "expected a sqlite:// or postgresql:// URL; transfers support SQLite and "
            f"PostgreSQL (got {backend!r})",
        )
    dialect: Dialect = "sqlite" if backend == "sqlite" else "postgresql"
    sqlite_path: str | None = None
    try:
        if dialect == "sqlite":
            sqlite_path = _sqlite_path(url, base_dir)
            if (
                read_only
                and sqlite_path != ":memory:"
                and not sqlite_path.startswith("file:")
                and not os.path.exists(sqlite_path)
            ):
                raise TransferFailed(
                    f"cannot open {role} connection {connection_name!r}: "
                    f"SQLite database file not found: {sqlite_path}"
                )
            uri = _sqlite_uri(sqlite_path, read_only=read_only)

            def creator() -> sqlite3.Connection:
                return sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=SQLITE_BUSY_TIMEOUT,
                    isolation_level=None,
                    check_same_thread=False,
                )

            engine = sa.create_engine("sqlite://", creator=creator, poolclass=NullPool)
        else:
            # A host that drops packets would otherwise hang the load for minutes.
            connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 15}
            engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (TransferFailed, ManifestError):
        raise
    except Exception as exc:
        raise TransferFailed(
            f"cannot use {role} connection {connection_name!r} "
            f"({redact_url(url.render_as_string(hide_password=True))}): {describe_exception(exc)}"
        ) from None
    try:
        raw = engine.raw_connection()
    except Exception as exc:
        engine.dispose()
        raise TransferFailed(
            f"cannot connect to {role} connection {connection_name!r} "
            f"({redact_url(url.render_as_string(hide_password=True))}): {describe_exception(exc)}"
        ) from None
    endpoint = Endpoint(
        role=role,
        name=connection_name,
        url=url,
        dialect=dialect,
        engine=engine,
        raw=raw,
        sqlite_path=sqlite_path,
    )
    try:
        if dialect == "postgresql":
            pg = endpoint.pg
            pg.rollback()
            pg.autocommit = False
            for statement in _PG_SESSION:
                pg.execute(literal_sql(statement))
            pg.commit()
        else:
            endpoint.sqlite.isolation_level = None
    except Exception as exc:
        endpoint.close()
        raise TransferFailed(
            f"cannot prepare {endpoint.label}: {describe_exception(exc)}"
        ) from None
    return endpoint
