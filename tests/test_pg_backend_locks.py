"""PostgresRunLockManager against the local PostgreSQL: sessions, leases, collisions, loss.

Every lock here is a real advisory lock on a real session; a "lost session" is
a real ``pg_terminate_backend``. Checks of who holds what go through a
separate admin connection (``pg_locks`` and the ``run_locks`` table).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime

import pytest

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_locks import (
    PostgresLockHolder,
    PostgresRunLock,
    PostgresRunLockManager,
    stable_lock_id,
)
from dpone_core.locks import LOCK_CONCURRENT_RUN, LockManager
from dpone_core.signals import TerminationSignal, signals_as_exceptions
from tests.support.pg import TEST_DSN, admin, query, terminate


@pytest.fixture
def manager(schema: str) -> PostgresRunLockManager:
    return PostgresRunLockManager(PostgresTarget(TEST_DSN, schema), on_lost=None)


def _acquire(manager: PostgresRunLockManager, key: str, run_id: str) -> PostgresRunLock:
    outcome = manager.acquire(key, run_id=run_id)
    assert outcome.acquired, outcome.message
    assert isinstance(outcome.lock, PostgresRunLock)
    return outcome.lock


def _row(schema: str, key: str) -> dict[str, object]:
    rows = query(
        f"SELECT held, token, run_id, generation, backend_pid, lock_id, heartbeat_at, "
        f"acquired_at FROM {schema}.run_locks WHERE key = %s",
        key,
    )
    assert rows, f"no run_locks row for {key!r}"
    names = ["held", "token", "run_id", "generation", "backend_pid", "lock_id", "beat", "acq"]
    return dict(zip(names, rows[0], strict=True))


def _session_holds(backend_pid: int, lock_id: int) -> bool:
    rows = query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
        "AND pid = %s AND classid = ((%s::bigint >> 32) & 4294967295)::oid "
        "AND objid = (%s::bigint & 4294967295)::oid AND granted",
        backend_pid,
        lock_id,
        lock_id,
    )
    return rows[0][0] == 1


def test_lock_id_is_a_stable_64_bit_hash() -> None:
    code = "from dpone_core.backends.postgres_locks import stable_lock_id as h; print(h('orders'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == stable_lock_id("orders")  # not Python's per-process hash()
    assert -(2**63) <= stable_lock_id("orders") < 2**63
    assert stable_lock_id("orders", 1) != stable_lock_id("orders")
    assert stable_lock_id("a/b") != stable_lock_id("a_b")
    ids = {stable_lock_id("orders", salt, schema=s) for salt in (0, 1) for s in ("a", "b", "")}
    assert len(ids | {stable_lock_id("orders"), stable_lock_id("orders", 1)}) == 8


def test_acquire_records_the_lease_and_release_frees_it(
    manager: PostgresRunLockManager, schema: str
) -> None:
    assert isinstance(manager, LockManager)
    lock = _acquire(manager, "orders", "r1")
    holder = lock.holder
    assert isinstance(holder, PostgresLockHolder)
    assert (holder.key, holder.run_id, holder.generation) == ("orders", "r1", 1)
    row = _row(schema, "orders")
    assert row["held"] is True and row["token"] == lock.token and row["run_id"] == "r1"
    assert row["backend_pid"] == holder.backend_pid
    assert row["lock_id"] == stable_lock_id("orders", schema=schema)
    assert _session_holds(holder.backend_pid, holder.lock_id)
    [status] = manager.inspect()
    assert (status.key, status.state, status.holder) == ("orders", "held", holder)
    assert manager.holder_alive(holder) is True

    lock.release()
    lock.release()  # twice is fine
    assert _row(schema, "orders")["held"] is False
    assert not _session_holds(holder.backend_pid, holder.lock_id)
    assert manager.inspect() == []
    assert manager.holder_alive(holder) is False

    again = _acquire(manager, "orders", "r2")
    assert again.holder.generation == 2 and again.token != lock.token
    again.release()


def test_each_lock_has_its_own_session_so_the_same_process_is_refused(
    manager: PostgresRunLockManager,
) -> None:
    """A shared (pooled) session would re-take its own advisory lock and admit a second run."""
    lock = _acquire(manager, "k", "r1")
    try:
        refused = manager.acquire("k", run_id="r2")
        assert not refused.acquired and refused.lock is None
        assert refused.blocker == LOCK_CONCURRENT_RUN
        assert refused.holder is not None and refused.holder.run_id == "r1"
        assert "r1" in refused.message
        other = _acquire(manager, "other-key", "r3")  # other keys are independent
        assert other.holder.backend_pid != lock.holder.backend_pid
        other.release()
    finally:
        lock.release()


def test_a_hash_collision_gets_its_own_lock_id_and_exclusion_holds(
    manager: PostgresRunLockManager, schema: str
) -> None:
    """Another key already owns (and holds) the id "k" hashes to: "k" re-hashes with a salt."""
    manager.inspect()  # creates the tables
    colliding_id = stable_lock_id("k", schema=schema)
    with admin() as intruder:
        intruder.execute(
            f"INSERT INTO {schema}.run_locks (key, lock_id) VALUES ('intruder', %s)".encode(),
            (colliding_id,),
        )
        intruder.execute("SELECT pg_advisory_lock(%s)", (colliding_id,))
        lock = _acquire(manager, "k", "r1")
        try:
            assert lock.holder.lock_id == stable_lock_id("k", 1, schema=schema) != colliding_id
            assert _row(schema, "k")["lock_id"] == stable_lock_id("k", 1, schema=schema)
            refused = manager.acquire("k", run_id="r2")
            assert refused.blocker == LOCK_CONCURRENT_RUN and refused.holder is not None
            assert refused.holder.run_id == "r1"
        finally:
            lock.release()
        # The key keeps its registered id, while the intruder still holds the other one.
        again = _acquire(manager, "k", "r3")
        assert again.holder.lock_id == stable_lock_id("k", 1, schema=schema)
        again.release()


def test_two_schemas_of_one_database_never_refuse_each_others_keys(schema: str) -> None:
    """Staging and production in two schemas of one database run the same manifests."""
    from tests.support.pg import drop_schema, new_schema

    other = new_schema()
    try:
        mine = PostgresRunLockManager(PostgresTarget(TEST_DSN, schema), on_lost=None)
        theirs = PostgresRunLockManager(PostgresTarget(TEST_DSN, other), on_lost=None)
        a = _acquire(mine, "m.nightly", "r1")
        try:
            b = _acquire(theirs, "m.nightly", "r1")  # refused while the id was shared
            assert a.holder.lock_id != b.holder.lock_id
            assert not mine.acquire("m.nightly", run_id="r2").acquired  # still exclusive
            b.release()
        finally:
            a.release()
    finally:
        drop_schema(other)


def test_a_key_registered_by_an_older_version_keeps_its_lock_id(
    manager: PostgresRunLockManager, schema: str
) -> None:
    """Every process reads the registered id, so old and new versions share one lock."""
    manager.inspect()  # creates the tables
    legacy = stable_lock_id("k")  # what a version before the schema was hashed registered
    query(f"INSERT INTO {schema}.run_locks (key, lock_id) VALUES ('k', %s)", legacy)
    lock = _acquire(manager, "k", "r1")
    try:
        assert lock.holder.lock_id == legacy
        with admin() as old_version:  # an older process takes the legacy id directly
            got = old_version.execute("SELECT pg_try_advisory_lock(%s)", (legacy,)).fetchone()
            assert got == (False,)
    finally:
        lock.release()


def test_heartbeat_advances_in_the_lease_row(schema: str) -> None:
    manager = PostgresRunLockManager(PostgresTarget(TEST_DSN, schema), ttl_seconds=0.3)
    lock = _acquire(manager, "k", "r1")
    try:
        first = lock.holder.heartbeat_at
        deadline = time.monotonic() + 5
        while lock.holder.heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lock.holder.heartbeat_at > first
        row = _row(schema, "k")
        assert isinstance(row["beat"], datetime) and isinstance(row["acq"], datetime)
        assert row["beat"] > row["acq"]
    finally:
        lock.release()


def test_a_terminated_session_is_noticed_at_once_and_the_key_is_free(schema: str) -> None:
    seen: list[PostgresRunLock] = []
    manager = PostgresRunLockManager(PostgresTarget(TEST_DSN, schema), on_lost=seen.append)
    lock = _acquire(manager, "k", "r1")
    assert lock.lost_reason is None
    assert lock.heartbeat_interval == 10.0
    assert terminate(lock.backend_pid)
    # Well before the first heartbeat (10 s): only the socket can have told the watchdog.
    # A deadline for waiting, not a speed measurement (bench/ measures speed).
    assert lock.lost.wait(6), "the watchdog did not notice the terminated session"
    assert seen == [lock]
    assert lock.lost_reason is not None
    assert "'k'" in lock.lost_reason and "administrator command" in lock.lost_reason
    [status] = manager.inspect()
    assert status.state == "stale"  # the row says held, its session is gone
    assert manager.holder_alive(lock.holder) is False
    lock.release()  # harmless after the loss

    successor = manager.acquire("k", run_id="r2")
    assert successor.acquired and successor.stale_lock_replaced
    assert successor.replaced_holder is not None and successor.replaced_holder.run_id == "r1"
    assert successor.lock is not None
    successor.lock.release()


def test_a_lost_lock_interrupts_the_main_thread_under_signals_as_exceptions(
    schema: str,
) -> None:
    manager = PostgresRunLockManager(PostgresTarget(TEST_DSN, schema))  # default on_lost
    with signals_as_exceptions():
        lock = _acquire(manager, "k", "r1")
        try:
            with pytest.raises(TerminationSignal):
                terminate(lock.backend_pid)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    time.sleep(0.01)
        finally:
            lock.release()
    assert lock.lost_reason is not None and "session ended" in lock.lost_reason


def test_release_frees_the_key_synchronously(manager: PostgresRunLockManager) -> None:
    """The next acquirer must never find the key busy just after release() returned."""
    for i in range(20):
        lock = _acquire(manager, "k", f"r{i}")
        lock.release()
    assert manager.inspect() == []
