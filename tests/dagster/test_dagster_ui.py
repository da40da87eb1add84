"""The Dagster UI tells the truth: a refused re-run leaves the partition materialized, and
a CLI run shows in the asset's history (real ``dagster dev``, GraphQL, headless Chromium).

Screenshots of the asset page, the partition view and the CLI run's event are written to
``$DPONE_SCREENSHOT_DIR`` (default: the test's temporary directory); docs/images/ keeps
the latest set, and someone looks at them whenever the UI part changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webserver_support import (
    RUN_TIMEOUT,
    Server,
    launch,
    materializations,
    run_status,
    screenshot,
    start_server,
)

pytestmark = pytest.mark.slow

_DEFINITIONS = """\
import dagster as dg
from dpone_dagster import DponeResource, build_dpone_assets, build_dpone_observation_sensor

ASSETS = build_dpone_assets(["manifests"])
defs = dg.Definitions(
    assets=ASSETS,
    sensors=[build_dpone_observation_sensor(
        ASSETS, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING
    )],
    resources={"dpone": DponeResource(
        lock_dir=".dpone/locks",
        state_dir=".dpone/orchestration-state",
        output_root=".dpone/orchestration",
    )},
)
"""

_MANIFEST = f"""\
version: 1
processes:
  daily:
    description: One day of orders, loaded by whichever scheduler gets there first
    kind: command
    command: [{sys.executable!r}, "-c", "import os; print('loading', os.environ['DPONE_RUN_ID'])"]
    partitions: {{granularity: daily, start: 2026-11-01}}
"""

ASSET = ["command", "shop", "daily"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("dagster_ui"), _DEFINITIONS, {"shop.yml": _MANIFEST}
    )
    try:
        yield srv
    finally:
        srv.stop()


def _partition_stats(srv: Server) -> dict[str, Any]:
    data = srv.graphql(
        """
        query Stats($key: AssetKeyInput!) {
          assetNodeOrError(assetKey: $key) {
            __typename
            ... on AssetNode { partitionStats { numMaterialized numFailed numMaterializing } }
          }
        }
        """,
        {"key": {"path": ASSET}},
    )
    node = data["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    stats: dict[str, Any] = node["partitionStats"]
    return stats


def _finished(srv: Server, run_id: str) -> str:
    status: str = srv.wait_for(f"run {run_id}", lambda: run_status(srv, run_id), RUN_TIMEOUT)
    return status


def test_refusals_and_cli_runs_as_the_ui_shows_them(server: Server, tmp_path: Path) -> None:
    # 1. Dagster materializes 2026-11-02.
    first = launch(server, ASSET, partition="2026-11-02")
    assert _finished(server, first) == "SUCCESS", server.log_tail()
    # 2. The same partition again: refused (already committed), and the run still succeeds:
    #    the partition stays materialized, nothing failed, nothing new was materialized.
    again = launch(server, ASSET, partition="2026-11-02")
    assert _finished(server, again) == "SUCCESS", server.log_tail()
    assert len(materializations(server, ASSET, ["2026-11-02"])) == 1
    assert _partition_stats(server) == {
        "numMaterialized": 1,
        "numFailed": 0,
        "numMaterializing": 0,
    }
    # 3. cron (here: the CLI) runs 2026-11-03 against the same state store; the sensor
    #    reports it as that partition's materialization, with the same dpone metadata.
    cli = subprocess.run(
        [
            sys.executable, "-m", "dpone_core.cli", "orchestrate", "run",
            "--manifest", "manifests/shop.yml", "--execution-date", "2026-11-03",
            "--scheduler", "cron", "--lock-dir", ".dpone/locks",
            "--state-dir", ".dpone/orchestration-state", "--output-root", ".dpone/orchestration",
        ],
        cwd=server.root,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr

    def observed() -> list[dict[str, Any]]:
        return materializations(server, ASSET, ["2026-11-03"])

    (cli_run,) = server.wait_for("the sensor to report the CLI run", observed, 120)
    assert cli_run["metadata"]["dpone/run_id"] == "shop.daily_2026_11_03"
    assert cli_run["metadata"]["dpone/status"] == "committed"
    assert _partition_stats(server)["numMaterialized"] == 2

    # 4. What a person sees: the asset page, the partitions, the CLI run's event.
    shots = Path(os.environ.get("DPONE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = server.url.removesuffix("/graphql") + "/assets/" + "/".join(ASSET)
    pages = {
        "dagster-asset.png": base,
        "dagster-partitions.png": base + "?view=partitions&partition=2026-11-02",
        "dagster-cli-run.png": base + "?view=events&partition=2026-11-03",
    }
    texts = {
        name: screenshot(url, shots / name, tmp_path / f"profile-{name}")
        for name, url in pages.items()
    }
    for name in pages:
        assert (shots / name).stat().st_size > 20_000, name  # a rendered page, not a blank
    assert "daily" in texts["dagster-asset.png"]
    assert "2026-11-03" in texts["dagster-cli-run.png"]
