"""Run locks in PostgreSQL: one live execution per key across every host that reaches the server.

How a key is held
    By a *session-level advisory lock* on the key's lock id, taken with
    ``pg_try_advisory_lock`` on a connection opened for that one lock. The
    server drops the lock the moment the session ends, whatever ended it: a
    ``kill -9`` of the holder (the kernel closes its socket), a crash of its
    host (keepalives and ``tcp_user_timeout`` end the session), an operator's
    ``pg_terminate_backend``. A live holder keeps its key for as long as it
    runs, past any TTL. The connection is never pooled or shared: advisory
    locks are re-entrant within a session, so two acquisitions through one
    session would both "succeed".

Lock ids and hash collisions
    A key's lock id is a stable 64-bit hash of the backend schema and the key
    (the first eight bytes of a SHA-256; Python's ``hash()`` differs per
    process). Advisory locks are per *database*, so the schema is part of it:
    two deployments in two schemas of one database (staging and production
    running the same manifests) never refuse each other's runs. The id is
    registered once in ``run_locks`` (``key`` primary key, ``lock_id``
    unique) by an ``INSERT ... ON CONFLICT DO NOTHING``: if another key already
    owns the id, the key is re-hashed with a salt until a free id is found.
    So two keys never share a lock id, and a collision costs one extra
    statement the first time the key is used instead of a false refusal. A
    registered id is never changed: keys registered by a version before the
    schema was hashed keep their id (every process reads it from the row), so
    processes of both versions always agree on a key's lock.

The lease row
    In the same transaction as ``pg_try_advisory_lock``, the winner reads the
    key's row (``FOR UPDATE``) and writes its lease: run id, host, pid, the
    server-side backend pid of its session, a fresh random token, a
    generation one higher than the last, acquisition and heartbeat times.
    The state store checks that row on every write (fencing, see
    :mod:`.postgres_state`). A row that says ``held`` while its session no
    longer holds the lock id is a crashed holder's: the next winner replaces
    it and reports ``stale_lock_replaced``.

Losing the session
    A watchdog thread per lock waits on the connection's socket. A session
    the server ends sends a last message and closes the socket, so the
    watchdog sees it within milliseconds; between those, it refreshes
    ``heartbeat_at`` every heartbeat interval, which also detects a silently
    dead server. On loss it records :attr:`PostgresRunLock.lost_reason` and
    calls the manager's ``on_lost`` handler; the default,
    :func:`interrupt_main_thread`, sends SIGTERM to the main thread, which the
    CLI turns into a failed attempt with that reason. Whatever the handler
    does, fencing refuses a commit by a holder whose session is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import select
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import psycopg
from pydantic import Field, ValidationError

from dpone_core.backends.lease import checked_ttl, heartbeat_interval
from dpone_core.backends.postgres_connection import PgConnection, PostgresTarget, first_line
from dpone_core.backends.postgres_errors import backend_error
from dpone_core.backends.postgres_schema import ensure_schema, qualified
from dpone_core.backends.protocol import (
    BackendSettings,
    HeldLockMixin,
    LockAcquisition,
    LockHolder,
    LockState,
    LockStatus,
)
from dpone_core.blockers import LOCK_CONCURRENT_RUN
from dpone_core.clock import utc_iso
from dpone_core.defaults import LOCK_TTL_SECONDS
from dpone_core.errors import DponeError, OrchestrationBackendError
from dpone_core.liveness import pid_start_time

__all__ = [
    "SESSION_HOLDS_LOCK",
    "LossHandler",
    "PostgresLockHolder",
    "PostgresRunLock",
    "PostgresRunLockManager",
    "interrupt_main_thread",
    "stable_lock_id",
]

_log = logging.getLogger(__name__)

#: How many salted hashes to try before giving up on a key (each try that fails
#: means another key already owns that 64-bit id: 16 in a row will not happen).
MAX_SALTS = 16
_MAX_HEARTBEAT_INTERVAL = 10.0

#: SQL predicate, over ``run_locks`` aliased ``l``: the session recorded in the
#: lease still holds the key's advisory lock. ``pg_advisory_lock(bigint)``
#: shows in ``pg_locks`` as classid = high 32 bits, objid = low 32 bits,
#: objsubid = 1.
SESSION_HOLDS_LOCK: LiteralString = """EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks p
    WHERE p.locktype = 'advisory'
      AND p.database = (SELECT d.oid FROM pg_catalog.pg_database d
                        WHERE d.datname = current_database())
      AND p.classid = ((l.lock_id >> 32) & 4294967295)::oid
      AND p.objid = (l.lock_id & 4294967295)::oid
      AND p.objsubid = 1
      AND p.pid = l.backend_pid
      AND p.granted)"""

_HOLDER_COLUMNS: LiteralString = (
    "l.key, l.run_id, l.pid, l.host, l.acquired_at, l.heartbeat_at, l.token, "
    "l.pid_start_time, l.generation, l.lock_id, l.backend_pid"
)


def stable_lock_id(key: str, salt: int = 0, *, schema: str | None = None) -> int:
    """The advisory-lock id of ``key`` in ``schema``: the same in every process and host.

    Without ``schema``, the id that versions before the schema was hashed registered
    (kept for the rows they wrote; see the module docstring).
    """
    if schema is not None:
        material = f"{schema}\x01{salt}\x00{key}".encode()
    else:
        material = key.encode("utf-8") if salt == 0 else f"{salt}\x00{key}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big", signed=True)


class PostgresLockHolder(LockHolder):
    """A lease as stored in ``run_locks``; the file record's fields plus where it lives."""

    #: Bumped by every acquisition of the key; the token identifies the lease.
    generation: int = Field(ge=1)
    lock_id: int
    #: Server process id of the holder's lock session (``pg_backend_pid()``).
    backend_pid: int

    def describe(self) -> str:
        return (
            f"run {self.run_id} (pid {self.pid} on host {self.host}, lease generation "
            f"{self.generation}) since {self.acquired_at}"
        )


