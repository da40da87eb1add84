"""PostgresJobStateStore against the local PostgreSQL: rows, fencing, compare-and-set, policies.

States are written by holders of real leases (real advisory locks on real
sessions); a holder "losing its session" is a real ``pg_terminate_backend``.
The policy table of DESIGN.md section 6 runs on this backend (and on files)
in tests/contract/test_policy_table.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpone_core.backends.errors import JobStateConflict, LeaseLost
from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_locks import PostgresRunLock, PostgresRunLockManager
from dpone_core.backends.postgres_state import PostgresJobStateStore
from dpone_core.lifecycle import JobStatus
from dpone_core.state import (
    AttemptHolder,
    CorruptJobState,
    JobState,
    JobStateStore,
    LocalJobStateStore,
    Transition,
    admit_attempt,
    advance,
)
from tests.support.pg import TEST_DSN, query, terminate


@pytest.fixture
def target(schema: str) -> PostgresTarget:
    return PostgresTarget(TEST_DSN, schema)


@pytest.fixture
def locks(target: PostgresTarget) -> PostgresRunLockManager:
    return PostgresRunLockManager(target, on_lost=None)


@pytest.fixture
def store(target: PostgresTarget) -> Iterator[PostgresJobStateStore]:
    s = PostgresJobStateStore(target)
    yield s
    s.close()


def _acquire(locks: PostgresRunLockManager, key: str, run_id: str = "r1") -> PostgresRunLock:
    outcome = locks.acquire(key, run_id=run_id)
    assert outcome.acquired and isinstance(outcome.lock, PostgresRunLock), outcome.message
    return outcome.lock


def _holder(lock: PostgresRunLock | None) -> AttemptHolder:
    return AttemptHolder(
        pid=os.getpid(),
        host=socket.gethostname(),
        lock_token=lock.token if lock is not None else None,
    )


def _admitted(
    previous: JobState | None,
    lock: PostgresRunLock | None,
    *,
    key: str = "r1",
    from_scratch: bool = False,
) -> JobState:
    admitted = admit_attempt(
        previous,
        run_id="r1",
        process="job",
        manifest_path="m.yml",
        selector="job",
        lock_key=key,
        output_dir="out",
        holder=_holder(lock),
        from_scratch=from_scratch,
    )
    return advance(admitted, JobStatus.RUNNING)


def _row(schema: str) -> tuple[Any, ...] | None:
    rows = query(
        f"SELECT s.status, s.transition_count, s.document::text, s.updated_at, s.lock_token, "
        f"(SELECT count(*) FROM {schema}.job_state_transitions t WHERE t.run_id = s.run_id) "
        f"FROM {schema}.job_states s WHERE s.run_id = 'r1'"
    )
    return rows[0] if rows else None


def _lose_session(lock: PostgresRunLock) -> None:
    assert terminate(lock.backend_pid)
    assert lock.lost.wait(5)


# -- rows ----------------------------------------------------------------------------------


def test_one_row_per_run_id_and_one_row_per_transition(
    store: PostgresJobStateStore, locks: PostgresRunLockManager, schema: str, target: PostgresTarget
) -> None:
    protocol: JobStateStore = store  # the orchestrator's contract, checked by mypy
    assert protocol.load("r1") is None
    lock = _acquire(locks, "r1")
    running = _admitted(None, lock)
    store.save(running)
    assert store.load("r1") == running
    committed = advance(running, JobStatus.COMMITTED, run_result={"passed": True})
    store.save(committed)
    lock.release()

    fresh = PostgresJobStateStore(target)
    assert fresh.load("r1") == committed  # byte-for-byte the same model, timestamps included
    fresh.close()
    [(status, attempt, count, lease_generation, token)] = query(
        f"SELECT status, attempt, transition_count, lease_generation, lock_token "
        f"FROM {schema}.job_states"
    )
    assert (status, attempt, count, lease_generation) == ("committed", 1, 3, 1)
    assert token == lock.token
    transitions = query(
        f"SELECT seq, status, attempt, lease_generation FROM {schema}.job_state_transitions "
        "ORDER BY seq"
    )
    assert transitions == [(1, "started", 1, 1), (2, "running", 1, 1), (3, "committed", 1, 1)]
    assert "postgresql://" in store.location("r1") and schema in store.location("r1")


# -- fencing ---------------------------------------------------------------------------------


def test_a_holder_that_lost_its_session_cannot_commit_but_records_why(
    store: PostgresJobStateStore, locks: PostgresRunLockManager, schema: str
) -> None:
    lock = _acquire(locks, "r1")
    running = _admitted(None, lock)
    store.save(running)
    _lose_session(lock)

    with pytest.raises(LeaseLost, match="session holding key 'r1' is gone"):
        store.save(advance(running, JobStatus.COMMITTED))
    assert _row(schema)[0] == "running"  # type: ignore[index]

    # Nobody took the key since: the holder may still record why it stopped.
    failed = advance(running, JobStatus.FAILED, reason=lock.lost_reason)
    store.save(failed)
    loaded = store.load("r1")
    assert loaded is not None and loaded.status is JobStatus.FAILED
    assert "session ended" in (loaded.transitions[-1].reason or "")
    lock.release()


def test_after_a_successor_took_the_key_the_old_holder_writes_nothing(
    store: PostgresJobStateStore, locks: PostgresRunLockManager, schema: str, target: PostgresTarget
) -> None:
    old = _acquire(locks, "r1")
    running = _admitted(None, old)
    store.save(running)
    _lose_session(old)
    successor = _acquire(locks, "r1", run_id="r1-successor")
    before = _row(schema)
    for status in (JobStatus.COMMITTED, JobStatus.FAILED):
        with pytest.raises(LeaseLost, match="now belongs to run 'r1-successor'"):
            store.save(advance(running, status, reason="too late"))
    assert _row(schema) == before

    # The successor reads the state the old holder left and takes over.
    other = PostgresJobStateStore(target)
    previous = other.load("r1")
    assert previous is not None and previous.status is JobStatus.RUNNING
    other.save(_admitted(previous, successor))
    assert _row(schema)[0] == "running" and _row(schema)[1] == 4  # type: ignore[index]
    other.close()
    successor.release()
    old.release()


def test_states_without_a_lease_token_are_refused_and_restore_only_creates(
    store: PostgresJobStateStore, schema: str, target: PostgresTarget
) -> None:
    assert store.load("r1") is None  # creates the tables
    unfenced = _admitted(None, None)
    with pytest.raises(LeaseLost, match="no lock token"):
        store.save(unfenced)
    assert _row(schema) is None
    store.restore(unfenced)
    assert store.load("r1") == unfenced
    with pytest.raises(JobStateConflict):
        PostgresJobStateStore(target).restore(advance(unfenced, JobStatus.FAILED))
    assert _row(schema)[0] == "running"  # type: ignore[index]


def test_the_store_reconnects_when_its_idle_session_was_closed(
    store: PostgresJobStateStore, locks: PostgresRunLockManager
) -> None:
    """A run can last hours; the server or a firewall may close the store's idle session."""
    lock = _acquire(locks, "r1")
    running = _admitted(None, lock)
    store.save(running)
    assert store._conn is not None
    assert terminate(store._conn.info.backend_pid)
    store.save(advance(running, JobStatus.COMMITTED))
    loaded = store.load("r1")
    assert loaded is not None and loaded.status is JobStatus.COMMITTED
    lock.release()


