"""Helpers of the Dagster tests: real manifests, a real resource, real Dagster runs.

Nothing here fakes Dagster or the engine: runs go through ``dagster.materialize``
(or real subprocesses), and results are read back from Dagster's own events.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from dpone_dagster import DponeResource
from tests.support.workspace import Workspace

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]


def resource(ws: Workspace, **overrides: Any) -> DponeResource:
    """A resource whose locks, states and evidence live in the test's workspace."""
    return DponeResource(
        lock_dir=str(ws.lock_dir),
        state_dir=str(ws.state_dir),
        output_root=str(ws.root / ".dpone" / "orchestration"),
        **overrides,
    )


def command(code: str) -> list[str]:
    """A command process running ``python -c code``."""
    return [PYTHON, "-c", code]


def raw(value: Any) -> Any:
    """The plain value of a metadata entry."""
    if isinstance(value, dg.PathMetadataValue):
        return value.path
    if isinstance(value, dg.MetadataValue):
        return value.value
    return value


def plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: raw(value) for key, value in metadata.items()}


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, list[dict[str, Any]]]:
    """Asset key (user string) -> metadata of each materialization, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        out.setdefault(mat.asset_key.to_user_string(), []).append(plain(mat.metadata))
    return out


def observations(result: dg.ExecuteInProcessResult) -> dict[str, list[dict[str, Any]]]:
    """Asset key (user string) -> metadata of each observation, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in result.get_asset_observation_events():
        obs = event.asset_observation_data.asset_observation
        out.setdefault(obs.asset_key.to_user_string(), []).append(plain(obs.metadata))
    return out


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, list[Any]]:
    """Asset key (user string) -> its check evaluations, in order."""
    out: dict[str, list[Any]] = {}
    for event in result.get_asset_check_evaluations():
        out.setdefault(event.asset_key.to_user_string(), []).append(event)
    return out


def step_failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    """The (last) step failure's description and metadata."""
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected a step failure"
    data = failures[-1].step_failure_data
    assert data.user_failure_data is not None, data.error
    return data.user_failure_data.description or "", plain(data.user_failure_data.metadata)


def run(
    assets: Sequence[dg.AssetsDefinition],
    ws: Workspace,
    *,
    instance: dg.DagsterInstance | None = None,
    resource_overrides: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={"dpone": resource(ws, **(resource_overrides or {}))},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        **kwargs,
    )


def repository_snapshot(defs: dg.Definitions, *, defer_snapshots: bool = False) -> str:
    """The serialized repository snapshot a code server sends to the webserver and daemon.

    Dagster has no public API for it; this is the one place the tests reach into
    ``dagster._core`` (dpone_dagster itself never does).
    """
    from dagster._core.remote_representation.external_data import RepositorySnap

    snap = RepositorySnap.from_def(defs.get_repository_def(), defer_snapshots=defer_snapshots)
    return dg.serialize_value(snap)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def seed_orders(path: Path, rows: Sequence[tuple[int, str, int, str]]) -> None:
    """A source ``orders`` table: (order_id, status, amount_cents, updated_at)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "create table if not exists orders (order_id integer primary key, status text, "
            "amount_cents integer, updated_at text)"
        )
        db.executemany("insert or replace into orders values (?, ?, ?, ?)", rows)


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql, params))
