"""Lock and statement timeouts, and SIGTERM while a transfer waits on a locked target.

A transfer that waits on a target locked by someone else must give up after
``lock_timeout_seconds`` (PostgreSQL ``lock_timeout``, SQLite busy timeout)
instead of waiting -- holding its concurrency key -- for as long as the other
session likes; ``statement_timeout_seconds`` bounds one statement on
PostgreSQL. A SIGTERM that arrives while the load waits ends the run with one
line on stderr and the job state ``failed`` / ``run.interrupted``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from transfer_support import (
    Side,
    append_manifest,
    connections,
    context,
    create_orders,
    libpq_dsn,
    process,
    seed_orders,
    sigterm_when,
    sqlite_side,
    start_orchestrated_run,
)

from dpone_core.executor.transfer import run_transfer
from dpone_core.manifest import TransferProcess

#: How long the other session holds its lock; a transfer that does not time out waits it out.
HOLD_SECONDS = 8.0


def _with_timeouts(spec: TransferProcess, **timeouts: float) -> TransferProcess:
    return TransferProcess.model_validate({**spec.model_dump(), **timeouts})


class _HeldPgLock:
    """``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` in another session, released later."""

    def __init__(self, url: str, table: str) -> None:
        self.conn = psycopg.connect(libpq_dsn(url))
        self.conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self._timer = threading.Timer(HOLD_SECONDS, self.release)
        self._timer.start()
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if not self.conn.closed:
                self.conn.rollback()
                self.conn.close()

    def __enter__(self) -> _HeldPgLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self.release()


@pytest.fixture
def sqlite_orders(tmp_path: Path) -> Side:
    side = sqlite_side(tmp_path / "source.db")
    create_orders(side)
    seed_orders(side, range(1, 11))
    return side


def test_lock_timeout_on_a_locked_postgres_target(sqlite_orders: Side, pg_side: Side) -> None:
    conns = connections(sqlite_orders, pg_side)
    spec = process("orders", pg_side.table("landing"), "append")
    assert run_transfer(spec, context(conns, run_id="first")).status == "passed"
    with _HeldPgLock(pg_side.url, pg_side.table("landing")):
        started = time.monotonic()
        result = run_transfer(
            _with_timeouts(spec, lock_timeout_seconds=1), context(conns, run_id="second")
        )
        waited = time.monotonic() - started
    assert result.status == "failed"
    assert waited < HOLD_SECONDS - 2, f"waited {waited:.1f}s for the lock"
    assert "lock timeout" in result.errors[0], result.errors
    assert "lock_timeout_seconds=1" in result.errors[0], result.errors
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('landing')}") == [(10,)]


def test_lock_timeout_on_a_locked_sqlite_target(sqlite_orders: Side, tmp_path: Path) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    conns = connections(sqlite_orders, dst)
    spec = process("orders", "landing", "append")
    assert run_transfer(spec, context(conns, run_id="first")).status == "passed"
    holder = sqlite3.connect(dst.path or "", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    timer = threading.Timer(HOLD_SECONDS, lambda: holder.execute("ROLLBACK"))
    timer.start()
    try:
        started = time.monotonic()
        result = run_transfer(
            _with_timeouts(spec, lock_timeout_seconds=1), context(conns, run_id="second")
        )
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        timer.join()
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    assert result.status == "failed"
    assert waited < HOLD_SECONDS - 2, f"waited {waited:.1f}s for the lock"
    assert "database is locked" in result.errors[0], result.errors
    assert dst.query("SELECT count(*) FROM landing") == [(10,)]


def test_statement_timeout_on_postgres(pg_side: Side) -> None:
    pg_side.execute(f"CREATE TABLE {pg_side.table('slow')} (id int)")
    pg_side.execute(f"INSERT INTO {pg_side.table('slow')} VALUES (1)")
    conns = connections(pg_side, pg_side)
    spec = process(
        None,
        pg_side.table("landing"),
        "append",
        query=f"SELECT id, pg_sleep(4)::text AS slept FROM {pg_side.table('slow')}",
    )
    started = time.monotonic()
    result = run_transfer(_with_timeouts(spec, statement_timeout_seconds=1), context(conns))
    assert time.monotonic() - started < 3.5
    assert result.status == "failed"
    assert "statement timeout" in result.errors[0], result.errors
    assert "statement_timeout_seconds=1" in result.errors[0], result.errors
    assert not pg_side.exists("landing")


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lock_timeout_seconds"):
        TransferProcess.model_validate(
            {
                "source": {"connection": "a", "table": "t"},
                "target": {"connection": "b", "table": "t"},
                "lock_timeout_seconds": 0,
            }
        )


# ---------------------------------------------------------------------------- SIGTERM


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ws"
    root.mkdir()
    yield root


def _blocked_backends(url: str, table: str) -> int:
    """Sessions waiting on a heavyweight lock on ``table`` (besides the holder)."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass(%s)",
            (table,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_sigterm_while_waiting_on_a_locked_target_is_one_clean_line(
    workspace: Path, sqlite_orders: Side, pg_side: Side
) -> None:
    target = pg_side.table("landing")
    conns = connections(sqlite_orders, pg_side)
    assert run_transfer(process("orders", target, "append"), context(conns)).status == "passed"
    manifest = append_manifest(conns, target)
    holder = psycopg.connect(libpq_dsn(pg_side.url))
    try:
        holder.execute(f"LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE")
        proc = start_orchestrated_run(workspace, manifest)
        out, err = sigterm_when(
            proc,
            lambda: _blocked_backends(pg_side.url, target) > 0,
            "a wait on the lock",
            timeout=30,
        )
        # The interrupted load's session is gone: nothing waits on the lock any more.
        assert _blocked_backends(pg_side.url, target) == 0
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    # Besides the orchestrator's "started" progress line: one line that says why.
    lines = [line for line in err.splitlines() if line.strip() and "started" not in line]
    assert len(lines) == 1, err
    assert "SIGTERM" in lines[0] and "marked failed" in lines[0], err
    report: dict[str, Any] = json.loads(out)
    assert report["status"] == "failed"
    assert report["blockers"] == ["run.interrupted"]
    from dpone_core.state import LocalJobStateStore

    state_dir = workspace / ".dpone" / "orchestration-state"
    state = json.loads(LocalJobStateStore(state_dir).path_for("r1").read_text())
    assert state["status"] == "failed"
    assert "SIGTERM" in state["transitions"][-1]["reason"]
    assert "run.interrupted" in json.dumps(state)
    assert pg_side.query(f"SELECT count(*) FROM {target}") == [(10,)]