def _holder_from_row(row: Sequence[Any]) -> PostgresLockHolder:
    key, run_id, pid, host, acquired, beat, token, start, generation, lock_id, backend = row[:11]
    return PostgresLockHolder(
        key=key,
        run_id=run_id,
        pid=pid,
        host=host,
        acquired_at=utc_iso(acquired),
        heartbeat_at=utc_iso(beat),
        token=token,
        pid_start_time=start,
        generation=generation,
        lock_id=lock_id,
        backend_pid=backend,
    )


LossHandler = Callable[["PostgresRunLock"], None]


def interrupt_main_thread(lock: PostgresRunLock) -> None:
    """Default reaction to a lost lock: stop the run by SIGTERM to the main thread.

    Only when the lock was taken in the main thread and Python handles SIGTERM
    there (``dpone orchestrate run`` does, via ``signals_as_exceptions``; so
    does a Dagster run worker): the handler's exception then ends the attempt
    as failed and records :attr:`PostgresRunLock.lost_reason`. Without such a
    handler a SIGTERM would kill the host process outright, so nothing is sent;
    the run is then stopped at its next state write, which fencing refuses.
    """
    main = threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM)
    if lock.acquired_in_main_thread and callable(handler) and main.ident is not None:
        signal.pthread_kill(main.ident, signal.SIGTERM)
        return
    _log.error(
        "lock of key %r lost and the run cannot be interrupted from here; its next state "
        "write will be refused (fencing)",
        lock.key,
    )


class _LeaseGone(DponeError):
    pass


