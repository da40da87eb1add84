"""Connections of a transfer: URL normalisation and one driver connection per side.

For PostgreSQL, SQLAlchemy Core parses the URL and owns the engine; a plain SQLite
URL is read and opened without SQLAlchemy (:mod:`~dpone_core.executor.transfer.urls`),
whose import would cost a small SQLite load more than the load. The load itself
runs on the driver connection underneath (``sqlite3`` or psycopg 3), because bulk
paths (``executemany``, ``COPY``, ``ATTACH``) live there. Everything that differs
between the two databases -- engine options, session settings, transactions,
quoting -- is asked of the endpoint's :class:`~dpone_core.executor.transfer.dialects.Dialect`;
this module only resolves the URL to a dialect and wraps the connection.

``postgresql://`` and ``postgres://`` mean ``postgresql+psycopg://`` (psycopg 3).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.dialects import (
    ConnectionFactory,
    Dialect,
    PostgresDialect,
    SqliteDialect,
    dialect_for_backend,
    literal_sql,
)
from dpone_core.executor.transfer.dialects.sqlite import SQLITE_BUSY_TIMEOUT
from dpone_core.executor.transfer.errors import TransferFailed, describe_exception
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.urls import ConnectionUrl, normalize_url, parse_connection_url
from dpone_core.manifest import LoadedManifest, resolved_connections
from dpone_core.redact import redact, redact_url

if TYPE_CHECKING:
    import psycopg

__all__ = ["SQLITE_BUSY_TIMEOUT", "Endpoint", "literal_sql", "normalize_url", "open_endpoint"]


@dataclass
class Endpoint:
    """One side of a load: its engine, its driver connection and its dialect."""

    role: str
    name: str
    url: ConnectionUrl
    dialect: Dialect
    engine: ConnectionFactory
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

    @property
    def is_file(self) -> bool:
        """A database file that another connection can open (not ``:memory:``)."""
        return self.sqlite_path is not None and self.sqlite_path != ":memory:"

    def same_database(self, other: Endpoint) -> bool:
        return self.dialect == other.dialect and self.dialect.same_database(self, other)

    # -- drivers ----------------------------------------------------------------------------

    @property
    def driver(self) -> Any:
        """The DB-API connection (underneath SQLAlchemy's pool wrapper, for PostgreSQL)."""
        return self.raw.driver_connection

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection (SQLite-only code paths: fast path, scratch files)."""
        assert isinstance(self.dialect, SqliteDialect)
        return cast(sqlite3.Connection, self.raw.driver_connection)

    @property
    def pg(self) -> psycopg.Connection[Any]:
        """The psycopg connection (PostgreSQL-only code paths: COPY, catalog)."""
        assert isinstance(self.dialect, PostgresDialect)
        return cast("psycopg.Connection[Any]", self.raw.driver_connection)

    # -- SQL helpers ------------------------------------------------------------------------

    @property
    def ph(self) -> str:
        """Positional placeholder of the driver."""
        return self.dialect.placeholder

    def quote(self, identifier: str) -> str:
        return self.dialect.quote(identifier)

    def table(self, name: TableName) -> str:
        return self.dialect.table(name)

    def columns(self, names: Sequence[str]) -> str:
        return self.dialect.columns(names)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; returns the driver's rowcount."""
        return self.dialect.execute(self.driver, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.dialect.fetchall(self.driver, sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- transactions -----------------------------------------------------------------------

    def begin(self) -> None:
        """Start a transaction (whatever read-only statements ran before are ended first)."""
        self.dialect.begin(self.driver)

    def commit(self) -> None:
        self.dialect.commit(self.driver)

    def rollback(self) -> None:
        """Roll back whatever is open; never raises (used on error paths)."""
        with contextlib.suppress(Exception):
            self.dialect.rollback(self.driver)

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

    def abandon(self) -> None:
        """Stop whatever runs and close without a word (after a signal interrupted a statement).

        The driver connection may be mid-statement: the statement is cancelled on the
        server (PostgreSQL: a cancel request; SQLite: ``interrupt``), the socket closed,
        and (PostgreSQL) SQLAlchemy's pool never tries to reset it (which would log
        tracebacks).
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.dialect.cancel(self.driver)
        with contextlib.suppress(Exception):
            self.driver.close()
        with contextlib.suppress(Exception):
            self.raw.invalidate()
        with contextlib.suppress(Exception):
            self.engine.dispose()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.rollback()
        with contextlib.suppress(Exception):
            self.raw.close()
        with contextlib.suppress(Exception):
            self.engine.dispose()


def _resolve(
    role: str,
    process_name: str,
    connection_name: str,
    connections: Mapping[str, str],
    manifest: str,
) -> tuple[ConnectionUrl, Dialect]:
    """The connection's URL and dialect; ManifestError for an unknown name, URL or backend."""
    if connection_name not in connections:
        known = ", ".join(repr(name) for name in connections) or "(none defined)"
        raise ManifestError(
            manifest,
            f"processes.{process_name}.{role}.connection",
            f"expected the name of a connection under 'connections': {known} "
            f"(got {connection_name!r})",
        )
    text = connections[connection_name]
    try:
        url = parse_connection_url(text)
    except Exception:
        raise ManifestError(
            manifest,
            f"connections.{connection_name}",
            f"expected a SQLAlchemy URL such as sqlite:///data/shop.db (got {redact_url(text)!r})",
        ) from None
    backend = url.get_backend_name()
    dialect = dialect_for_backend(backend)
    if dialect is None:
        raise ManifestError(
            manifest,
            f"connections.{connection_name}",
            "expected a sqlite:// or postgresql:// URL; transfers support SQLite and "
            f"PostgreSQL (got {backend!r})",
        )
    return url, dialect


def _connect(
    role: str,
    connection_name: str,
    url: ConnectionUrl,
    dialect: Dialect,
    base_dir: Path,
    read_only: bool,
) -> Endpoint:
    """Create the engine and take its one driver connection; a refusal is TransferFailed."""
    where = f"{role} connection {connection_name!r}"
    shown = redact_url(url.render_as_string(hide_password=True))
    try:
        engine, path = dialect.create_engine(
            url, base_dir=base_dir, read_only=read_only, what=where
        )
    except TransferFailed:
        raise
    except Exception as exc:
        raise TransferFailed(f"cannot use {where} ({shown}): {describe_exception(exc)}") from None
    try:
        raw = engine.raw_connection()
    except Exception as exc:
        engine.dispose()
        raise TransferFailed(
            f"cannot connect to {where} ({shown}): {describe_exception(exc)}"
        ) from None
    return Endpoint(
        role=role,
        name=connection_name,
        url=url,
        dialect=dialect,
        engine=engine,
        raw=raw,
        sqlite_path=path,
    )


def open_endpoint(
    role: str,
    process_name: str,
    connection_name: str,
    connections: Mapping[str, str],
    *,
    manifest: str,
    base_dir: Path,
    read_only: bool = False,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
) -> Endpoint:
    """Connect one side of a load; a URL problem is a ManifestError, a refusal TransferFailed.

    ``lock_timeout``/``statement_timeout`` (seconds) bound lock waits and statements of the
    session (see each dialect's ``apply_timeouts``).
    """
    url, dialect = _resolve(role, process_name, connection_name, connections, manifest)
    endpoint = _connect(role, connection_name, url, dialect, base_dir, read_only)
    try:
        dialect.prepare_session(endpoint.driver)
        dialect.apply_timeouts(
            endpoint.driver, lock_timeout=lock_timeout, statement_timeout=statement_timeout
        )
    except Exception as exc:
        endpoint.close()
        raise TransferFailed(
            f"cannot prepare {endpoint.label}: {describe_exception(exc)}"
        ) from None
    return endpoint


def open_target_for_reading(loaded: LoadedManifest, selector: str, connection: str) -> Endpoint:
    """The process's target, read-only: what checks and catalogs read after a load."""
    return open_endpoint(
        "target",
        selector,
        connection,
        resolved_connections(loaded),
        manifest=str(loaded.path),
        base_dir=loaded.path.parent,
        read_only=True,
    )
