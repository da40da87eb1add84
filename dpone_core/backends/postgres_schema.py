"""The backend's tables, created on first use: idempotent, and safe when many start at once.

``CREATE ... IF NOT EXISTS`` alone is not concurrency-safe in PostgreSQL: two
sessions that both find a table missing both insert its catalog rows and one
fails with a unique violation. So creation runs in one transaction under a
transaction-level advisory lock (released by the commit), and records the
version it created in ``schema_version``. The steady state costs one query
per process and schema (the version, and whether the additions below exist),
without the lock.

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

**Additions** change nothing an older dpone of the same ``SCHEMA_VERSION``
relies on, so they are not versions (a version newer than the code is
refused, which would stop every scheduler still running the older dpone).
They are applied idempotently, under the same lock, by whichever process
finds them missing first, and the database itself maintains them, so older
writers keep them correct:

the change feed (``job_states.change_seq``)
    Every insert or update of a ``job_states`` row takes the next value of the
    sequence ``job_state_change_seq`` in a trigger, *while holding a
    transaction-level advisory lock until commit*. So change numbers are
    handed out in commit order: once a reader sees number n, every smaller
    number is committed (or rolled back) already, and listing rows by
    ``change_seq`` after a cursor never skips a write that completes later.
    (A plain sequence would: numbers are taken at the statement, and a
    transaction holding a smaller one may commit after a reader saw a
    bigger one.) The lock costs writers one short serialisation per state
    write, from their update to their commit. Rows that existed before the
    addition are numbered in ``updated_at`` order when it is applied.
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

__all__ = ["CHANGE_SEQUENCE", "SCHEMA_VERSION", "ensure_schema", "qualified"]

SCHEMA_VERSION = 1

#: First key of the schema-creation advisory lock: "dpon" as an int4.
_SCHEMA_LOCK_CLASS = int.from_bytes(b"dpon", "big", signed=True)
#: First key of the change-feed advisory lock (see "Additions"): "dpch" as an int4.
_CHANGE_LOCK_CLASS = int.from_bytes(b"dpch", "big", signed=True)

#: The sequence of the change feed; its existence marks the addition as applied.
CHANGE_SEQUENCE = "job_state_change_seq"

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

#: The change feed (see "Additions"), in order; the sequence is created last.
_CHANGE_FEED: tuple[LiteralString, ...] = (
    "ALTER TABLE {schema}.job_states ADD COLUMN IF NOT EXISTS change_seq bigint",
    # Rows written before the addition, numbered in the order they were written.
    """
    UPDATE {schema}.job_states s SET change_seq = n.seq
    FROM (SELECT run_id, (SELECT coalesce(max(change_seq), 0) FROM {schema}.job_states)
                 + row_number() OVER (ORDER BY updated_at, run_id) AS seq
          FROM {schema}.job_states WHERE change_seq IS NULL) n
    WHERE s.run_id = n.run_id
    """,
    "ALTER TABLE {schema}.job_states ALTER COLUMN change_seq SET NOT NULL",
    """
    CREATE UNIQUE INDEX IF NOT EXISTS job_states_change_seq_idx
    ON {schema}.job_states (change_seq)
    """,
    """
    CREATE OR REPLACE FUNCTION {schema}.dpone_job_state_changed() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
        -- Held until commit: change numbers are taken in commit order.
        PERFORM pg_advisory_xact_lock({lock_class}, {lock_key});
        NEW.change_seq := nextval({sequence});
        RETURN NEW;
    END
    $fn$
    """,
    "DROP TRIGGER IF EXISTS job_states_change_seq ON {schema}.job_states",
    """
    CREATE TRIGGER job_states_change_seq BEFORE INSERT OR UPDATE ON {schema}.job_states
    FOR EACH ROW EXECUTE FUNCTION {schema}.dpone_job_state_changed()
    """,
    "CREATE SEQUENCE IF NOT EXISTS {schema}.job_state_change_seq AS bigint",
    """
    SELECT setval({sequence}, coalesce(max(change_seq), 0) + 1, false)
    FROM {schema}.job_states
    """,
)

_ready_lock = threading.Lock()
_ready: set[tuple[str, ...]] = set()


def qualified(template: LiteralString, target: PostgresTarget) -> sql.Composed:
    """``template`` with ``{schema}`` replaced by the quoted schema name."""
    return sql.SQL(template).format(schema=sql.Identifier(target.schema))


def _installed(conn: PgConnection, target: PostgresTarget) -> tuple[int | None, bool]:
    """The installed version, and whether every addition is applied (one round trip)."""
    row = conn.execute(
        qualified(
            "SELECT (SELECT max(version) FROM {schema}.schema_version),"
            " to_regclass(%s) IS NOT NULL",
            target,
        ),
        (_sequence_name(target),),
    ).fetchone()
    if row is None:
        return None, False
    return (None if row[0] is None else int(row[0])), bool(row[1])


def _sequence_name(target: PostgresTarget) -> str:
    """The change sequence's qualified name as text (schema names are plain identifiers)."""
    return f'"{target.schema}".{CHANGE_SEQUENCE}'


def _schema_key(target: PostgresTarget) -> int:
    return int.from_bytes(zlib.crc32(target.schema.encode()).to_bytes(4, "big"), "big", signed=True)


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
            version, complete = _installed(conn, target)
        except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
            version, complete = None, False
        if version is None or version < SCHEMA_VERSION or not complete:
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
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_SCHEMA_LOCK_CLASS, _schema_key(target))
        )
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
        version, complete = _installed(conn, target)
        if version is not None:
            _check_version(version, target)
        if version is None or version < SCHEMA_VERSION:
            for statement in _V1:
                conn.execute(qualified(statement, target))
            conn.execute(
                qualified(
                    "INSERT INTO {schema}.schema_version (version, applied_by) VALUES (%s, %s)",
                    target,
                ),
                (SCHEMA_VERSION, f"{socket.gethostname()} pid {os.getpid()}"),
            )
        if not complete:  # else another process finished it while we waited for the lock
            _add_change_feed(conn, target)


def _add_change_feed(conn: PgConnection, target: PostgresTarget) -> None:
    """The change feed addition (module docstring), inside the creation transaction."""
    for statement in _CHANGE_FEED:
        conn.execute(
            sql.SQL(statement).format(
                schema=sql.Identifier(target.schema),
                sequence=sql.Literal(_sequence_name(target)),
                lock_class=sql.Literal(_CHANGE_LOCK_CLASS),
                lock_key=sql.Literal(_schema_key(target)),
            )
        )
