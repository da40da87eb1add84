"""The Airflow handoff, run by the real ``airflow dags test`` (Airflow in its own cached venv).

The DAG file is taken as dpone wrote it into the report, dropped into an empty
dags folder and run for two logical dates: each date is its own dpone run id,
both commit, the lock key is the process's, and a re-run of a date is refused
without executing the process again. The task snippet (``airflow_task``) is
checked the same way inside a DAG of the user's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.airflow import (
    AIRFLOW_2_VERSION,
    AIRFLOW_VERSION,
    airflow_dags_test,
    task_states,
)
from tests.support.workspace import Workspace, recorder_command

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> tuple[Workspace, Path]:
    ws = Workspace(tmp_path / "project")
    ws.root.mkdir()
    record = ws.root / "record.txt"
    ws.write_manifest(
        {"orders": {"kind": "command", "command": recorder_command("--record", str(record))}},
        name="shop.yml",
    )
    return ws, record


def _first_run(ws: Workspace, *extra: str) -> dict[str, str]:
    code, report, err = ws.orchestrate(
        "--manifest", "shop.yml", "--execution-date", "2026-11-01", *extra
    )
    assert code == 0, err
    handoff: dict[str, str] = report["scheduler_handoff"]
    return handoff


def _states(ws: Workspace) -> dict[str, dict[str, object]]:
    return {
        state["run_id"]: state
        for state in (json.loads(p.read_text()) for p in ws.state_dir.glob("*.job_state.json"))
    }


@pytest.mark.parametrize("version", [AIRFLOW_VERSION, AIRFLOW_2_VERSION])
def test_generated_dag_runs_each_logical_date_once(tmp_path: Path, version: str) -> None:
    """On Airflow 3 and on Airflow 2: the DAG file imports on both, unchanged."""
    ws, record = _project(tmp_path)
    handoff = _first_run(ws)
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "shop_orders.py"
    dag_file.write_text(handoff["airflow_dag"])
    home = tmp_path / "airflow-home"

    for logical_date in ("2026-11-02", "2026-11-03"):
        done = airflow_dags_test(
            dag_file, "shop.orders", logical_date, home=home, version=version
        )
        assert done.returncode == 0, done.stdout[-4000:]
        assert task_states(home, "shop.orders") == {"orders": "success"}

    states = _states(ws)
    run_ids = ["shop.orders_2026_11_01", "shop.orders_2026_11_02", "shop.orders_2026_11_03"]
    assert sorted(states) == run_ids
    assert all(states[r]["status"] == "committed" for r in run_ids)
    assert {states[r]["lock_key"] for r in run_ids[1:]} == {"shop.orders"}
    assert [line[0] for line in ws.records(str(record))] == run_ids
    for run_id in run_ids[1:]:
        report = ws.root / ".dpone/orchestration" / run_id.replace(".", "%2E")
        assert (report / "orchestrated_run.json").is_file()

    # Airflow re-runs a date (a clear, a retry): refused, the process does not run again.
    again = airflow_dags_test(
        dag_file, "shop.orders", "2026-11-03", home=home, version=version
    )
    assert again.returncode != 0
    assert task_states(home, "shop.orders") == {"orders": "failed"}
    assert "job_state.already_committed" in again.stdout
    assert len(ws.records(str(record))) == 3


def test_task_snippet_runs_inside_a_users_dag(tmp_path: Path) -> None:
    ws, record = _project(tmp_path)
    handoff = _first_run(ws, "--schedule", "*/30 * * * *")
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "my_dag.py"
    indented = "\n".join(
        "    " + line if line else line for line in handoff["airflow_task"].splitlines()
    )
    dag_file.write_text(
        "import datetime\n"
        "from airflow.sdk import DAG\n\n"
        "with DAG(dag_id='my_dag', schedule=None,\n"
        "         start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)):\n"
        + indented
        + "\n"
    )
    home = tmp_path / "airflow-home"
    done = airflow_dags_test(dag_file, "my_dag", "2026-11-02T02:30:00+00:00", home=home)
    assert done.returncode == 0, done.stdout[-4000:]
    assert task_states(home, "my_dag") == {"orders": "success"}
    # A sub-daily schedule names its runs by UTC minute ({{ ts }}).
    assert _states(ws)["shop.orders_2026_11_02T02_30"]["status"] == "committed"
    assert [line[0] for line in ws.records(str(record))][-1] == "shop.orders_2026_11_02T02_30"
