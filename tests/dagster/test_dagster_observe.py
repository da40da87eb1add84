"""The observation sensor: runs made outside Dagster appear in the asset history, once.

Job states are written by the real CLI (``python -m dpone_core.cli orchestrate
run`` in subprocesses) into a real store -- files, or PostgreSQL -- and the
sensor is evaluated through ``dagster.build_sensor_context`` against a real
instance; its events are stored there the way the daemon stores them
(``report_runless_asset_event``) and read back from the instance.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import plain, seed_orders

from dpone_core.errors import DponeUsageError
from dpone_dagster import METADATA_KEYS, DponeResource, build_dpone_assets
from dpone_dagster import build_dpone_observation_sensor as observation_sensor
from tests.support.workspace import Workspace

ORDERS = [
    (1, "placed", 100, "2026-11-01T08:00:00+00:00"),
    (2, "placed", 200, "2026-11-01T09:00:00+00:00"),
    (3, "placed", 300, "2026-11-02T10:00:00+00:00"),
]
ORDERS_KEY = dg.AssetKey(["warehouse", "landing_orders"])


@dataclass
class Site:
    """One test's store (files, or a PostgreSQL schema), seen by the CLI and by Dagster."""

    kind: str
    ws: Workspace
    schema: str | None = None

    @property
    def output_root(self) -> Path:
        return self.ws.root / ".dpone" / "orchestration"

    @property
    def env(self) -> dict[str, str]:
        if self.kind == "postgresql":
            from tests.support.pg import TEST_DSN

            return {"DPONE_ORCHESTRATION_DSN": TEST_DSN}
        return {"DPONE_ORCHESTRATION_DSN": ""}

    def cli(self, *args: str) -> tuple[int, dict[str, Any]]:
        backend = (
            ["--backend", "postgresql", "--backend-schema", self.schema or ""]
            if self.kind == "postgresql"
            else ["--backend", "files"]
        )
        code, report, stderr = self.ws.orchestrate(*args, *backend, env=self.env)
        assert "Traceback" not in stderr, stderr
        return code, report

    def resource(self) -> DponeResource:
        return DponeResource(
            backend=self.kind,
            lock_dir=str(self.ws.lock_dir),
            state_dir=str(self.ws.state_dir),
            output_root=str(self.output_root),
        )


@pytest.fixture(params=["files", "postgresql"])
def site(
    request: pytest.FixtureRequest, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    if request.param == "files":
        monkeypatch.delenv("DPONE_ORCHESTRATION_DSN", raising=False)
        yield Site("files", ws)
        return
    from tests.support.pg import TEST_DSN, drop_schema, new_schema

    schema = new_schema()
    monkeypatch.setenv("DPONE_ORCHESTRATION_DSN", TEST_DSN)
    monkeypatch.setenv("DPONE_ORCHESTRATION_SCHEMA", schema)
    yield Site("postgresql", ws, schema)
    drop_schema(schema)


def _shop(ws: Workspace, hello: str = "print('hello')") -> Path:
    seed_orders(ws.root / "src.db", ORDERS)
    return ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "src", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "replace"},
            },
            "daily": {
                "kind": "command",
                "command": ["python3", "-c", "print('daily')"],
                "partitions": {"granularity": "daily", "start": "2026-11-01"},
            },
            "hello": {"kind": "command", "command": ["python3", "-c", hello]},
        },
        name="shop.yml",
        connections={"src": "sqlite:///src.db", "warehouse": "sqlite:///warehouse.db"},
    )


def _key(assets: list[dg.AssetsDefinition], selector: str) -> str:
    """The key the translator gave ``selector``'s asset (command keys are its choice)."""
    [key] = [
        spec.key.to_user_string()
        for a in assets
        for spec in a.specs
        if spec.metadata["dpone/selector"] == selector
    ]
    return key


def _evaluate(
    sensor: dg.SensorDefinition, site: Site, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"dpone": site.resource()}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _events(result: dg.SensorResult) -> dict[tuple[str, str | None], dict[str, Any]]:
    events = {}
    for event in result.asset_events:
        assert isinstance(event, dg.AssetMaterialization)
        events[(event.asset_key.to_user_string(), event.partition)] = plain(event.metadata)
    assert len(events) == len(result.asset_events), "an asset event was reported twice"
    return events


