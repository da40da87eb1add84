"""Transfers through `dpone orchestrate run`: kill -9 mid-load, resume, secrets, bad manifests."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import Workspace, all_text_under

PG_URL = os.environ.get("DPONE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_LIBPQ = PG_URL.replace("postgresql+psycopg://", "postgresql://")


def _seed(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "create table orders (order_id integer primary key, amount integer, updated_at text)"
        )
        db.executemany(
            "insert into orders values (?, ?, ?)",
            [(i, i * 10, f"2026-01-01T00:{i % 60:02d}:00") for i in range(1, rows + 1)],
        )


def _source_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("select order_id, amount, updated_at from orders"))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"dpone_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_LIBPQ, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    yield schema
    with psycopg.connect(PG_LIBPQ, autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{schema}" cascade')


def _target(ws: Workspace, kind: str, schema: str | None) -> tuple[str, str]:
    if kind == "sqlite":
        return "sqlite:///warehouse.db", "landing_orders"
    return PG_URL, f"{schema}.landing_orders"


def _target_rows(ws: Workspace, kind: str, schema: str | None) -> list[tuple[object, ...]]:
    if kind == "sqlite":
        with sqlite3.connect(ws.root / "warehouse.db") as db:
            exists = db.execute(
                "select count(*) from sqlite_master where name = 'landing_orders'"
            ).fetchone()[0]
            if not exists:
                return []
            return sorted(db.execute("select order_id, amount, updated_at from landing_orders"))
    with psycopg.connect(PG_LIBPQ) as conn:
        exists = conn.execute("select to_regclass(%s)", (f"{schema}.landing_orders",)).fetchone()
        if not exists or exists[0] is None:
            return []
        return sorted(
            conn.execute(
                f'select order_id, amount, updated_at from "{schema}".landing_orders'
            ).fetchall()
        )


@pytest.mark.parametrize("crash_at", ["after_staging", "after_publish"])
@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_kill_9_mid_load_then_resume_loads_exactly_once(
    ws: Workspace, crash_at: str, target_kind: str, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if target_kind == "postgres" else None
    _seed(ws.root / "shop.db", 5000)
    url, table = _target(ws, target_kind, schema)
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": table},
                "strategy": {"mode": "incremental", "key": ["order_id"], "cursor": "updated_at"},
                "batch_size": 700,
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": url},
    )
    code, report, err = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", env={"DPONE_TEST_CRASH_AT": crash_at}
    )
    assert code == -9, err
    assert ws.state("r1")["status"] == "running"
    published = _target_rows(ws, target_kind, schema)
    if crash_at == "after_staging":
        assert published == []  # nothing was visible before the publish commit
    else:
        assert published == _source_rows(ws.root / "shop.db")

    code, report, _ = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1 and report["blockers"] == ["job_state.already_running"]

    code, report, err = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", "--resume-policy", "resume"
    )
    assert code == 0, err
    assert _target_rows(ws, target_kind, schema) == _source_rows(ws.root / "shop.db")
    result = report["run_result"]["result"]
    assert result["final_rows"] == 5000 and result["load_id"]
    state = ws.state("r1")
    assert state["status"] == "committed" and state["attempt"] == 2 and state["generation"] == 1

    # a restart is a new generation: a new load, still exactly the source (merge on key)
    code, report, _ = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", "--resume-policy", "restart"
    )
    assert code == 0
    assert _target_rows(ws, target_kind, schema) == _source_rows(ws.root / "shop.db")


def test_refused_connection_fails_readably_without_the_password(ws: Workspace) -> None:
    _seed(ws.root / "shop.db", 10)
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            }
        },
        connections={
            "shop": "sqlite:///shop.db",
            "warehouse": "postgresql://loader:pw-Zq9-secret@127.0.0.1:1/db",
        },
    )
    code, report, err = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1 and report["status"] == "failed"
    state = ws.state("r1")
    assert state["status"] == "failed"
    errors = state["run_result"]["result"]["errors"]
    assert errors and any("127.0.0.1" in e for e in errors), errors
    everything = "\n".join([str(report), err, all_text_under([ws.root / ".dpone"])])
    assert "pw-Zq9-secret" not in everything
    assert "***" in everything


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        ({"mode": "merge", "key": ["nope"]}, "processes.orders.strategy.key"),
        ({"mode": "incremental", "cursor": "nope"}, "processes.orders.strategy.cursor"),
        ({"mode": "merge"}, "processes.orders.strategy.key"),
    ],
)
def test_bad_transfer_manifests_exit_2_naming_the_field(
    ws: Workspace, strategy: dict[str, object], field: str
) -> None:
    _seed(ws.root / "shop.db", 10)
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": strategy,
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )
    proc = ws.dpone("orchestrate", "run", "--manifest", "m.yml", "--run-id", "r1")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dpone: error:")]
    assert len(errors) == 1 and field in errors[0] and "m.yml" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    state_file = ws.state_dir / "r1.job_state.json"
    if strategy.get("key") or strategy.get("cursor"):
        # found against the database: the attempt is recorded failed, never left running
        assert ws.state("r1")["status"] == "failed"
    else:  # found in the file: nothing was locked or written
        assert not state_file.exists()


def test_unknown_connection_exits_2(ws: Workspace) -> None:
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "nope", "table": "orders"},
                "target": {"connection": "warehouse", "table": "t"},
            }
        },
        connections={"warehouse": "sqlite:///w.db"},
    )
    proc = ws.dpone("orchestrate", "run", "--manifest", "m.yml")
    assert proc.returncode == 2
    assert "processes.orders.source.connection" in proc.stderr and "'warehouse'" in proc.stderr


def test_python_api_invalid_input_after_admission_carries_the_report(ws: Workspace) -> None:
    from dpone_core.executor import RunManifestService
    from dpone_core.handoff import SchedulerHandoffBuilder
    from dpone_core.locks import LocalRunLockManager
    from dpone_core.run import (
        InvalidInputAfterAdmission,
        OrchestratedRunRequest,
        OrchestratedRunService,
    )
    from dpone_core.state import LocalJobStateStore

    _seed(ws.root / "shop.db", 10)
    manifest = ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "merge", "key": ["nope"]},
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )
    service = OrchestratedRunService(
        lock_manager=LocalRunLockManager(ws.lock_dir),
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=RunManifestService().execute,
        job_state_store=LocalJobStateStore(ws.state_dir),
    )
    with pytest.raises(InvalidInputAfterAdmission) as info:
        service.run(
            request=OrchestratedRunRequest(manifest_path=str(manifest), run_id="r1"),
            output_dir=ws.root / "out",
        )
    assert "processes.orders.strategy.key" in str(info.value)
    report = info.value.report
    assert report.status == "failed" and report.job_state is not None
    assert report.job_state["status"] == "failed"
    assert not any(ws.lock_dir.glob("*.lock.json"))  # the key was released
