"""The PostgreSQL change feed arrives in tables made by the previous dpone, without a new version.

Tables created before ``job_states.change_seq`` existed hold rows; several
processes of the new dpone then find the addition missing at one instant. It
is applied once, numbers the existing rows in the order they were written,
keeps ``schema_version`` at 1 (so schedulers still running the previous dpone
keep working), and numbers the writes of such a scheduler too, because the
database assigns the numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from psycopg import sql
from psycopg.types.json import Jsonb

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_schema import _V1
from dpone_core.backends.postgres_state import PostgresJobStateStore
from dpone_core.lifecycle import JobStatus
from dpone_core.state import AttemptHolder, JobState, admit_attempt, advance
from tests.support.backends import POSTGRESQL, BackendSite
from tests.support.pg import TEST_DSN, admin, query
from tests.support.state_feed import commit_run, drain

FIRST_USE = Path(__file__).parent / "support" / "pg_first_use.py"


def _state(run_id: str) -> JobState:
    started = admit_attempt(
        None,
        run_id=run_id,
        process="job",
        manifest_path="m.yml",
        selector=None,
        lock_key=run_id,
        output_dir=f"out/{run_id}",
        holder=AttemptHolder(pid=1, host="h"),
        from_scratch=False,
    )
    return advance(advance(started, JobStatus.RUNNING), JobStatus.COMMITTED)


def _tables_of_the_previous_dpone(schema: str, written: dict[str, str]) -> None:
    """The schema as dpone 0.1 left it: version 1, its tables, rows written at given times."""
    ident = sql.Identifier(schema)
    with admin() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.schema_version (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT clock_timestamp(), applied_by text "
                "NOT NULL)"
            ).format(ident)
        )
        for statement in _V1:
            conn.execute(sql.SQL(statement).format(schema=ident))
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version VALUES (1, now(), 'dpone 0.1')").format(ident)
        )
        for run_id, updated_at in written.items():
            state = _state(run_id)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.job_states (run_id, status, attempt, transition_count, "
                    "lock_key, updated_at, document) VALUES (%s, %s, 1, 3, %s, %s, %s)"
                ).format(ident),
                (
                    run_id,
                    state.status.value,
                    run_id,
                    updated_at,
                    Jsonb(state.model_dump(mode="json", exclude={"transitions"})),
                ),
            )
            for seq, t in enumerate(state.transitions, start=1):
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.job_state_transitions (run_id, seq, status, attempt, at) "
                        "VALUES (%s, %s, %s, %s, %s)"
                    ).format(ident),
                    (run_id, seq, t.status.value, t.attempt, t.at),
                )


def test_the_previous_dpones_tables_get_the_change_feed_once(schema: str, tmp_path: Path) -> None:
    written = {
        "b": "2026-01-02T00:00:00Z",
        "a": "2026-01-03T00:00:00Z",
        "c": "2026-01-01T00:00:00Z",
    }
    _tables_of_the_previous_dpone(schema, written)

    # Eight processes of the new dpone find the addition missing at the same instant.
    when = time.time() + 3.0
    env = {**os.environ, "DPONE_ORCHESTRATION_DSN": TEST_DSN}
    procs = [
        subprocess.Popen(
            [sys.executable, str(FIRST_USE), schema, str(when)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == "", err
        assert out.strip() == "1"
    assert query(f'SELECT version FROM "{schema}".schema_version') == [(1,)]

    store = PostgresJobStateStore(PostgresTarget(TEST_DSN, schema))
    try:
        pages, cursor = drain(store, None, 10)
        # Rows written before the addition come in the order they were written.
        assert [s.run_id for p in pages for s in p.states] == ["c", "b", "a"]
        assert store.load("a") == _state_from(store, "a")

        # A scheduler still running the previous dpone writes rows that never name
        # change_seq: the database numbers them anyway.
        with admin() as conn:
            conn.execute(
                sql.SQL("UPDATE {}.job_states SET updated_at = now() WHERE run_id = 'b'").format(
                    sql.Identifier(schema)
                )
            )
        page = store.changed_since(cursor, 10)
        assert [s.run_id for s in page.states] == ["b"]

        # And the new dpone writes through the feed as usual.
        site = BackendSite(POSTGRESQL, tmp_path, schema=schema)
        backend = site.open()
        try:
            commit_run(backend, "d", tmp_path)
        finally:
            backend.close()
        assert [s.run_id for s in store.changed_since(page.cursor, 10).states] == ["d"]
    finally:
        store.close()


def _state_from(store: PostgresJobStateStore, run_id: str) -> JobState:
    [state] = [s for s in store.changed_since(None, 100).states if s.run_id == run_id]
    return state
