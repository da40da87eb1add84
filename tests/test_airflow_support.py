"""tests/support/airflow.py runs a DAG file under the real ``airflow dags test``.

The Airflow tests of generated DAGs trust this helper, so it is checked on its own:
one DAG, two logical dates, each run must render its own ``{{ ds }}`` into a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.airflow import airflow_dags_test, task_states

DAG_SOURCE = """\
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="support_probe",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    BashOperator(
        task_id="write_ds",
        cwd={out!r},
        bash_command='echo "{{{{ ds }}}}" > "ds_{{{{ ts_nodash }}}}.txt"',
    )
"""


@pytest.mark.slow
def test_dags_test_renders_ds_for_each_logical_date(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "support_probe.py"
    dag_file.write_text(DAG_SOURCE.format(out=str(out)))
    home = tmp_path / "airflow-home"

    for logical_date in ("2026-11-30", "2026-12-01T02:00:00+00:00"):
        completed = airflow_dags_test(dag_file, "support_probe", logical_date, home=home)
        assert completed.returncode == 0, completed.stdout[-4000:]
        assert task_states(home, "support_probe") == {"write_ds": "success"}

    files = {path.name: path.read_text() for path in out.iterdir()}
    assert files == {
        "ds_20261130T000000.txt": "2026-11-30\n",
        "ds_20261201T020000.txt": "2026-12-01\n",
    }
