"""Runs Dagster commits join the run registry, and the materialization links the entry."""

from __future__ import annotations

import json
from pathlib import Path

from dagster_support import command, materializations, run

from dpone_dagster import build_dpone_assets
from tests.support.workspace import Workspace


def test_committed_runs_are_registered_and_linked(ws: Workspace, tmp_path: Path) -> None:
    manifest = ws.write_manifest(
        {"hello": {"kind": "command", "command": command("print('registered')")}},
        name="reg.yml",
    )
    registry = tmp_path / "registry"
    result = run(build_dpone_assets([manifest]), ws, resource_overrides={"registry": str(registry)})
    assert result.success
    ((md,),) = materializations(result).values()
    entry = Path(str(md["dpone/registry_entry"]))
    assert entry.parent == registry and entry.is_file()
    stored = json.loads(entry.read_text())
    assert stored["run_id"] == md["dpone/run_id"] == f"reg.hello_{result.run_id}"
    assert stored["status"] == "committed"

    # Without a registry nothing is registered and there is no key.
    plain = run(build_dpone_assets([manifest]), ws)
    ((md,),) = materializations(plain).values()
    assert "dpone/registry_entry" not in md
    assert len(list(registry.glob("*__run_registry.json"))) == 1
