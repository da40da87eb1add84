"""Per-key locks, exercised with real files, real processes and real threads.

A refusal inside the test process cannot prove that the OS lock was released
(a POSIX record lock is re-granted to its own process), so every "the OS lock
is free again" or "the OS lock is still held" check asks a separate process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dpone_core.clock import utc_now
from dpone_core.locks import (
    LOCK_CONCURRENT_RUN,
    LOCK_CORRUPT,
    LocalRunLockManager,
    LockAcquisition,
    LockHolder,
    LockManager,
    pid_start_time,
)

RACER = Path(__file__).parent / "support" / "lock_racer.py"
HOST = socket.gethostname()


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _racer(
    lock_dir: Path,
    key: str,
    run_id: str,
    out: Path,
    *,
    hold: float = 0.0,
    ttl: float = 3600.0,
    ready: Path | None = None,
    go: Path | None = None,
    exit_without_release: bool = False,
    release_on: Path | None = None,
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        str(RACER),
        "--lock-dir",
        str(lock_dir),
        "--key",
        key,
        "--run-id",
        run_id,
        "--out",
        str(out),
        "--hold",
        str(hold),
        "--ttl",
        str(ttl),
    ]
    if ready is not None:
        cmd += ["--ready", str(ready)]
    if go is not None:
        cmd += ["--go", str(go)]
    if exit_without_release:
        cmd.append("--exit-without-release")
    if release_on is not None:
        cmd += ["--release-on", str(release_on)]
    return subprocess.Popen(cmd)


def _wait_for(path: Path, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def _attempt_in_subprocess(lock_dir: Path, key: str, run_id: str, tmp: Path) -> dict[str, Any]:
    """One acquire-and-release from another process: the only honest OS-lock probe."""
    out = tmp / f"probe-{run_id}.json"
    proc = _racer(lock_dir, key, run_id, out)
    assert proc.wait(timeout=30) == 0
    return _wait_for(out)


def _dead_holder_record(lock_dir: Path, key: str, tmp: Path) -> LockHolder:
    """A real holder record left behind by a process that exited without releasing."""
    out = tmp / "crashed.json"
    proc = _racer(lock_dir, key, "crashed_run", out, exit_without_release=True)
    assert proc.wait(timeout=30) == 0
    assert _wait_for(out)["acquired"] is True
    manager = LocalRunLockManager(lock_dir)
    holder = LockHolder.model_validate_json(manager.record_path(key).read_bytes())
    assert holder.run_id == "crashed_run"
    assert manager.holder_alive(holder) is False
    return holder


def _race(tmp: Path, lock_dir: Path, key: str, n: int = 16) -> list[dict[str, Any]]:
    """n racers start together; the winner holds until every racer has decided,
    so a slow machine cannot turn a late racer into a second winner."""
    ready_dir = tmp / "ready"
    ready_dir.mkdir()
    go = tmp / "go"
    done = tmp / "done"
    procs = [
        _racer(
            lock_dir,
            key,
            f"racer_{i}",
            tmp / f"out_{i}.json",
            hold=30,
            ready=ready_dir / str(i),
            go=go,
            release_on=done,
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(ready_dir.iterdir())) < n:
            assert time.monotonic() < deadline, "racers never got ready"
            time.sleep(0.01)
        go.touch()
        outcomes = [_wait_for(tmp / f"out_{i}.json") for i in range(n)]
        done.touch()
        for proc in procs:
            assert proc.wait(timeout=30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outcomes


def _other_host_record(manager: LocalRunLockManager, key: str, heartbeat_age: float) -> LockHolder:
    beat = (utc_now() - timedelta(seconds=heartbeat_age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    holder = LockHolder(
        key=key,
        run_id="remote_run",
        pid=4242,
        host="some-other-host.invalid",
        acquired_at=beat,
        heartbeat_at=beat,
        token="f" * 32,
        pid_start_time="123",
    )
    manager.record_path(key).write_text(holder.model_dump_json(), encoding="utf-8")
    return holder


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    path = tmp_path / "locks"
    path.mkdir()
    return path


@pytest.fixture
def manager(lock_dir: Path) -> Iterator[LocalRunLockManager]:
    yield LocalRunLockManager(lock_dir)


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_sixteen_processes_race_over_a_stale_record(tmp_path: Path, lock_dir: Path) -> None:
    dead = _dead_holder_record(lock_dir, "orders", tmp_path)

    outcomes = _race(tmp_path, lock_dir, "orders")

    winners = [o for o in outcomes if o["acquired"]]
    losers = [o for o in outcomes if not o["acquired"]]
    assert len(winners) == 1
    assert {o["blocker"] for o in losers} == {LOCK_CONCURRENT_RUN}
    assert len(losers) == 15
    assert winners[0]["stale_lock_replaced"] is True
    assert winners[0]["replaced_holder"]["token"] == dead.token
    assert winners[0]["replaced_holder"]["pid"] == dead.pid
    assert not any(o["stale_lock_replaced"] for o in losers)


def test_kill_9_holder_frees_the_key_at_once(tmp_path: Path, lock_dir: Path) -> None:
    out = tmp_path / "holder.json"
    holder_proc = _racer(lock_dir, "orders", "doomed_run", out, hold=60)
    try:
        assert _wait_for(out)["acquired"] is True
        manager = LocalRunLockManager(lock_dir)
        refused = manager.acquire("orders", run_id="early")
        assert refused.blocker == LOCK_CONCURRENT_RUN
        assert refused.holder is not None and refused.holder.pid == holder_proc.pid
        assert "doomed_run" in refused.message
        assert f"pid {holder_proc.pid}" in refused.message
    finally:
        os.kill(holder_proc.pid, signal.SIGKILL)
        holder_proc.wait()

    # A non-blocking acquire, long before the TTL (3600 s): the key is free at once.
    attempt = manager.acquire("orders", run_id="successor")
    assert attempt.acquired and attempt.lock is not None
    assert attempt.stale_lock_replaced is True
    assert attempt.replaced_holder is not None
    assert attempt.replaced_holder.pid == holder_proc.pid
    assert attempt.replaced_holder.run_id == "doomed_run"
    assert "doomed_run" in attempt.message
    record = LockHolder.model_validate_json(manager.record_path("orders").read_bytes())
    assert record.run_id == "successor" and record.token == attempt.lock.token
    attempt.lock.release()


@pytest.mark.slow
def test_live_holder_keeps_its_key_past_the_ttl_and_heartbeats(
    tmp_path: Path, lock_dir: Path
) -> None:
    out = tmp_path / "holder.json"
    proc = _racer(lock_dir, "orders", "long_run", out, hold=3.0, ttl=1.0)
    try:
        decided = _wait_for(out)
        assert decided["acquired"] is True
        manager = LocalRunLockManager(lock_dir, ttl_seconds=1)
        first = LockHolder.model_validate_json(manager.record_path("orders").read_bytes())

        time.sleep(max(0.0, decided["decided_at"] + 2.0 - time.time()))
        attempt = manager.acquire("orders", run_id="contender")
        assert not attempt.acquired
        assert attempt.blocker == LOCK_CONCURRENT_RUN
        assert attempt.holder is not None and attempt.holder.run_id == "long_run"

        later = LockHolder.model_validate_json(manager.record_path("orders").read_bytes())
        assert later.token == first.token
        assert later.acquired_at == first.acquired_at
        assert later.heartbeat_at > first.heartbeat_at
        assert later.heartbeat_age_seconds() < 1.0
        # So a host that can only judge by heartbeat still sees a live holder.
        remote_view = LocalRunLockManager(lock_dir, ttl_seconds=1, host="elsewhere.invalid")
        assert remote_view.holder_alive(later) is True
        assert [s.state for s in remote_view.inspect()] == ["held"]
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not manager.record_path("orders").exists()


# --------------------------------------------------------------------------
# records from other hosts, corrupt records
# --------------------------------------------------------------------------


def test_other_host_with_fresh_heartbeat_is_refused(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    remote = _other_host_record(manager, "orders", heartbeat_age=5)
    before = manager.record_path("orders").read_bytes()

    attempt = manager.acquire("orders", run_id="local_run")

    assert not attempt.acquired and attempt.lock is None
    assert attempt.blocker == LOCK_CONCURRENT_RUN
    assert attempt.holder == remote
    assert "some-other-host.invalid" in attempt.message
    assert manager.record_path("orders").read_bytes() == before
    # The refusal let go of the OS lock: another process can take the key
    # once the remote heartbeat has expired.
    _other_host_record(manager, "orders", heartbeat_age=7200)
    probe = _attempt_in_subprocess(lock_dir, "orders", "probe", tmp_path)
    assert probe["acquired"] is True
    assert probe["stale_lock_replaced"] is True
    assert probe["replaced_holder"]["host"] == "some-other-host.invalid"


def test_other_host_with_expired_heartbeat_is_replaced(manager: LocalRunLockManager) -> None:
    remote = _other_host_record(manager, "orders", heartbeat_age=3601)

    attempt = manager.acquire("orders", run_id="local_run")

    assert attempt.acquired and attempt.lock is not None
    assert attempt.stale_lock_replaced is True
    assert attempt.replaced_holder == remote
    record = LockHolder.model_validate_json(manager.record_path("orders").read_bytes())
    assert record.host == HOST and record.run_id == "local_run"
    attempt.lock.release()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b'{"key": "orders"}',
        b'{"schema_version": 99, "key": "orders", "run_id": "r", "pid": 1, "host": "h",'
        b' "acquired_at": "2026-01-01T00:00:00Z", "heartbeat_at": "2026-01-01T00:00:00Z",'
        b' "token": "t"}',
        b'{"key": "orders", "run_id": "r", "pid": 1, "host": "h", "acquired_at": "yesterday",'
        b' "heartbeat_at": "2026-01-01T00:00:00Z", "token": "t"}',
        # A well-formed record for a different key in this key's file.
        b'{"key": "payments", "run_id": "r", "pid": 1, "host": "h",'
        b' "acquired_at": "2026-01-01T00:00:00Z", "heartbeat_at": "2026-01-01T00:00:00Z",'
        b' "token": "t"}',
        b"\xff\xfe\x00garbage",
    ],
    ids=["garbage", "empty", "incomplete", "future-schema", "bad-time", "other-key", "binary"],
)
def test_corrupt_record_is_refused_and_left_untouched(
    manager: LocalRunLockManager, content: bytes
) -> None:
    path = manager.record_path("orders")
    path.write_bytes(content)

    attempt = manager.acquire("orders", run_id="r1")

    assert not attempt.acquired and attempt.lock is None
    assert attempt.blocker == LOCK_CORRUPT
    assert attempt.holder is None
    assert str(path) in attempt.message
    assert path.read_bytes() == content
    [status] = manager.inspect()
    assert status.state == "corrupt" and status.key == "orders" and status.holder is None


def test_corrupt_refusal_releases_the_os_lock(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    path = manager.record_path("orders")
    path.write_bytes(b"{not json")
    assert manager.acquire("orders", run_id="r1").blocker == LOCK_CORRUPT
    assert manager.acquire("orders", run_id="r2").blocker == LOCK_CORRUPT

    path.unlink()  # the operator moves the bad file aside
    probe = _attempt_in_subprocess(lock_dir, "orders", "after_fix", tmp_path)
    assert probe["acquired"] is True
    assert probe["stale_lock_replaced"] is False
    again = manager.acquire("orders", run_id="after_fix_here")
    assert again.acquired and again.lock is not None
    again.lock.release()


# --------------------------------------------------------------------------
# keys and file names
# --------------------------------------------------------------------------


def test_keys_map_to_distinct_files_inside_the_lock_dir(
    lock_dir: Path, manager: LocalRunLockManager
) -> None:
    keys = ["a/b", "a_b", "../x", "заказы-ü", "k" * 300]
    locks = []
    for key in keys:
        attempt = manager.acquire(key, run_id=f"run_{len(locks)}")
        assert attempt.acquired and attempt.lock is not None, key
        locks.append(attempt.lock)

    paths = [manager.record_path(k) for k in keys]
    assert len(set(paths)) == 5
    for key, path in zip(keys, paths, strict=True):
        assert path.exists()
        assert path.resolve().parent == lock_dir.resolve()
        assert len(path.name) < 255
        assert LockHolder.model_validate_json(path.read_bytes()).key == key
    found = sorted(p.name for p in lock_dir.iterdir() if p.name.endswith(".lock.json"))
    assert found == sorted(p.name for p in paths)
    assert not (lock_dir.parent / "x.lock.json").exists()
    assert sorted(s.key for s in manager.inspect()) == sorted(keys)
    for lock in locks:
        lock.release()
    assert not [p for p in lock_dir.iterdir() if p.name.endswith(".lock.json")]


def test_empty_key_is_rejected(manager: LocalRunLockManager) -> None:
    with pytest.raises(ValueError, match="empty key"):
        manager.acquire("", run_id="r")
    with pytest.raises(ValueError, match="empty key"):
        manager.record_path("")


def test_invalid_ttl_is_rejected(lock_dir: Path) -> None:
    for ttl in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ttl_seconds"):
            LocalRunLockManager(lock_dir, ttl_seconds=ttl)


# --------------------------------------------------------------------------
# threads of one process
# --------------------------------------------------------------------------


def test_sixteen_threads_race_and_exactly_one_acquires(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    barrier = threading.Barrier(16)
    outcomes: list[LockAcquisition] = []
    guard = threading.Lock()

    def contend(i: int) -> None:
        barrier.wait()
        # Each thread its own manager, as independent callers would have.
        attempt = LocalRunLockManager(lock_dir).acquire("orders", run_id=f"thread_{i}")
        with guard:
            outcomes.append(attempt)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    winners = [o for o in outcomes if o.acquired]
    losers = [o for o in outcomes if not o.acquired]
    assert len(outcomes) == 16
    assert len(winners) == 1
    assert {o.blocker for o in losers} == {LOCK_CONCURRENT_RUN}
    lock = winners[0].lock
    assert lock is not None
    # The 15 refusals must not have dropped the winner's OS lock (closing any
    # descriptor of the .lock file would): another process is still refused.
    probe = _attempt_in_subprocess(lock_dir, "orders", "outsider", tmp_path)
    assert probe["acquired"] is False
    assert probe["blocker"] == LOCK_CONCURRENT_RUN
    assert probe["holder"]["token"] == lock.token
    lock.release()
    assert _attempt_in_subprocess(lock_dir, "orders", "after", tmp_path)["acquired"] is True


def test_release_in_one_thread_keeps_another_key_held(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    holds: dict[str, LockAcquisition] = {}

    def take(key: str) -> None:
        holds[key] = manager.acquire(key, run_id=f"run_{key}")

    for key in ("alpha", "beta"):
        t = threading.Thread(target=take, args=(key,))
        t.start()
        t.join()
    alpha, beta = holds["alpha"].lock, holds["beta"].lock
    assert alpha is not None and beta is not None

    t = threading.Thread(target=alpha.release)
    t.start()
    t.join()

    assert _attempt_in_subprocess(lock_dir, "alpha", "p1", tmp_path)["acquired"] is True
    probe = _attempt_in_subprocess(lock_dir, "beta", "p2", tmp_path)
    assert probe["acquired"] is False and probe["blocker"] == LOCK_CONCURRENT_RUN
    assert manager.acquire("beta", run_id="same_process").blocker == LOCK_CONCURRENT_RUN
    assert beta.record_path.exists()
    beta.release()


def test_same_process_can_reacquire_after_release(manager: LocalRunLockManager) -> None:
    first = manager.acquire("orders", run_id="first").lock
    assert first is not None
    with first as lock:
        assert not lock.released
        refused = manager.acquire("orders", run_id="second")
        assert refused.blocker == LOCK_CONCURRENT_RUN
        assert refused.holder is not None and refused.holder.run_id == "first"
        assert "another thread of this process" in refused.message
    assert lock.released
    assert not manager.record_path("orders").exists()
    lock.release()  # idempotent
    again = manager.acquire("orders", run_id="third")
    assert again.acquired and again.lock is not None
    assert again.stale_lock_replaced is False
    again.lock.release()


# --------------------------------------------------------------------------
# release and inspection
# --------------------------------------------------------------------------


def test_release_never_removes_a_successors_record(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    attempt = manager.acquire("orders", run_id="mine")
    assert attempt.lock is not None
    path = manager.record_path("orders")
    ours = LockHolder.model_validate_json(path.read_bytes())
    successor = ours.model_copy(update={"token": "0" * 32, "run_id": "successor"})
    path.write_text(successor.model_dump_json(), encoding="utf-8")

    attempt.lock.release()

    assert path.exists()
    assert LockHolder.model_validate_json(path.read_bytes()).token == "0" * 32
    # The OS lock itself was released.
    probe = _attempt_in_subprocess(lock_dir, "orders", "next", tmp_path)
    assert probe["acquired"] is True
    assert probe["replaced_holder"]["run_id"] == "successor"


def test_heartbeat_stops_once_the_record_is_not_ours(lock_dir: Path) -> None:
    manager = LocalRunLockManager(lock_dir, ttl_seconds=0.3)
    attempt = manager.acquire("orders", run_id="mine")
    assert attempt.lock is not None
    path = manager.record_path("orders")
    foreign = attempt.lock.holder.model_copy(update={"token": "1" * 32})
    path.write_text(foreign.model_dump_json(), encoding="utf-8")
    written = path.read_bytes()
    time.sleep(0.5)
    assert path.read_bytes() == written
    attempt.lock.release()
    assert path.read_bytes() == written


def test_inspect_reports_held_stale_and_corrupt(
    tmp_path: Path, lock_dir: Path, manager: LocalRunLockManager
) -> None:
    _dead_holder_record(lock_dir, "stale_key", tmp_path)
    manager.record_path("corrupt_key").write_bytes(b"{oops")
    _other_host_record(manager, "remote_live", heartbeat_age=10)
    _other_host_record(manager, "remote_gone", heartbeat_age=7200)
    out = tmp_path / "live.json"
    proc = _racer(lock_dir, "live_key", "live_run", out, hold=30)
    try:
        assert _wait_for(out)["acquired"] is True

        statuses = {s.key: s for s in manager.inspect()}

        assert {k: s.state for k, s in statuses.items()} == {
            "live_key": "held",
            "stale_key": "stale",
            "corrupt_key": "corrupt",
            "remote_live": "held",
            "remote_gone": "stale",
        }
        live = statuses["live_key"].holder
        assert live is not None and live.pid == proc.pid and live.run_id == "live_run"
        assert statuses["corrupt_key"].holder is None
        assert statuses["stale_key"].location == str(manager.record_path("stale_key"))
        assert statuses["live_key"].to_dict()["state"] == "held"
        # Inspection took no OS lock: the live holder is still exclusive.
        contender = manager.acquire("live_key", run_id="contender")
        assert contender.blocker == LOCK_CONCURRENT_RUN
    finally:
        proc.kill()
        proc.wait()
    # After the kill the same record reads as stale.
    assert {s.key: s.state for s in manager.inspect()}["live_key"] == "stale"


def test_holder_alive_defeats_pid_reuse(manager: LocalRunLockManager) -> None:
    now = utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    me = LockHolder(
        key="k",
        run_id="r",
        pid=os.getpid(),
        host=manager.host,
        acquired_at=now,
        heartbeat_at=now,
        token="t",
        pid_start_time=pid_start_time(os.getpid()),
    )
    assert manager.holder_alive(me) is True
    if Path("/proc/self/stat").exists():
        assert me.pid_start_time is not None
        reused = me.model_copy(update={"pid_start_time": str(int(me.pid_start_time) + 1)})
        assert manager.holder_alive(reused) is False
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    assert manager.holder_alive(me.model_copy(update={"pid": exited.pid})) is False


def test_local_manager_satisfies_the_protocol(manager: LocalRunLockManager) -> None:
    assert isinstance(manager, LockManager)
    attempt = manager.acquire("orders", run_id="r")
    assert attempt.lock is not None
    data = attempt.to_dict()
    assert data["acquired"] is True and data["key"] == "orders"
    assert data["holder"]["token"] == attempt.lock.token
    attempt.lock.release()
