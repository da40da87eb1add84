"""The run registry's table in PostgreSQL: one row per run id and attempt, written once.

``{schema}.run_registry`` lives in the backend's schema (``dpone`` unless
configured), next to the lock and job-state tables, so every host that shares the
orchestration backend shares one registry. This module stores documents and
knows nothing of their format: :mod:`dpone_core.ops.registry_select` turns rows
into registry entries (and is the only caller).

- The table is created on first use, idempotently, under a transaction-level
  advisory lock of its own (two ``int4`` keys, apart from run locks and from the
  backend's schema lock), after :func:`~dpone_core.backends.postgres_schema.ensure_schema`
  made the schema.
- :meth:`PostgresRegistryTable.insert` is ``INSERT ... ON CONFLICT DO NOTHING``
  on the primary key ``(run_id, attempt)``: of several hosts registering one run
  id and attempt at once exactly one row is written, and the others read it back
  to compare.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from dpone_core.backends.postgres_connection import PgConnection, PostgresTarget
from dpone_core.backends.postgres_errors import backend_error
from dpone_core.backends.postgres_schema import ensure_schema, qualified

__all__ = ["REGISTRY_TABLE", "PostgresRegistryTable", "StoredRow"]

REGISTRY_TABLE = "run_registry"
#: First key of the registry-table advisory lock: "dprg" as an int4.
_LOCK_CLASS = int.from_bytes(b"dprg", "big", signed=True)

_CREATE: LiteralString = """
CREATE TABLE IF NOT EXISTS {schema}.run_registry (
    run_id         text NOT NULL,
    attempt        integer NOT NULL CHECK (attempt >= 1),
    process        text NOT NULL,
    status         text NOT NULL,
    started_at     timestamptz,
    fingerprint    text NOT NULL,
    registered_at  timestamptz NOT NULL,
    document       jsonb NOT NULL,
    PRIMARY KEY (run_id, attempt)
)
"""
_INDEX: LiteralString = (
    "CREATE INDEX IF NOT EXISTS run_registry_process_started"
    " ON {schema}.run_registry (process, started_at)"
)

_ready_lock = threading.Lock()
_ready: set[tuple[str, ...]] = set()

_T = TypeVar("_T")

#: (run_id, attempt, document) as stored.
StoredRow = tuple[str, int, Any]


class PostgresRegistryTable:
    """Rows of ``{schema}.run_registry``; one connection of its own, calls serialised."""

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self._conn: PgConnection | None = None
        self._mutex = threading.Lock()
        t = target
        self._insert_sql = qualified(
            "INSERT INTO {schema}.run_registry (run_id, attempt, process, status, started_at,"
            " fingerprint, registered_at, document) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, attempt) DO NOTHING",
            t,
        )
        self._one_sql = qualified(
            "SELECT run_id, attempt, document FROM {schema}.run_registry"
            " WHERE run_id = %s AND attempt = %s",
            t,
        )
        self._latest_sql = qualified(
            "SELECT run_id, attempt, document FROM {schema}.run_registry"
            " WHERE run_id = %s ORDER BY attempt DESC LIMIT 1",
            t,
        )
        self._many_sql = qualified(
            "SELECT run_id, attempt, document FROM {schema}.run_registry"
            " WHERE (%(run_id)s::text IS NULL OR run_id = %(run_id)s)"
            " AND (%(process)s::text IS NULL OR process = %(process)s)"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " ORDER BY started_at NULLS LAST, run_id, attempt",
            t,
        )

    def describe(self) -> str:
        return self.target.describe_table(REGISTRY_TABLE)

    def location(self, run_id: str, attempt: int) -> str:
        return f"{self.describe()} run id {run_id!r} attempt {attempt}"

    def insert(
        self,
        *,
        run_id: str,
        attempt: int,
        process: str,
        status: str,
        started_at: str | None,
        fingerprint: str,
        registered_at: str,
        document: dict[str, Any],
    ) -> StoredRow | None:
        """Insert the row; None when written, else the row already stored for the key."""

        def write(conn: PgConnection) -> StoredRow | None:
            values = (run_id, attempt, process, status, started_at, fingerprint, registered_at)
            cursor = conn.execute(self._insert_sql, (*values, Jsonb(document)))
            if cursor.rowcount == 1:
                return None
            row = conn.execute(self._one_sql, (run_id, attempt)).fetchone()
            return None if row is None else (str(row[0]), int(row[1]), row[2])

        return self._call(write, "registering a run")

    def fetch(self, run_id: str, attempt: int | None) -> StoredRow | None:
        def read(conn: PgConnection) -> StoredRow | None:
            if attempt is None:
                row = conn.execute(self._latest_sql, (run_id,)).fetchone()
            else:
                row = conn.execute(self._one_sql, (run_id, attempt)).fetchone()
            return None if row is None else (str(row[0]), int(row[1]), row[2])

        return self._call(read, "reading the run registry")

    def fetch_many(
        self, *, run_id: str | None, process: str | None, status: str | None
    ) -> list[StoredRow]:
        params = {"run_id": run_id, "process": process, "status": status}

        def read(conn: PgConnection) -> list[StoredRow]:
            rows = conn.execute(self._many_sql, params).fetchall()
            return [(str(r[0]), int(r[1]), r[2]) for r in rows]

        return self._call(read, "listing the run registry")

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals ---------------------------------------------------------------------------
    def _call(self, operation: Callable[[PgConnection], _T], doing: str) -> _T:
        with self._mutex:
            if self._conn is None or self._conn.closed:
                self._conn = self.target.connect(purpose="run registry")
            conn = self._conn
            try:
                self._ensure_table(conn)
                return operation(conn)
            except psycopg.Error as exc:
                if conn.broken or isinstance(exc, psycopg.OperationalError):
                    conn.close()
                    self._conn = None
                raise backend_error(exc, self.target, doing) from None

    def _ensure_table(self, conn: PgConnection) -> None:
        identity = self.target.identity()
        with _ready_lock:
            if identity in _ready:
                return
        ensure_schema(conn, self.target)
        schema_key = int.from_bytes(
            zlib.crc32(self.target.schema.encode()).to_bytes(4, "big"), "big", signed=True
        )
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, schema_key))
            conn.execute(qualified(_CREATE, self.target))
            conn.execute(qualified(_INDEX, self.target))
        with _ready_lock:
            _ready.add(identity)
