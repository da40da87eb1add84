"""Job states in PostgreSQL: one row per run id, one row per transition, every write checked twice.

Every :meth:`PostgresJobStateStore.save` is one transaction that

1. **fences**: reads the lease row of ``state.lock_key`` (``FOR SHARE``, so a
   new holder cannot take the lease until this write is decided) and requires
   that it still carries ``state.holder.lock_token``. Writing ``started``,
   ``running`` or ``committed`` additionally requires that the lease is held
   and that its session still holds the key's advisory lock. A holder that
   lost its session can therefore never commit afterwards; it may still
   record *why* it stopped (``failed``) as long as nobody has taken the key
   since, which is exactly what a successor needs to read;
2. **compares and sets** the row: the update only applies if the row still has
   the status and transition count this store last read (or, for a state it
   never read, the prefix of history the new state extends). Two hosts that
   both read ``failed`` can never both admit the next attempt, even under
   different concurrency keys;
3. checks every appended transition against the lifecycle
   (:func:`~dpone_core.lifecycle.check_transition`) and appends them to
   ``job_state_transitions``.

A row that cannot be read back into a :class:`~dpone_core.state.JobState`
raises :class:`~dpone_core.state.CorruptJobState`, and nothing here ever
rewrites it: the orchestrator then blocks with ``job_state.corrupt``.

:meth:`PostgresJobStateStore.restore` is the one unfenced write, for moving
states between backends; it only ever creates a run id's row.

:meth:`PostgresJobStateStore.changed_since` lists rows by ``change_seq``, which
the database hands out in commit order (see
:mod:`~dpone_core.backends.postgres_schema`, "Additions"): the cursor is the
last number listed, and no write that commits later can take a smaller one.
The cursor also carries the change sequence's object id, so a cursor of another
database or of a schema dropped and created again is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from dpone_core.backends.postgres_connection import PgConnection, PostgresTarget
from dpone_core.backends.postgres_errors import backend_error
from dpone_core.backends.postgres_locks import SESSION_HOLDS_LOCK
from dpone_core.backends.postgres_schema import CHANGE_SEQUENCE, ensure_schema, qualified
from dpone_core.backends.protocol import BackendSettings, JobStateChanges, UnreadableJobState
from dpone_core.errors import CorruptJobState, DponeUsageError, JobStateConflict, LeaseLost
from dpone_core.job_state import JobState, Revision, check_successor, parse_job_state
from dpone_core.lifecycle import JobStatus

__all__ = ["PostgresJobStateStore"]

#: Statuses only a live lease may write; ``failed``/``blocked`` record an end.
_LIVE_LEASE_REQUIRED = frozenset({JobStatus.STARTED, JobStatus.RUNNING, JobStatus.COMMITTED})

_T = TypeVar("_T")

_CURSOR_PREFIX = "pg:1:"

#: The transitions of row ``s``, as the JSON array a state document needs.
_TRANSITIONS_JSON = (
    " SELECT coalesce(json_agg(json_build_object("
    "   'status', t.status, 'attempt', t.attempt, 'reason', t.reason,"
    "   'at', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
    "   ORDER BY t.seq), '[]'::json)"
    " FROM {schema}.job_state_transitions t WHERE t.run_id = s.run_id"
)


class PostgresJobStateStore:
    """The :class:`~dpone_core.state.JobStateStore` of the PostgreSQL backend.

    Holds one connection of its own, opened on first use and replaced when it
    breaks; safe to share between threads (calls are serialised).
    """

    def __init__(self, target: PostgresTarget, *, settings: BackendSettings | None = None) -> None:
        self.target = target
        self._settings = settings or BackendSettings()
        self._conn: PgConnection | None = None
        self._mutex = threading.Lock()
        #: The revision this store last read or wrote, per run id: the "compare"
        #: of compare-and-set.
        self._seen: dict[str, Revision] = {}
        t = target
        self._load_sql = qualified(
            "SELECT s.document, s.status, s.transition_count, ("
            + _TRANSITIONS_JSON
            + ") FROM {schema}.job_states s WHERE s.run_id = %s",
            t,
        )
        self._changes_sql = qualified(
            "SELECT s.run_id, s.change_seq, s.document, s.status, s.transition_count, ("
            + _TRANSITIONS_JSON
            + ") FROM {schema}.job_states s WHERE s.change_seq > %s"
            " ORDER BY s.change_seq LIMIT %s",
            t,
        )
        self._feed_identity_sql = qualified("SELECT to_regclass(%s)::oid::bigint", t)
        self._current_sql = qualified(
            "SELECT status, transition_count, lock_token FROM {schema}.job_states"
            " WHERE run_id = %s",
            t,
        )
        self._lease_sql = qualified(
            "SELECT l.token, l.held, l.generation, l.run_id, "
            + SESSION_HOLDS_LOCK
            + " FROM {schema}.run_locks l WHERE l.key = %s FOR SHARE OF l",
            t,
        )
        self._insert_sql = qualified(
            "INSERT INTO {schema}.job_states (run_id, status, attempt, transition_count,"
            " lock_key, lock_token, lease_generation, updated_at, document)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
            t,
        )
        self._update_sql = qualified(
            "UPDATE {schema}.job_states SET status = %s, attempt = %s, transition_count = %s,"
            " lock_key = %s, lock_token = %s, lease_generation = %s, updated_at = %s,"
            " document = %s WHERE run_id = %s AND status = %s AND transition_count = %s",
            t,
        )
        self._transition_sql = qualified(
            "INSERT INTO {schema}.job_state_transitions"
            " (run_id, seq, status, attempt, at, reason, lease_generation)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            t,
        )

    # -- the JobStateStore protocol ----------------------------------------------------
    def location(self, run_id: str) -> str:
        return f"{self.target.describe_table('job_states')} run id {run_id!r}"

    def handoff_settings(self) -> BackendSettings:
        return self._settings

    def load(self, run_id: str) -> JobState | None:
        row = self._call(lambda conn: conn.execute(self._load_sql, (run_id,)).fetchone())
        if row is None:
            self._seen[run_id] = Revision(None, 0)
            return None
        document, status, count, transitions = row
        state = self._from_row(run_id, document, status, count, transitions)
        self._seen[run_id] = Revision(status, count)
        return state

    def changed_since(self, cursor: str | None, limit: int) -> JobStateChanges:
        """Rows written after ``cursor``, in commit order (``change_seq``)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")

        def read(conn: PgConnection) -> tuple[int, int, list[tuple[Any, ...]]]:
            identity = self._feed_identity(conn)
            after = self._position(cursor, identity)
            rows = conn.execute(self._changes_sql, (after, limit + 1)).fetchall()
            return identity, after, rows

        identity, after, rows = self._call(read)
        states: list[JobState] = []
        unreadable: list[UnreadableJobState] = []
        for run_id, seq, document, status, count, transitions in rows[:limit]:
            after = int(seq)
            try:
                states.append(self._from_row(run_id, document, status, count, transitions))
            except CorruptJobState as exc:
                unreadable.append(UnreadableJobState(location=exc.path, reason=exc.reason))
        return JobStateChanges(
            states=states,
            unreadable=unreadable,
            cursor=f"{_CURSOR_PREFIX}{identity}:{after}",
            more=len(rows) > limit,
        )

    def save(self, state: JobState) -> None:
        """Write ``state`` if its writer still holds the lease and nobody wrote in between.

        Raises :class:`~dpone_core.backends.errors.LeaseLost` (fencing) or
        :class:`~dpone_core.backends.errors.JobStateConflict` (compare-and-set)
        and writes nothing in either case.
        """
        token = state.holder.lock_token if state.holder is not None else None
        if token is None:
            raise LeaseLost(
                f"job state of run {state.run_id!r} has no lock token: only the holder of the "
                "key's lease writes a run's state (use restore() to import one)"
            )

        def write(conn: PgConnection) -> None:
            with conn.transaction():
                generation = self._fence(conn, state, token)
                expected = self._expected(conn, state)
                self._write(conn, state, expected, generation)

        try:
            self._call(write)
        except JobStateConflict:
            self._seen.pop(state.run_id, None)  # read again before the next write
            raise
        self._seen[state.run_id] = Revision.of(state)

    # -- moving between backends ----------------------------------------------------------
    def restore(self, state: JobState) -> None:
        """Create the row of a run id from a state read elsewhere (e.g. a state file).

        Unfenced, so it only ever creates: an existing row raises
        :class:`~dpone_core.backends.errors.JobStateConflict` and is left as it is.
        """

        def write(conn: PgConnection) -> None:
            with conn.transaction():
                self._write(conn, state, Revision(None, 0), None, check_lifecycle=False)

        self._call(write)
        self._seen[state.run_id] = Revision.of(state)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals --------------------------------------------------------------------------
    def _call(self, operation: Callable[[PgConnection], _T]) -> _T:
        """Run ``operation`` on the store's connection, one caller at a time.

        The connection sits idle while a run executes, possibly for hours; the
        server (a restart, ``idle_session_timeout``) or a firewall may have
        closed it meanwhile. So an operation that fails with a connection
        error on a *reused* connection is tried once more on a fresh one.
        That is safe: a save is one transaction, and if its commit did land
        before the error, the repeat finds its own write (see ``_write``).
        A signal mid-statement leaves the protocol state unknown, so the
        connection is thrown away then too.
        """
        with self._mutex:
            for attempt in (1, 2):
                reused = self._conn is not None and not self._conn.closed
                conn = self._conn if self._conn is not None and reused else self._open()
                try:
                    ensure_schema(conn, self.target)
                    return operation(conn)
                except psycopg.OperationalError as exc:
                    self._drop()
                    if reused and attempt == 1:
                        continue
                    raise backend_error(exc, self.target, "using the job state store") from None
                except psycopg.Error as exc:
                    if conn.broken:
                        self._drop()
                    raise backend_error(exc, self.target, "using the job state store") from None
                except Exception:
                    raise
                except BaseException:
                    self._drop()
                    raise
            raise AssertionError("unreachable: the second attempt returns or raises")

    def _open(self) -> PgConnection:
        self._conn = self.target.connect(purpose="job state")
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _from_row(
        self, run_id: str, document: Any, status: str, count: int, transitions: Any
    ) -> JobState:
        """The state of one row; CorruptJobState unless row, document and transitions agree."""
        state = self._parse(run_id, document, transitions)
        if state.status != status or len(state.transitions) != count:
            raise CorruptJobState(
                self.location(run_id),
                f"row says status {status!r} with {count} transitions, its document and "
                f"transitions table say {state.status.value!r} with {len(state.transitions)}",
            )
        return state

    def _feed_identity(self, conn: PgConnection) -> int:
        """The change sequence's object id: which feed a cursor belongs to."""
        name = f'"{self.target.schema}".{CHANGE_SEQUENCE}'
        row = conn.execute(self._feed_identity_sql, (name,)).fetchone()
        if row is None or row[0] is None:
            raise AssertionError("ensure_schema creates the change sequence")
        return int(row[0])

    def _position(self, cursor: str | None, identity: int) -> int:
        """The last change number a cursor listed (0: none)."""
        if cursor is None:
            return 0
        owner, _, seq = cursor.removeprefix(_CURSOR_PREFIX).partition(":")
        if not cursor.startswith(_CURSOR_PREFIX) or not owner.isdigit() or not seq.isdigit():
            raise DponeUsageError(
                f"change cursor {cursor[:40]!r} was not written by a PostgreSQL job-state store"
            )
        if int(owner) != identity:
            raise DponeUsageError(
                f"change cursor belongs to another job-state store than "
                f"{self.target.describe_table('job_states')} (another database, or the schema "
                "was created again)"
            )
        return int(seq)

    def _parse(self, run_id: str, document: Any, transitions: Any) -> JobState:
        if not isinstance(document, dict):
            raise CorruptJobState(self.location(run_id), "the document is not a JSON object")
        return parse_job_state(
            {**document, "transitions": transitions}, location=self.location(run_id), run_id=run_id
        )

    def _fence(self, conn: PgConnection, state: JobState, token: str) -> int:
        """The lease generation ``state``'s writer holds, or :class:`LeaseLost`."""
        key = state.lock_key
        lease = conn.execute(self._lease_sql, (key,)).fetchone()
        if lease is None:
            raise LeaseLost(f"no lease exists for key {key!r}; run {state.run_id!r} not written")
        lease_token, held, generation, holder_run, session_alive = lease
        if lease_token != token:
            raise LeaseLost(
                f"the lease of key {key!r} now belongs to run {holder_run!r} (generation "
                f"{generation}); the writer of run {state.run_id!r} lost it and may not write"
            )
        if state.status in _LIVE_LEASE_REQUIRED and not (held and session_alive):
            raise LeaseLost(
                f"the PostgreSQL session holding key {key!r} is gone; run {state.run_id!r} "
                f"may not become {state.status.value!r} without it"
            )
        return int(generation)

    def _expected(self, conn: PgConnection, state: JobState) -> Revision:
        """What the stored row must still be for ``state`` to be written over it."""
        seen = self._seen.get(state.run_id)
        if seen is not None:
            return seen
        row = conn.execute(self._current_sql, (state.run_id,)).fetchone()
        return Revision(None, 0) if row is None else Revision(str(row[0]), int(row[1]))

    def _write(
        self,
        conn: PgConnection,
        state: JobState,
        expected: Revision,
        generation: int | None,
        *,
        check_lifecycle: bool = True,
    ) -> None:
        expected_status, expected_count = expected.status, expected.count
        new = state.transitions[expected_count:]
        if check_lifecycle:
            check_successor(expected, state, run_id=state.run_id)
        elif not new or state.status != state.transitions[-1].status:
            raise JobStateConflict(
                f"job state of run {state.run_id!r} adds no transition to the stored "
                f"{expected.describe()}"
            )
        token = state.holder.lock_token if state.holder is not None else None
        document = Jsonb(state.model_dump(mode="json", exclude={"transitions"}))
        values = (
            state.status.value,
            state.attempt,
            len(state.transitions),
            state.lock_key,
            token,
            generation,
            state.updated_at,
            document,
        )
        if expected_status is None:
            cursor = conn.execute(self._insert_sql, (state.run_id, *values))
        else:
            cursor = conn.execute(
                self._update_sql, (*values, state.run_id, expected_status, expected_count)
            )
        if cursor.rowcount != 1:
            current = conn.execute(self._current_sql, (state.run_id,)).fetchone()
            if current is not None and tuple(current) == (
                state.status.value,
                len(state.transitions),
                token,
            ):
                return  # our own write, whose commit landed before a connection error
            found = f"{current[0]!r} after {current[1]} transitions" if current else "no row"
            raise JobStateConflict(
                f"job state of run {state.run_id!r} changed since it was read: expected "
                f"{expected_status!r} after {expected_count} transitions, found {found}"
            )
        with conn.cursor() as cur:
            cur.executemany(
                self._transition_sql,
                [
                    (
                        state.run_id,
                        expected_count + offset + 1,
                        t.status.value,
                        t.attempt,
                        t.at,
                        t.reason,
                        generation,
                    )
                    for offset, t in enumerate(new)
                ],
            )

