"""The sensor ticks while a Dagster step is between its commit and its materialization.

The job state is committed before the step yields its ``MaterializeResult``, so a
tick in between finds a committed state that the instance holds no
materialization of yet. The sensor must still recognise the run as made by this
instance (the Dagster root run id in the state's evidence directory or run id)
and leave it to the step; otherwise the asset would get two materializations.

No ``from __future__ import annotations`` here: Dagster reads the compute
function's annotations as objects.
"""

from typing import Any

import dagster as dg
import pytest

from dpone_dagster import DponeResource, build_dpone_observation_sensor, dpone_assets
from tests.support.workspace import Workspace


@pytest.mark.parametrize("partitioned", [False, True], ids=["unpartitioned", "partition"])
def test_a_tick_inside_the_dagster_step_does_not_report_its_run(
    ws: Workspace, partitioned: bool
) -> None:
    process: dict[str, Any] = {"kind": "command", "command": ["python3", "-c", "print('hi')"]}
    if partitioned:
        process["partitions"] = {"granularity": "daily", "start": "2026-11-01"}
    manifest = ws.write_manifest({"hello": process}, name="greet.yml")
    resource = DponeResource(
        backend="files",
        lock_dir=str(ws.lock_dir),
        state_dir=str(ws.state_dir),
        output_root=str(ws.root / ".dpone" / "orchestration"),
    )
    ticks: list[dg.SensorResult] = []

    @dpone_assets(manifest=manifest, checks=False)
    def greet(context: dg.AssetExecutionContext, dpone: DponeResource):  # type: ignore[no-untyped-def]
        report = dpone.orchestrate(context)
        assert report.status == "committed", report.blocker_details
        tick = sensor(
            dg.build_sensor_context(instance=context.instance, resources={"dpone": resource})
        )
        assert isinstance(tick, dg.SensorResult)
        ticks.append(tick)
        yield dg.MaterializeResult(asset_key=context.assets_def.key)

    sensor = build_dpone_observation_sensor([greet])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [greet],
        instance=instance,
        resources={"dpone": resource},
        partition_key="2026-11-02" if partitioned else None,
    )
    assert result.success
    [tick] = ticks
    assert tick.asset_events == []  # the state was committed, yet not reported
    # Elsewhere (an instance that did not make the run) the same state is news.
    other = sensor(
        dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(), resources={"dpone": resource}
        )
    )
    assert isinstance(other, dg.SensorResult) and len(other.asset_events) == 1