def test_a_cli_run_appears_once_with_its_asset_partition_and_metadata(site: Site) -> None:
    manifest = _shop(site.ws)
    assets = build_dpone_assets([manifest])
    sensor = observation_sensor(assets)
    instance = dg.DagsterInstance.ephemeral()
    for selector, day in (("orders", "2026-11-02"), ("daily", "2026-11-03")):
        code, report = site.cli("--manifest", "shop.yml", "--selector", selector,
                                "--execution-date", day)
        assert code == 0 and report["status"] == "committed", report

    daily_key = _key(assets, "daily")
    first = _evaluate(sensor, site, instance, None)
    events = _events(first)
    assert set(events) == {("warehouse/landing_orders", None), (daily_key, "2026-11-03")}
    orders = events[("warehouse/landing_orders", None)]
    assert orders["dpone/status"] == "committed"
    assert orders["dpone/run_id"] == "shop.orders_2026_11_02"
    assert (orders["dpone/extracted_rows"], orders["dpone/inserted_rows"]) == (3, 3)
    assert orders["dagster/row_count"] == 3 and orders["dpone/attempt"] == 1
    # Built from the CLI's committed evidence report, found under the resource's output root
    # (the state records the CLI's relative evidence directory).
    assert Path(orders["dpone/invocation_report_json"]).is_file()
    assert "reported from the job state" not in orders["dpone/decision"]
    daily = events[(daily_key, "2026-11-03")]
    assert (daily["dpone/run_id"], daily["dpone/partition_key"]) == (
        "shop.daily_2026_11_03",
        "2026-11-03",
    )
    assert daily["dpone/window_start"] == "2026-11-03T00:00:00+00:00"
    for metadata in events.values():
        assert set(metadata) <= set(METADATA_KEYS)

    # The cursor moved past them: the next tick reports nothing new.
    second = _evaluate(sensor, site, instance, first.cursor)
    assert second.asset_events == [] and second.skip_reason is not None

    # Stored as the daemon stores them, they are the assets' history.
    for event in first.asset_events:
        instance.report_runless_asset_event(event)
    latest = instance.get_latest_materialization_event(ORDERS_KEY)
    assert latest is not None and latest.asset_materialization is not None
    stored = plain(latest.asset_materialization.metadata)
    assert (stored["dpone/status"], stored["dpone/run_id"], stored["dagster/row_count"]) == (
        "committed",
        "shop.orders_2026_11_02",
        3,
    )
    daily_asset = dg.AssetKey.from_user_string(daily_key)
    assert instance.get_materialized_partitions(daily_asset) == {"2026-11-03"}
    # Exactly once even when the cursor is lost: what the instance holds is not reported again.
    assert _evaluate(sensor, site, instance, None).asset_events == []


def test_failed_and_refused_cli_runs_are_not_materializations(site: Site) -> None:
    manifest = _shop(site.ws, hello="import sys; sys.exit(3)")
    sensor = observation_sensor(build_dpone_assets([manifest]))
    instance = dg.DagsterInstance.ephemeral()
    hello = ("--manifest", "shop.yml", "--selector", "hello", "--execution-date", "2026-11-02")
    code, report = site.cli(*hello)
    assert code == 1 and report["status"] == "failed"
    failed = _evaluate(sensor, site, instance, None)
    assert failed.asset_events == []

    # The same logical run, fixed and resumed: reported once, as its second attempt.
    _shop(site.ws)
    code, report = site.cli(*hello, "--resume-policy", "resume")
    assert code == 0, report
    resumed = _evaluate(sensor, site, instance, failed.cursor)
    [metadata] = _events(resumed).values()
    assert (metadata["dpone/run_id"], metadata["dpone/attempt"]) == ("shop.hello_2026_11_02", 2)

    # A refused re-run (already committed) writes no state: nothing new to report.
    code, report = site.cli(*hello)
    assert code == 1 and report["blockers"] == ["job_state.already_committed"], report
    assert _evaluate(sensor, site, instance, resumed.cursor).asset_events == []


def test_dagster_made_materializations_are_not_reported_again(site: Site) -> None:
    manifest = _shop(site.ws)
    assets = build_dpone_assets([manifest])
    sensor = observation_sensor(assets)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"dpone": site.resource()}
    hello, daily = _key(assets, "hello"), _key(assets, "daily")
    whole = dg.materialize(assets, selection=[hello], instance=instance, resources=resources)
    part = dg.materialize(
        assets,
        selection=[daily],
        partition_key="2026-11-04",
        instance=instance,
        resources=resources,
    )
    assert whole.success and part.success

    result = _evaluate(sensor, site, instance, None)
    assert result.asset_events == []
    # Another Dagster deployment sharing the store did not make them: there they are news.
    elsewhere = _events(_evaluate(sensor, site, dg.DagsterInstance.ephemeral(), None))
    assert set(elsewhere) == {(hello, None), (daily, "2026-11-04")}
    assert elsewhere[(hello, None)]["dpone/run_id"].endswith(f"_{whole.run_id}")


def test_a_cli_run_launched_by_a_dagster_run_of_this_instance_is_left_to_it(
    site: Site,
) -> None:
    """The Dagster handoff runs `dpone orchestrate run` through Pipes with ``--scheduler
    dagster --scheduler-run-id <run id>``; that run reports its own materialization."""
    assets = build_dpone_assets([_shop(site.ws)])
    sensor = observation_sensor(assets)
    instance = dg.DagsterInstance.ephemeral()
    launcher = dg.materialize([dg.asset(name="launcher")(lambda: None)], instance=instance)
    hello = ("--manifest", "shop.yml", "--selector", "hello", "--scheduler", "dagster")
    code, report = site.cli(*hello, "--execution-date", "2026-11-02",
                            "--scheduler-run-id", launcher.run_id)
    assert code == 0, report
    code, report = site.cli(*hello, "--execution-date", "2026-11-03",
                            "--scheduler-run-id", "another-deployments-run")
    assert code == 0, report
    events = _events(_evaluate(sensor, site, instance, None))
    assert [m["dpone/run_id"] for m in events.values()] == ["shop.hello_2026_11_03"]