# -- compare-and-set ---------------------------------------------------------------------------


def test_two_hosts_that_read_the_same_state_cannot_both_admit(
    locks: PostgresRunLockManager, schema: str, target: PostgresTarget
) -> None:
    """Even under different concurrency keys (each host holds its own), one admission wins."""
    seed = PostgresJobStateStore(target)
    seed.restore(advance(_admitted(None, None, key="k1"), JobStatus.FAILED, reason="seeded"))
    lock_a, lock_b = _acquire(locks, "k1"), _acquire(locks, "k2")
    host_a, host_b = PostgresJobStateStore(target), PostgresJobStateStore(target)
    previous_a, previous_b = host_a.load("r1"), host_b.load("r1")
    assert previous_a == previous_b and previous_a is not None
    host_a.save(_admitted(previous_a, lock_a, key="k1"))
    with pytest.raises(JobStateConflict, match="changed since it was read"):
        host_b.save(_admitted(previous_b, lock_b, key="k2"))
    # A writer that never read the row is checked against the history it extends.
    with pytest.raises(JobStateConflict, match="does not extend it"):
        PostgresJobStateStore(target).save(_admitted(previous_b, lock_b, key="k2"))
    state = seed.load("r1")
    assert state is not None and state.attempt == 2 and state.lock_key == "k1"
    assert _row(schema)[5] == 5  # type: ignore[index]  # failed attempt (3) + started, running
    for s in (seed, host_a, host_b):
        s.close()
    lock_a.release()
    lock_b.release()


def test_the_store_refuses_an_illegal_transition(
    store: PostgresJobStateStore, locks: PostgresRunLockManager, schema: str
) -> None:
    lock = _acquire(locks, "r1")
    started = admit_attempt(
        None,
        run_id="r1",
        process="job",
        manifest_path="m.yml",
        selector="job",
        lock_key="r1",
        output_dir="out",
        holder=_holder(lock),
        from_scratch=False,
    )
    skipped = started.model_copy(
        update={
            "status": JobStatus.COMMITTED,
            "transitions": [
                *started.transitions,
                Transition(status=JobStatus.COMMITTED, at=started.updated_at, attempt=1),
            ],
        }
    )
    with pytest.raises(JobStateConflict, match="illegal transition started -> committed"):
        store.save(skipped)
    assert _row(schema) is None
    lock.release()


def test_a_corrupt_row_is_reported_and_left_untouched(
    store: PostgresJobStateStore, schema: str
) -> None:
    store.restore(_admitted(None, None))
    query(f"""UPDATE {schema}.job_states SET document = '{{"run_id": "r1", "bogus": 1}}'""")
    before = _row(schema)
    with pytest.raises(CorruptJobState, match="not a valid job state") as caught:
        store.load("r1")
    assert schema in caught.value.path
    assert _row(schema) == before


def test_a_state_file_moves_into_postgres_and_resumes_there(
    tmp_path: Path, store: PostgresJobStateStore, locks: PostgresRunLockManager
) -> None:
    """Moving from files to PostgreSQL: restore() each state file, then carry on."""
    files = LocalJobStateStore(tmp_path / "state")
    files.save(advance(_admitted(None, None), JobStatus.FAILED, reason="on the old host"))
    for path in sorted((tmp_path / "state").glob("*.job_state.json")):
        store.restore(JobState.model_validate_json(path.read_bytes()))
    previous = store.load("r1")
    assert previous == files.load("r1")
    lock = _acquire(locks, "r1")
    store.save(_admitted(previous, lock))
    loaded = store.load("r1")
    assert loaded is not None and loaded.attempt == 2 and loaded.status is JobStatus.RUNNING
    lock.release()
