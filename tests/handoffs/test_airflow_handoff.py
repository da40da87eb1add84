"""The Airflow handoff, run by the real ``airflow dags test`` (Airflow in its own cached venv).

The DAG file is taken as dpone wrote it into the report, dropped into an empty
dags folder and run for two logical dates: each date is its own dpone run id,
both commit, the lock key is the process's, each job state names Airflow, the
DAG and the DAG run that ran it (as Airflow's own metadata DB records them), and a
re-run of a date is refused, naming that run, without executing the process
again. The task snippet (``airflow_task``) is checked the same way inside a DAG of
the user's own.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.airflow import (
    AIRFLOW_2_VERSION,
    AIRFLOW_VERSION,
    airflow_dags_test,
    task_states,
)
from tests.support.workspace import Workspace, recorder_command

from .conftest import who

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


def _newest_dag_run_id(home: Path, dag_id: str) -> str:
    """The run id of the newest run of ``dag_id`` in ``home``'s metadata DB."""
    uri = f"file:{home / 'airflow.db'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    assert row is not None, f"no run of {dag_id} in {home}"
    run_id: str = row[0]
    return run_id


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

    dag_runs = []
    for logical_date in ("2026-11-02", "2026-11-03"):
        done = airflow_dags_test(dag_file, "shop.orders", logical_date, home=home, version=version)
        assert done.returncode == 0, done.stdout[-4000:]
        assert task_states(home, "shop.orders") == {"orders": "success"}
        dag_runs.append(_newest_dag_run_id(home, "shop.orders"))

    states = _states(ws)
    run_ids = ["shop.orders_2026_11_01", "shop.orders_2026_11_02", "shop.orders_2026_11_03"]
    assert sorted(states) == run_ids
    assert all(states[r]["status"] == "committed" for r in run_ids)
    assert {states[r]["lock_key"] for r in run_ids[1:]} == {"shop.orders"}
    # Who ran each: the CLI first, then Airflow's DAG shop.orders, each in its own DAG run.
    assert len(set(dag_runs)) == 2
    assert states[run_ids[0]]["scheduler"] == who("cli")
    for run_id, dag_run in zip(run_ids[1:], dag_runs, strict=True):
        assert states[run_id]["scheduler"] == who("airflow", "shop.orders", dag_run)
    assert [line[0] for line in ws.records(str(record))] == run_ids
    for run_id in run_ids[1:]:
        report = ws.root / ".dpone/orchestration" / run_id.replace(".", "%2E")
        assert (report / "orchestrated_run.json").is_file()

    # Airflow re-runs a date (a clear, a retry): refused, the process does not run again.
    again = airflow_dags_test(dag_file, "shop.orders", "2026-11-03", home=home, version=version)
    assert again.returncode != 0
    assert task_states(home, "shop.orders") == {"orders": "failed"}
    assert "job_state.already_committed" in again.stdout
    # The refusal names the DAG run that committed the date.
    assert f"already committed by airflow (shop.orders, run {dag_runs[1]})" in again.stdout
    assert len(ws.records(str(record))) == 3
    assert _states(ws)[run_ids[2]]["scheduler"] == who("airflow", "shop.orders", dag_runs[1])


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
    state = _states(ws)["shop.orders_2026_11_02T02_30"]
    assert state["status"] == "committed"
    # The user's DAG is the one recorded, not the DAG id the handoff would have given it.
    assert state["scheduler"] == who("airflow", "my_dag", _newest_dag_run_id(home, "my_dag"))
    assert [line[0] for line in ws.records(str(record))][-1] == "shop.orders_2026_11_02T02_30"