class PostgresRunLock(HeldLockMixin):
    """A key held through its own PostgreSQL session: a :class:`HeldLock` of this backend.

    Its watchdog thread beats the lease and notices a lost session; release it
    (or use ``with``) when the execution ends.
    """

    def __init__(
        self,
        *,
        holder: PostgresLockHolder,
        conn: PgConnection,
        target: PostgresTarget,
        heartbeat_interval: float,
        on_lost: LossHandler | None,
    ) -> None:
        self._holder: PostgresLockHolder = holder
        self._interval = heartbeat_interval
        self._owner_pid = os.getpid()
        # Serialises every use of the connection (heartbeat, probe, release).
        self._mutex = threading.Lock()
        self._released = False
        self._conn = conn
        self._on_lost = on_lost
        self._lost_reason: str | None = None
        self.acquired_in_main_thread = threading.current_thread() is threading.main_thread()
        #: Set once the lock is known lost; tests and callers may wait on it.
        self.lost = threading.Event()
        self._beat_sql = qualified(
            "UPDATE {schema}.run_locks SET heartbeat_at = clock_timestamp() "
            "WHERE key = %s AND token = %s AND held RETURNING heartbeat_at",
            target,
        )
        self._release_sql = qualified(
            "UPDATE {schema}.run_locks SET held = false, released_at = clock_timestamp() "
            "WHERE key = %s AND token = %s",
            target,
        )
        self._wake_r, self._wake_w = os.pipe()
        self._watching = True
        self._watchdog = threading.Thread(
            target=self._watch, name=f"dpone-pg-lock-{holder.generation}", daemon=True
        )
        self._watchdog.start()

    # -- what the orchestrator reads --------------------------------------------------
    @property
    def released(self) -> bool:
        return self._released

    @property
    def heartbeat_interval(self) -> float:
        return self._interval

    @property
    def holder(self) -> PostgresLockHolder:
        return self._holder

    @property
    def lost_reason(self) -> str | None:
        """Why the lock was lost, or None while it is held (read by the orchestrator)."""
        return self._lost_reason

    @property
    def generation(self) -> int:
        return self._holder.generation

    @property
    def backend_pid(self) -> int:
        return self._holder.backend_pid

    # -- the watchdog -------------------------------------------------------------------
    def _watch(self) -> None:
        """Wait on the session's socket: beat while it stays quiet, probe when it speaks.

        ``poll`` rather than ``select``: a process with many open files (a
        Dagster run worker) may hold descriptors above select's limit of 1024.
        """
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        sock = -1
        with contextlib.suppress(psycopg.Error):
            sock = self._conn.fileno()
        if sock >= 0:  # POLLHUP and POLLERR are always reported
            poller.register(sock, select.POLLIN | select.POLLPRI)
        timeout_ms = max(1, round(self._interval * 1000))
        try:
            while True:
                ready = {fd for fd, _ in poller.poll(timeout_ms)}
                if self._wake_r in ready:
                    return
                reason: str | None = None
                with self._mutex:
                    if self._released:
                        return
                    try:
                        if sock in ready:
                            # The server spoke unasked: usually its goodbye.
                            self._conn.execute("SELECT 1")
                        else:
                            self._refresh_heartbeat()
                    except psycopg.Error as exc:
                        reason = (
                            f"lost the lock of key {self.key!r}: its PostgreSQL session ended "
                            f"({first_line(exc)})"
                        )
                    except _LeaseGone as exc:
                        reason = str(exc)
                if reason is not None:
                    self._mark_lost(reason)
                    return
        finally:
            with self._mutex:
                self._watching = False
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _refresh_heartbeat(self) -> None:
        row = self._conn.execute(self._beat_sql, (self.key, self.token)).fetchone()
        if row is None:
            raise _LeaseGone(
                f"lost the lock of key {self.key!r}: its lease row no longer carries this "
                "holder's token"
            )
        self._holder = self._holder.model_copy(update={"heartbeat_at": utc_iso(row[0])})

    def _mark_lost(self, reason: str) -> None:
        self._lost_reason = reason
        self.lost.set()
        _log.error("dpone: %s", reason)
        if self._released or self._on_lost is None:
            return
        try:
            self._on_lost(self)
        except Exception:  # a broken handler must not hide the loss itself
            _log.exception("the lock-loss handler failed")

    # -- release --------------------------------------------------------------------------
    def release(self) -> None:
        """Give the key back; safe to call twice, and after the session is gone.

        The lease row is marked released before the advisory lock is unlocked
        (synchronously, not by closing, which the server would process some
        milliseconds later), so whoever takes the key next sees a clean row.
        In a forked child this does nothing: the session is the parent's, and
        touching its socket would corrupt the parent's protocol stream.
        """
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self._watching:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"x")
            if os.getpid() != self._owner_pid:
                return
            try:
                if self._lost_reason is None and not self._conn.broken:
                    self._conn.execute(self._release_sql, (self.key, self.token))
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._holder.lock_id,))
            except psycopg.Error as exc:
                _log.warning(
                    "releasing key %r: %s (the server frees the lock with the session)",
                    self.key,
                    first_line(exc),
                )
            finally:
                self._conn.close()



