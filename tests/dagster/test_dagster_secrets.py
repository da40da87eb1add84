"""Secrets never reach Dagster: not in definitions, metadata, failures or the event log."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, Definitions, serialize_value
from dagster_support import command, repository_snapshot, resource, run

from dpone_dagster import build_dpone_assets
from tests.support.workspace import Workspace, all_text_under

PASSWORD = "Hunter2-Pw-7f3a9c"
ENV_PASSWORD = "EnvPw-b81e44d0"


def test_passwords_appear_in_no_metadata_log_or_snapshot(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refused PostgreSQL port: the transfer fails and its error names the connection.
    url = f"postgresql://dpone:{PASSWORD}@127.0.0.1:9/warehouse"
    monkeypatch.setenv("DPONE_TEST_WAREHOUSE_URL", url)
    monkeypatch.setenv("DPONE_TEST_DB_PASSWORD", ENV_PASSWORD)
    (ws.root / "source.db").touch()
    manifest = ws.write_manifest(
        {
            "load": {
                "source": {"connection": "local", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            },
            "echo": {
                "kind": "command",
                # Prints both secrets: the URL (masked by its shape) and the env value
                # (masked because the manifest reads it from a *PASSWORD* variable).
                "command": command(
                    "import os; print(os.environ['DPONE_TEST_WAREHOUSE_URL']); "
                    "print(os.environ['DPONE_TEST_DB_PASSWORD'])"
                ),
            },
        },
        name="secret.yml",
        connections={
            "local": "sqlite:///source.db",
            "warehouse": "${DPONE_TEST_WAREHOUSE_URL}",
            "other": "postgresql://dpone:${DPONE_TEST_DB_PASSWORD}@127.0.0.1:9/other",
        },
    )
    assets = build_dpone_assets([manifest])

    snapshot = repository_snapshot(Definitions(assets=assets, resources={"dpone": resource(ws)}))
    assert "dpone/manifest" in snapshot
    assert PASSWORD not in snapshot and ENV_PASSWORD not in snapshot

    instance = DagsterInstance.ephemeral()
    result = run(assets, ws, instance=instance)
    assert not result.success  # the transfer cannot connect
    echo = [
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
    ]
    assert [m.asset_key.to_user_string() for m in echo] == ["command/secret/echo"]
    assert "***" in echo[0].metadata["dpone/report"].value  # the tail was printed, masked

    events = instance.all_logs(result.run_id)
    assert events, "the run logged nothing?"
    logged = "\n".join(serialize_value(event) for event in events)
    assert "dpone/blockers" in logged and "run.not_passed" in logged
    assert PASSWORD not in logged and ENV_PASSWORD not in logged
    # And the engine's evidence, for good measure.
    evidence = all_text_under([ws.root / ".dpone"])
    assert evidence and PASSWORD not in evidence and ENV_PASSWORD not in evidence
