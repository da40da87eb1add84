"""The backend's tables, created on first use: idempotent, and safe when many start at once.

``CREATE ... IF NOT EXISTS`` alone is not concurrency-safe in PostgreSQL: two
sessions that both find a table missing both insert its catalog rows and one
fails with a unique violation. So creation runs in one transaction under a
transaction-level advisory lock (released by the commit), and records the
version it created in ``schema_version``. The steady state costs one
``SELECT max(version)`` per process and schema, without the lock.

The lock uses the two-``int4`` form of the advisory-lock functions, whose
keys PostgreSQL keeps apart from the one-``bigint`` keys of run locks, so
schema creation can never wait for a run that holds a key.

Tables (schema ``dpone`` unless configured):

``schema_version(version, applied_at, applied_by)``
    One row per version applied; a database made by a newer dpone is refused
    rather than written by code that does not know its rules.
``run_locks``
    One row per concurrency key ever used: the key's advisory-lock id (unique,
    so two keys never share one, which is how hash collisions are resolved),
    and the lease: holder, token, generation, session, times.
``job_states``
    One row per run id: status, attempt, transition count (the compare-and-set
    fields), the lease that wrote it, and the rest of the state as JSON.
``job_state_transitions``
    One row per transition, append-only, keyed by ``(run_id, seq)``.
"""

from __future__ import annotations

import os
import socket
import threading
import zlib
from typing import LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from dpone_core.backends.errors import BackendSchemaError, BackendUnavailable
from dpone_core.backends.postgres_connection import PgConnection, PostgresTarget, first_line

__all__ = ["SCHEMA_VERSION", "ensure_schema", "qualified"]

SCHEMA_VERSION = 1

#: First key of the schema-creation advisory lock: "dpon" as an int4.
_SCHEMA_LOCK_CLASS = int.from_bytes(b"dpon", "big", signed=True)

_V1: tuple[LiteralString, ...] = (
    """
    CREATE TABLE IF NOT EXISTS {schema}.run_locks (
        key            text PRIMARY KEY,
        lock_id        bigint NOT NULL UNIQUE,
        generation     bigint NOT NULL DEFAULT 0,
        held           boolean NOT NULL DEFAULT false,
        token          text,
        run_id         text,
        host           text,
        pid            integer,
        pid_start_time text,
        backend_pid    integer,
        acquired_at    timestamptz,
        heartbeat_at   timestamptz,
        released_at    timestamptz
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS {schema}.job_states (
        run_id           text PRIMARY KEY,
        status           text NOT NULL,
        attempt          integer NOT NULL,
        transition_count integer NOT NULL,
        lock_key         text NOT NULL,
        lock_token       text,
        lease_generation bigint,
        updated_at       timestamptz NOT NULL,
        document         jsonb NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS {schema}.job_state_transitions (
        run_id           text NOT NULL REFERENCES {schema}.job_states (run_id) ON DELETE CASCADE,
        seq              integer NOT NULL,
        status           text NOT NULL,
        attempt          integer NOT NULL,
        at               timestamptz NOT NULL,
        reason           text,
        lease_generation bigint,
        PRIMARY KEY (run_id, seq)
    )
    """,
)

_ready_lock = threading.Lock()
_ready: set[tuple[str, ...]] = set()


def qualified(template: LiteralString, target: PostgresTarget) -> sql.Composed:
    """``template`` with ``{schema}`` replaced by the quoted schema name."""
    return sql.SQL(template).format(schema=sql.Identifier(target.schema))


def _installed_version(conn: PgConnection, target: PostgresTarget) -> int | None:
    row = conn.execute(
        qualified("SELECT max(version) FROM {schema}.schema_version", target)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _check_version(version: int, target: PostgresTarget) -> None:
    if version > SCHEMA_VERSION:
        raise BackendSchemaError(
            f"the tables in {target.describe_table('schema_version')} are at version {version}, "
            f"newer than this dpone understands ({SCHEMA_VERSION}); upgrade dpone"
        )


def ensure_schema(conn: PgConnection, target: PostgresTarget) -> None:
    """Create the schema and tables if missing; once per process and target.

    ``conn`` must be in autocommit mode and idle (no open transaction).
    """
    identity = target.identity()
    with _ready_lock:
        if identity in _ready:
            return
    try:
        try:
            version = _installed_version(conn, target)
        except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
            version = None
        if version is None or version < SCHEMA_VERSION:
            _create(conn, target)
        else:
            _check_version(version, target)
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(
            f"{target.describe()}: connection failed while checking the backend tables: "
            f"{first_line(exc)}"
        ) from None
    except psycopg.Error as exc:
        hint = (
            " (run dpone once as a user with the CREATE privilege on the database, or create "
            "the schema and grant CREATE on it)"
            if isinstance(exc, pg_errors.InsufficientPrivilege)
            else ""
        )
        raise BackendSchemaError(
            f"cannot create the backend tables in schema {target.schema!r} of "
            f"{target.describe()}: {first_line(exc)}{hint}"
        ) from None
    with _ready_lock:
        _ready.add(identity)


def _create(conn: PgConnection, target: PostgresTarget) -> None:
    schema_key = int.from_bytes(
        zlib.crc32(target.schema.encode()).to_bytes(4, "big"), "big", signed=True
    )
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_SCHEMA_LOCK_CLASS, schema_key))
        conn.execute(qualified("CREATE SCHEMA IF NOT EXISTS {schema}", target))
        conn.execute(
            qualified(
                "CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " applied_by text NOT NULL)",
                target,
            )
        )
        version = _installed_version(conn, target)
        if version is not None:
            _check_version(version, target)
            if version >= SCHEMA_VERSION:
                return  # another process created it while we waited for the lock
        for statement in _V1:
            conn.execute(qualified(statement, target))
        conn.execute(
            qualified(
                "INSERT INTO {schema}.schema_version (version, applied_by) VALUES (%s, %s)",
                target,
            ),
            (SCHEMA_VERSION, f"{socket.gethostname()} pid {os.getpid()}"),
        )