class PostgresRunLockManager:
    """The :class:`~dpone_core.locks.LockManager` of the PostgreSQL backend."""

    def __init__(
        self,
        target: PostgresTarget,
        ttl_seconds: float = LOCK_TTL_SECONDS,
        *,
        host: str | None = None,
        on_lost: LossHandler | None = interrupt_main_thread,
        settings: BackendSettings | None = None,
    ) -> None:
        self.target = target
        #: Only paces the heartbeat here: liveness is the session, not a clock.
        self.ttl_seconds = checked_ttl(ttl_seconds)
        self.host = host or socket.gethostname()
        self.on_lost = on_lost
        #: How a scheduler handoff selects this backend (set by ``select_backend``).
        self._settings = settings or BackendSettings()
        t = target
        self._select_id = qualified("SELECT lock_id FROM {schema}.run_locks WHERE key = %s", t)
        self._register = qualified(
            "INSERT INTO {schema}.run_locks (key, lock_id) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING RETURNING lock_id",
            t,
        )
        self._row = qualified(
            "SELECT "
            + _HOLDER_COLUMNS
            + ", l.held, "
            + SESSION_HOLDS_LOCK
            + " FROM {schema}.run_locks l WHERE l.key = %s",
            t,
        )
        self._row_for_update = qualified(
            "SELECT " + _HOLDER_COLUMNS + ", l.held FROM {schema}.run_locks l "
            "WHERE l.key = %s FOR UPDATE",
            t,
        )
        self._take = qualified(
            "UPDATE {schema}.run_locks AS l SET generation = l.generation + 1, held = true, "
            "token = %s, run_id = %s, host = %s, pid = %s, pid_start_time = %s, "
            "backend_pid = pg_backend_pid(), acquired_at = clock_timestamp(), "
            "heartbeat_at = clock_timestamp(), released_at = NULL "
            "WHERE l.key = %s RETURNING " + _HOLDER_COLUMNS,
            t,
        )
        self._held_rows = qualified(
            "SELECT "
            + _HOLDER_COLUMNS
            + ", l.held, "
            + SESSION_HOLDS_LOCK
            + " FROM {schema}.run_locks l WHERE l.held ORDER BY l.key",
            t,
        )

    @property
    def heartbeat_interval(self) -> float:
        return heartbeat_interval(self.ttl_seconds, cap_seconds=_MAX_HEARTBEAT_INTERVAL)

    def location(self) -> str:
        return self.target.describe_table("run_locks")

    def handoff_settings(self) -> BackendSettings:
        return self._settings

    # -- acquire ------------------------------------------------------------------------
    def acquire(self, key: str, *, run_id: str) -> LockAcquisition:
        if not key:
            raise ValueError("empty key: a concurrency key must be a non-empty string")
        conn = self.target.connect(purpose="lock")
        try:
            # Lease rows need no flush to disk: a server crash ends every session and
            # so every lock anyway, and a state write (always synchronous) flushes the
            # write-ahead log up to itself, lease included. Saves an fsync per change.
            conn.execute("SET synchronous_commit = off")
            ensure_schema(conn, self.target)
            lock_id = self._lock_id(conn, key)
            outcome = self._try(conn, key, run_id, lock_id)
        except BaseException as exc:
            conn.close()  # ends the session, and with it any advisory lock it took
            if isinstance(exc, psycopg.Error):
                raise backend_error(exc, self.target, f"acquiring key {key!r}") from None
            raise
        if not outcome.acquired:
            conn.close()
        return outcome

    def _lock_id(self, conn: PgConnection, key: str) -> int:
        """The key's registered lock id; registers one (re-hashing on collision) if new."""
        row = conn.execute(self._select_id, (key,)).fetchone()
        if row is not None:
            return int(row[0])
        for salt in range(MAX_SALTS):
            candidate = stable_lock_id(key, salt, schema=self.target.schema)
            if conn.execute(self._register, (key, candidate)).fetchone() is not None:
                return candidate
            row = conn.execute(self._select_id, (key,)).fetchone()
            if row is not None:  # a contender registered the key first
                return int(row[0])
            # ``candidate`` belongs to another key: a hash collision. Next salt.
        raise OrchestrationBackendError(
            f"no free lock id for key {key!r} after {MAX_SALTS} salted hashes"
        )

    def _try(self, conn: PgConnection, key: str, run_id: str, lock_id: int) -> LockAcquisition:
        with conn.transaction():
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
            if not (got and got[0]):
                return self._refusal(conn, key)
            previous_row = conn.execute(self._row_for_update, (key,)).fetchone()
            previous: PostgresLockHolder | None = None
            if previous_row is not None and previous_row[11]:
                # We hold its lock id, so the session of this lease is gone.
                with contextlib.suppress(ValidationError, TypeError, ValueError):
                    previous = _holder_from_row(previous_row)
            pid = os.getpid()
            taken = conn.execute(
                self._take,
                (secrets.token_hex(16), run_id, self.host, pid, pid_start_time(pid), key),
            ).fetchone()
            if taken is None:
                raise OrchestrationBackendError(f"the lease row of key {key!r} vanished")
            holder = _holder_from_row(taken)
        lock = PostgresRunLock(
            holder=holder,
            conn=conn,
            target=self.target,
            heartbeat_interval=self.heartbeat_interval,
            on_lost=self.on_lost,
        )
        message = f"acquired key {key!r} for run {run_id} (lease generation {holder.generation})"
        if previous is not None:
            message += (
                f", replacing the stale lease of {previous.describe()} because its PostgreSQL "
                "session is gone"
            )
        return LockAcquisition(
            acquired=True,
            lock=lock,
            blocker=None,
            holder=holder,
            message=message,
            stale_lock_replaced=previous is not None,
            replaced_holder=previous,
        )

    def _refusal(self, conn: PgConnection, key: str) -> LockAcquisition:
        row = conn.execute(self._row, (key,)).fetchone()
        holder: PostgresLockHolder | None = None
        if row is not None and row[11] and row[12]:
            with contextlib.suppress(ValidationError, TypeError, ValueError):
                holder = _holder_from_row(row)
        if holder is not None:
            message = f"key {key!r} is held by {holder.describe()}"
        else:
            message = (
                f"key {key!r} is held by another session (its lease is being written or "
                "released right now)"
            )
        return LockAcquisition(
            acquired=False, lock=None, blocker=LOCK_CONCURRENT_RUN, holder=holder, message=message
        )

    # -- inspection ---------------------------------------------------------------------
    def _query(self, purpose: str, query: Any, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self.target.connect(purpose=purpose)
        try:
            ensure_schema(conn, self.target)
            return conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise backend_error(exc, self.target, purpose) from None
        finally:
            conn.close()

    def inspect(self) -> list[LockStatus]:
        """Every lease marked held: ``held`` while its session holds the lock, else ``stale``."""
        statuses: list[LockStatus] = []
        for row in self._query("listing locks", self._held_rows, ()):
            location = f"{self.location()} key {str(row[0])!r}"
            try:
                holder = _holder_from_row(row)
            except (ValidationError, TypeError, ValueError):
                statuses.append(LockStatus(str(row[0]), None, "corrupt", location))
                continue
            state: LockState = "held" if row[12] else "stale"
            statuses.append(LockStatus(holder.key, holder, state, location))
        return statuses

    def is_held(self, key: str, token: str) -> bool | None:
        """Is this lease still in force: same token, marked held, and its session holds the lock?"""
        rows = self._query("checking a lease", self._row, (key,))
        if not rows:
            return False
        row = rows[0]
        return bool(row[6] == token and row[11] and row[12])

    def holder_alive(self, holder: LockHolder) -> bool | None:
        """:meth:`is_held` for a holder record (its key and token)."""
        return self.is_held(holder.key, holder.token)
