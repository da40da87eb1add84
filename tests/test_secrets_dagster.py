"""No secret in Dagster: environment secrets a command echoes, URL passwords of any spelling.

A real ``dagster.materialize`` with the real resource; the run's whole event log
(metadata, failures, captured log lines) is serialized and searched.
"""

from __future__ import annotations

import re
import sys

import dagster as dg
import pytest

from dpone_dagster import DponeResource, build_dpone_assets
from tests.support.workspace import Workspace, all_text_under

PG_PASSWORD = "DgPgEnv-3f9a0c71"
API_TOKEN = "dg_tok_52e1b7c9a4"
URL_PASSWORD = "Dg7/Hx4 Rm@Tq2-pw#x?z"


def _leaks(text: str, *secrets: str) -> list[str]:
    found = [s for s in secrets if s in text]
    for secret in secrets:
        found += [p for p in re.split(r"[@/?#]", secret) if len(p) >= 6 and p in text]
    return found


def test_no_secret_reaches_dagster_events_or_metadata(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    monkeypatch.setenv("MY_API_TOKEN", API_TOKEN)
    code = (
        "import os, sys\n"
        "for name in ('PGPASSWORD', 'MY_API_TOKEN'):\n"
        "    print(name, '=', os.environ[name])\n"
        "    print(name, '=', os.environ[name], file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    (ws.root / "source.db").touch()
    manifest = ws.write_manifest(
        {
            "echo": {"kind": "command", "command": [sys.executable, "-c", code]},
            "load": {
                "source": {"connection": "local", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            },
        },
        name="dgsecret.yml",
        connections={
            "local": "sqlite:///source.db",
            # A refused port: the transfer fails and its error names the connection.
            "warehouse": f"postgresql://dpone:{URL_PASSWORD}@127.0.0.1:9/warehouse",
        },
    )
    assets = build_dpone_assets([manifest])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        assets,
        resources={
            "dpone": DponeResource(
                lock_dir=str(ws.lock_dir),
                state_dir=str(ws.state_dir),
                output_root=str(ws.root / ".dpone" / "orchestration"),
            )
        },
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures  # one step runs both processes; both fail

    logged = "\n".join(dg.serialize_value(event) for event in instance.all_logs(result.run_id))
    # The command's output did reach Dagster -- masked.
    assert "PGPASSWORD = ***" in logged and "MY_API_TOKEN = ***" in logged
    assert "cannot connect to target connection 'warehouse'" in logged
    assert _leaks(logged, PG_PASSWORD, API_TOKEN, URL_PASSWORD) == []
    evidence = all_text_under([ws.root / ".dpone"])
    assert evidence and _leaks(evidence, PG_PASSWORD, API_TOKEN, URL_PASSWORD) == []
