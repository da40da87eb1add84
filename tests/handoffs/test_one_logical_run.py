"""One logical run, whichever scheduler runs it: scheduled twice (three times) by mistake,
the 2026-11-20 run of ``shop.orders`` still runs once.

The same process is scheduled by cron (its crontab line, run as cron runs it), by Airflow
(the generated DAG under the real ``airflow dags test``) and by Dagster (a partition
materialization through ``dpone_dagster``), for the same logical date, one after another
in each order and all at once. Exactly one of them executes the process; the others are
refused, and a refusal that comes after the commit names the committer. In Dagster the
partition then shows as materialized by the run that did it: Dagster's own, or the other
scheduler's, reported by the observation sensor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest

from dpone_dagster import DponeResource, build_dpone_assets, build_dpone_observation_sensor
from tests.support import recorder_command
from tests.support.airflow import airflow_dags_test, task_states

from .conftest import Project, day, run_like_cron

pytestmark = pytest.mark.slow

DAY = "2026-11-20"
RUN_ID = "shop.orders_2026_11_20"
KEY = dg.AssetKey(["command", "shop", "orders"])


def _setup(project: Project, sleep: float = 1) -> dict[str, str]:
    """The project and its schedule; the process takes ``sleep`` seconds."""
    record = project.root / "record.txt"
    project.write_manifest(
        {
            "orders": {
                "kind": "command",
                "command": recorder_command("--record", str(record), "--sleep", str(sleep)),
                "partitions": {"granularity": "daily", "start": "2026-11-01"},
            }
        },
        name="shop.yml",
    )
    report = project.first_run("--manifest", "shop.yml", "--execution-date", "2026-11-01")
    handoff: dict[str, str] = report["scheduler_handoff"]
    (project.root.parent / "dags").mkdir()
    (project.root.parent / "dags" / "shop_orders.py").write_text(handoff["airflow_dag"])
    return handoff


def _resource(project: Project) -> DponeResource:
    dpone = project.root / ".dpone"
    return DponeResource(
        lock_dir=str(dpone / "locks"),
        state_dir=str(dpone / "orchestration-state"),
        output_root=str(dpone / "orchestration"),
    )


def _executions(project: Project) -> list[str]:
    return [line[0] for line in project.records(str(project.root / "record.txt"))]


# -- the three schedulers, each returning what it said ---------------------------------------
def _cron(project: Project, handoff: dict[str, str]) -> str:
    done = run_like_cron(handoff["crontab_line"], home=project.home, at_utc=day(f"{DAY} 02:00"))
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def _airflow(project: Project, handoff: dict[str, str]) -> str:
    del handoff  # the DAG file was written by _setup
    dag_file = project.root.parent / "dags" / "shop_orders.py"
    home = project.root.parent / "airflow-home"
    done = airflow_dags_test(dag_file, "shop.orders", DAY, home=home)
    states = task_states(home, "shop.orders")
    return f"exit {done.returncode} {states}\n{done.stdout}"


_DAGSTER_SCRIPT = """
import json, sys
import dagster as dg
from dpone_dagster import DponeResource, build_dpone_assets
project, day, home = sys.argv[1:4]
dpone = project + "/.dpone"
with dg.DagsterInstance.from_config(home) as instance:
    result = dg.materialize(
        build_dpone_assets([project + "/shop.yml"]),
        resources={"dpone": DponeResource(lock_dir=dpone + "/locks",
            state_dir=dpone + "/orchestration-state", output_root=dpone + "/orchestration")},
        partition_key=day, instance=instance, raise_on_error=False,
    )
print(json.dumps({"success": result.success, "run_id": result.run_id}))
"""


def _dagster(project: Project, handoff: dict[str, str]) -> str:
    del handoff
    home = project.root.parent / "dagster-home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", _DAGSTER_SCRIPT, str(project.root), DAY, str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


SCHEDULERS: dict[str, Callable[[Project, dict[str, str]], str]] = {
    "cron": _cron,
    "airflow": _airflow,
    "dagster": _dagster,
}


def _dagster_instance(project: Project) -> dg.DagsterInstance:
    home = project.root.parent / "dagster-home"
    home.mkdir(exist_ok=True)
    return dg.DagsterInstance.from_config(str(home))


def _materialized_by(project: Project) -> dict[str, Any]:
    """What Dagster says materialized the partition, after the sensor's tick."""
    assets = build_dpone_assets([project.root / "shop.yml"])
    resource = _resource(project)
    with _dagster_instance(project) as instance:
        sensor = build_dpone_observation_sensor(assets, resource=resource)
        result = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        for event in result.asset_events or []:
            instance.report_runless_asset_event(event)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=[DAY]), limit=10
        ).records
        assert len(records) == 1, [r.asset_materialization for r in records]
        record = records[0]
        assert record.asset_materialization is not None
        metadata = {
            k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()
        }
        return {"dagster_run_id": record.run_id, "metadata": metadata}


@pytest.mark.parametrize(
    "order",
    [
        ("cron", "airflow", "dagster"),
        ("airflow", "dagster", "cron"),
        ("dagster", "cron", "airflow"),
    ],
)
def test_in_any_order_the_first_runs_it_and_the_others_name_it(
    project: Project, order: tuple[str, str, str]
) -> None:
    handoff = _setup(project)
    said = {name: SCHEDULERS[name](project, handoff) for name in order}
    assert _executions(project).count(RUN_ID) == 1, said
    first, *later = order
    state = project.state(RUN_ID)
    assert state["status"] == "committed" and state["attempt"] == 1
    assert state["scheduler"]["kind"] == first
    for name in later:
        assert "job_state.already_committed" in said[name], said[name]
        assert f"already committed by {first}" in said[name], said[name]
    # Dagster's refusal was not a failure (the partition keeps its status).
    if "dagster" in later:
        assert '"success": true' in said["dagster"], said["dagster"]
    shown = _materialized_by(project)
    assert shown["metadata"]["dpone/run_id"] == RUN_ID
    assert str(shown["metadata"]["dpone/scheduler"]).startswith(first)
    if first == "dagster":
        assert shown["dagster_run_id"] == state["scheduler"]["run_id"]  # its own run


def test_all_at_once_exactly_one_executes(project: Project) -> None:
    # Long enough that the three overlap: Airflow needs seconds to reach its task.
    handoff = _setup(project, sleep=12)
    said: dict[str, str] = {}

    def start(name: str) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: said.__setitem__(name, SCHEDULERS[name](project, handoff))
        )
        thread.start()
        return thread

    for thread in [start(name) for name in SCHEDULERS]:
        thread.join(timeout=600)
    assert set(said) == set(SCHEDULERS), said
    assert _executions(project).count(RUN_ID) == 1, said
    state = project.state(RUN_ID)
    assert state["status"] == "committed" and state["attempt"] == 1
    winner = state["scheduler"]["kind"]
    for name, output in said.items():
        if name != winner:
            assert "job_state.already_committed" in output or "lock.concurrent_run" in output, (
                name,
                output[-3000:],
            )
    shown = _materialized_by(project)
    assert shown["metadata"]["dpone/run_id"] == RUN_ID
    assert str(shown["metadata"]["dpone/scheduler"]).startswith(winner)
    json.dumps(said)  # every output is text
