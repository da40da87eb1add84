"""The seed's production pattern, end to end: its three commands as it writes them, then the
same on the PostgreSQL registry, and no password anywhere along the way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.ops.test_lineage_delivery import http_env, spooled
from tests.support.lineage_server import LineageServer, refused_url
from tests.support.openlineage_spec import validate_run_event
from tests.support.workspace import Workspace, all_text_under

#: The seed's commands verbatim; only the manifest and selector are this test's shop.
SEED_COMMANDS = [
    "dpone orchestrate run --manifest shop.yml --selector orders --format json > orchestrated_run.json",  # noqa: E501
    "dpone ops run-registry --run-result orchestrated_run.json --artifact orchestration=orchestrated_run.json --format json > registered.json",  # noqa: E501
    # (glue, not the seed's: the entry's path from the registration's JSON)
    'entry="$(python3 -c \'import json; print(json.load(open("registered.json"))["entry_path"])\')"',  # noqa: E501
    'dpone ops lineage-export --run-registry-entry "$entry" --input postgres=public.orders --output mssql=landing.orders --format json > lineage.json',  # noqa: E501
]
SEED = "set -euo pipefail\n" + "\n".join(SEED_COMMANDS) + "\n"


def run_shell(ws: Workspace, script: str, env: dict[str, str] | None = None) -> None:
    prelude = f'dpone() {{ "{sys.executable}" -m dpone_core.cli "$@"; }}\n'
    proc = subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=ws.root,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **(env or {})},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_seeds_three_commands(shop: Workspace) -> None:
    run_shell(shop, SEED)
    report = json.loads((shop.root / "orchestrated_run.json").read_text())
    run_id = report["run_id"]
    assert report["status"] == "committed" and run_id.startswith("shop.orders_")
    registered = json.loads((shop.root / "registered.json").read_text())
    entry_path = Path(registered["entry_path"])
    stem = run_id.replace(".", "%2E")
    assert entry_path == shop.root / ".dpone" / "run-registry" / f"{stem}__run_registry.json"
    entry = json.loads(entry_path.read_text())
    assert entry["schema_version"] == 1 and entry["status"] == "committed"
    assert entry["artifacts"]["orchestration"]["path"] == str(shop.root / "orchestrated_run.json")
    assert len(entry["artifacts"]["orchestration"]["sha256"]) == 64
    assert entry["rows"]["extracted"] == 5 and entry["manifest_path"] == str(shop.root / "shop.yml")
    lineage = json.loads((shop.root / "lineage.json").read_text())
    start, end = lineage["events"]
    for event in (start, end):
        validate_run_event(event)
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert start["eventTime"] == entry["started_at"] and end["eventTime"] == entry["finished_at"]
    assert [(d["namespace"], d["name"]) for d in end["inputs"]] == [("postgres", "public.orders")]
    assert [(d["namespace"], d["name"]) for d in end["outputs"]] == [("mssql", "landing.orders")]
    assert end["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5
    assert (end["job"]["namespace"], end["job"]["name"]) == ("dpone", "shop.orders")


def test_the_pattern_on_the_postgresql_registry(shop: Workspace, schema: str) -> None:
    from tests.support.pg import TEST_DSN

    env = {"DPONE_ORCHESTRATION_DSN": TEST_DSN, "DPONE_ORCHESTRATION_SCHEMA": schema}
    code, report, err = shop.orchestrate(
        "--manifest", "shop.yml", "--selector", "orders", "--registry", "postgresql", env=env
    )
    assert code == 0, err
    assert f"{schema}.run_registry run id" in err
    listed = shop.dpone("ops", "runs", "--registry", "postgresql", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["run_id"] == report["run_id"] and row["status"] == "committed"
    with LineageServer() as server:
        proc = shop.dpone(
            "ops",
            "lineage-export",
            "--run-id",
            report["run_id"],
            "--registry",
            "postgresql",
            "--format",
            "json",
            env={**env, "OPENLINEAGE_URL": server.url},
        )
    assert proc.returncode == 0, proc.stderr
    assert [e["eventType"] for e in server.events] == ["START", "COMPLETE"]
    tags = {t["key"]: t["value"] for t in server.events[0]["run"]["facets"]["tags"]["tags"]}
    assert tags["dpone.registry_entry"].startswith("postgresql://")
    shop_db = f"sqlite:{shop.root / 'data' / 'shop.db'}"
    assert [(d["namespace"], d["name"]) for d in server.events[1]["inputs"]] == [
        (shop_db, "orders"),
        (shop_db, "customers"),
    ]
    schema_fields = server.events[0]["inputs"][0]["facets"]["schema"]["fields"]
    assert [f["name"] for f in schema_fields] == ["order_id", "amount", "status", "updated_at"]


def test_no_password_in_any_entry_event_namespace_or_spool(ws: Workspace, schema: str) -> None:
    """A PostgreSQL target whose URL password holds '/' and spaces (trust auth ignores it)."""
    from tests.ops.conftest import seed_orders
    from tests.support.pg import admin

    password = "pa/ss w0rd secret"
    with admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}_t"'.encode())
    seed_orders(ws.root / "shop.db")
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "dwh", "table": f"{schema}_t.orders"},
                "strategy": {"mode": "replace"},
            }
        },
        name="leaky.yml",
        connections={
            "shop": "sqlite:///shop.db",
            "dwh": f"postgresql://postgres:{password}@127.0.0.1:5432/test",
        },
    )
    url, port = refused_url()
    try:
        code, report, err = ws.orchestrate(
            "--manifest", "leaky.yml", "--registry", "reg", env=http_env(url)
        )
        assert code == 0, err
        entry = next((ws.root / "reg").glob("*__run_registry.json"))
        given = f"postgres://loader:{password}@db.example:5432=public.orders"
        proc = ws.dpone(
            "ops",
            "lineage-export",
            "--run-registry-entry",
            str(entry),
            "--input",
            given,
            "--format",
            "json",
            env=http_env(url),
        )
        assert proc.returncode == 0, proc.stderr
        with LineageServer(port) as server:
            ws.dpone("ops", "lineage-flush", env=http_env(url))
    finally:
        from tests.support.pg import drop_schema

        drop_schema(f"{schema}_t")
    events = json.loads(proc.stdout)["events"]
    assert events[0]["inputs"][0]["namespace"] == "postgres://db.example:5432"
    assert events[0]["outputs"][0]["namespace"] == "postgres://127.0.0.1:5432"
    assert len(server.events) == 4 and spooled(ws) == []
    everything = "\n".join(
        [
            all_text_under([ws.root / "reg", ws.root / ".dpone"]),
            proc.stdout,
            proc.stderr,
            err,
            json.dumps(server.events),
            json.dumps(report),
        ]
    )
    for piece in (password, "pa/ss", "w0rd secret", "ss w0rd"):
        assert piece not in everything