def test_runs_without_a_partition_of_the_asset_are_skipped(site: Site) -> None:
    _shop(site.ws)
    sensor = observation_sensor(build_dpone_assets([site.ws.root / "shop.yml"]))
    daily = ("--manifest", "shop.yml", "--selector", "daily")
    for extra in (("--run-id", "daily_by_hand"), ("--execution-date", "2026-10-31"),
                  ("--execution-date", "2026-11-05T02:00:00Z")):
        code, report = site.cli(*daily, *extra)
        assert code == 0, report
    instance = dg.DagsterInstance.ephemeral()
    assert _evaluate(sensor, site, instance, None).asset_events == []


def test_without_its_evidence_a_run_is_reported_from_the_job_state(site: Site) -> None:
    manifest = _shop(site.ws)
    sensor = observation_sensor(build_dpone_assets([manifest]))
    code, report = site.cli("--manifest", str(manifest), "--selector", "orders",
                            "--output-dir", str(site.ws.root / "elsewhere"))
    assert code == 0, report
    shutil.rmtree(site.ws.root / "elsewhere")

    [metadata] = _events(_evaluate(sensor, site, dg.DagsterInstance.ephemeral(), None)).values()
    assert metadata["dpone/status"] == "committed"
    assert metadata["dpone/run_id"] == report["run_id"]
    assert "reported from the job state" in metadata["dpone/decision"]
    assert metadata["dpone/extracted_rows"] == 3 and metadata["dagster/row_count"] == 3


def test_a_long_history_is_reported_over_several_ticks(site: Site) -> None:
    assets = build_dpone_assets([_shop(site.ws)])
    sensor = observation_sensor(assets, max_states_per_tick=1)
    daily = _key(assets, "daily")
    for day in ("2026-11-02", "2026-11-03"):
        code, report = site.cli("--manifest", "shop.yml", "--selector", "daily",
                                "--execution-date", day)
        assert code == 0, report
    instance = dg.DagsterInstance.ephemeral()
    cursor = None
    reported = []
    for _ in range(3):  # evaluated the way the daemon evaluates a tick
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"dpone": site.resource()}
        )
        data = sensor.evaluate_tick(context)
        cursor = data.cursor
        reported.append({(e.asset_key.to_user_string(), e.partition) for e in data.asset_events})
    assert reported == [{(daily, "2026-11-02")}, {(daily, "2026-11-03")}, set()]


def test_a_cursor_it_cannot_use_fails_the_tick_and_says_how_to_reset_it(site: Site) -> None:
    _shop(site.ws)
    sensor = observation_sensor(build_dpone_assets([site.ws.root / "shop.yml"]))
    instance = dg.DagsterInstance.ephemeral()
    foreign = json.dumps({"v": 1, "store": "files:1:{}" if site.kind != "files" else "pg:1:1:1"})
    for cursor in ("not json", foreign):
        with pytest.raises(DponeUsageError, match="dagster sensor cursor --delete"):
            _evaluate(sensor, site, instance, cursor)


def test_the_example_project_shows_a_cli_run_made_next_to_it(tmp_path: Path) -> None:
    """definitions.py wires the sensor (RUNNING): `dpone orchestrate run` from the repository
    root writes into the same .dpone/, and the run becomes the asset's materialization."""
    import os
    import runpy
    import subprocess
    import sys

    from dagster_support import REPO

    for name in ("definitions.py", "workspace.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPONE_")}
    seeded = subprocess.run(
        [sys.executable, "scripts/seed_shop.py", "--customers", "5", "--orders", "10"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "dpone_core.cli", "orchestrate", "run", "--manifest",
         "manifests/shop.yml", "--selector", "products", "--execution-date", "2026-11-02"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert ran.returncode == 0, ran.stderr

    defs = runpy.run_path(str(tmp_path / "definitions.py"))["defs"]
    sensor = defs.get_repository_def().get_sensor_def("dpone_observation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    instance = dg.DagsterInstance.ephemeral()
    # As the code server evaluates a tick: the Definitions' resources the sensor requires.
    top_level = defs.get_repository_def().get_top_level_resources()
    resources = {key: top_level[key] for key in sensor.required_resource_keys}
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=resources)
    data = sensor.evaluate_tick(context)
    [event] = data.asset_events
    instance.report_runless_asset_event(event)
    latest = instance.get_latest_materialization_event(
        dg.AssetKey(["warehouse", "landing_products"])
    )
    assert latest is not None and latest.asset_materialization is not None
    stored = plain(latest.asset_materialization.metadata)
    assert (stored["dpone/run_id"], stored["dpone/status"]) == (
        "shop.products_2026_11_02",
        "committed",
    )
    assert stored["dpone/inserted_rows"] > 0
