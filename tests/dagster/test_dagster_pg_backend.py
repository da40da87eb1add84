"""DponeResource(backend=...): locks and job states in PostgreSQL, from a real materialization."""

import json
from collections.abc import Iterator

import pytest
from dagster_support import command, materializations, run

from dpone_dagster import build_dpone_assets
from tests.support.pg import drop_schema, dsn_with_password, new_schema, query
from tests.support.workspace import Workspace, all_text_under


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    schema = new_schema()
    dsn, password = dsn_with_password()
    monkeypatch.setenv("DPONE_ORCHESTRATION_DSN", dsn)
    monkeypatch.setenv("DPONE_ORCHESTRATION_SCHEMA", schema)
    yield schema, password
    drop_schema(schema)


def test_postgres_backend_holds_the_state_and_no_password_leaks(
    ws: Workspace, pg_env: tuple[str, str]
) -> None:
    schema, password = pg_env
    manifest = ws.write_manifest(
        {"hello": {"kind": "command", "command": command("print('hi')")}}, name="greet.yml"
    )
    result = run(build_dpone_assets([manifest]), ws, resource_overrides={"backend": "postgresql"})
    assert result.success
    (md,) = materializations(result)["command/greet/hello"]
    assert md["dpone/status"] == "committed"
    rows = query(f'select run_id, status from "{schema}".job_states')
    assert rows == [(md["dpone/run_id"], "committed")]
    assert not ws.state_dir.exists()  # nothing went to the local files backend
    report = json.loads(
        (ws.root / ".dpone" / "orchestration").rglob("orchestrated_run.json").__next__().read_text()
    )
    assert "--backend postgresql" in report["scheduler_handoff"]["cron_command"]
    everything = json.dumps(md, default=str) + all_text_under([ws.root / ".dpone"])
    for event in result.all_events:
        everything += str(event)
    assert password not in everything


def test_explicit_files_backend_ignores_the_dsn(ws: Workspace, pg_env: tuple[str, str]) -> None:
    manifest = ws.write_manifest(
        {"hello": {"kind": "command", "command": command("print('hi')")}}, name="greet.yml"
    )
    result = run(build_dpone_assets([manifest]), ws, resource_overrides={"backend": "files"})
    assert result.success
    (md,) = materializations(result)["command/greet/hello"]
    assert ws.state(md["dpone/run_id"])["status"] == "committed"
