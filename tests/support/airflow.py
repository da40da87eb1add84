"""Run a generated Airflow DAG file with the real ``airflow dags test``.

Airflow pins hundreds of packages (SQLAlchemy, pydantic, FastAPI, ...) that would
fight with Dagster's pins, so it never goes into the project venv: it is installed
once into its own venv under a cache directory (``$DPONE_TEST_CACHE`` or
``~/.cache/dpone-tests``) and reused by every later test run. Tests talk to it only
through its CLI, as a user's scheduler would; nothing here imports Airflow.

What Airflow 3.3 does under ``airflow dags test`` (checked, and relied on here):

* It needs a migrated metadata DB (else "Database migration required") but no
  ``dags reserialize``: it parses the dags folder and writes the DAGs to the DB itself.
* Its exit code is 1 when a task fails (the DAG run fails) and when the DAG is missing
  or fails to parse. It is 0, with no task run at all, when the logical date is before
  the DAG's ``start_date``: so also check :func:`task_states`.
* The run id is ``manual__<wall-clock time>``, not the logical date.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import fasteners  # type: ignore[import-untyped]

#: The Airflow release the generated DAGs are checked against (current on PyPI).
AIRFLOW_VERSION = "3.3.2"
#: The last Airflow 2 release: the generated DAGs must import and run there too.
AIRFLOW_2_VERSION = "2.11.2"

_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
#: Airflow's tested pins for this release and Python. It lives on GitHub, which may be out
#: of reach (it is on the CI machines): then pip resolves the versions by itself.
def constraints_url(version: str) -> str:
    return (
        "https://raw.githubusercontent.com/apache/airflow/"
        f"constraints-{version}/constraints-{_PYTHON}.txt"
    )


def _extra_packages(version: str) -> tuple[str, ...]:
    """``BashOperator`` moved to the standard provider in Airflow 3 (``apache-airflow-core``
    depends on it today; naming it keeps the import working if that is ever dropped)."""
    return ("apache-airflow-providers-standard",) if version.startswith("3.") else ()


def _bash_operator_import(version: str) -> str:
    if version.startswith("3."):
        return "from airflow.providers.standard.operators.bash import BashOperator"
    return "from airflow.operators.bash import BashOperator"


#: Written last, so a venv without it is a half-built one (killed build) and is rebuilt.
_STAMP = ".dpone-airflow-ready"


def _name(version: str) -> str:
    return f"airflow-{version}-py{_PYTHON}"

_DB_NAME = "airflow.db"
#: Environment variables of the calling process that must not reach Airflow: the project
#: venv's, and any Airflow settings a developer has exported for a real installation.
_DROPPED_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")


def cache_dir() -> Path:
    """Where the venv and the migrated DB template live between test runs."""
    root = os.environ.get("DPONE_TEST_CACHE") or str(Path.home() / ".cache" / "dpone-tests")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock(name: str) -> fasteners.InterProcessLock:
    """One lock file per cached artefact, so parallel pytest processes build it only once."""
    return fasteners.InterProcessLock(str(cache_dir() / f"{name}.lock"))


def airflow_venv(version: str = AIRFLOW_VERSION) -> Path:
    """The path of a venv holding ``apache-airflow==<version>``, built on first use.

    Safe under concurrent callers: the build runs under an inter-process lock, and the stamp
    file is written only once Airflow's ``BashOperator`` imports, so a venv left by a killed
    build (or whose base Python has gone) is thrown away and rebuilt.
    """
    venv = cache_dir() / _name(version)
    if _venv_ready(venv):
        return venv
    with _lock(_name(version)):
        if _venv_ready(venv):
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        _build_venv(venv, version)
        (venv / _STAMP).write_text(f"apache-airflow=={version}\n")
    return venv


def _venv_ready(venv: Path) -> bool:
    # bin/python is a symlink to the base interpreter: exists() is False once that is gone.
    return (venv / _STAMP).is_file() and (venv / "bin" / "python").exists()


def _build_venv(venv: Path, version: str) -> None:
    # The base interpreter, so the new venv never chains to the project venv running pytest.
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    args = [*pip, f"apache-airflow=={version}", *_extra_packages(version)]
    constraints = _download_constraints(constraints_url(version), venv / "constraints.txt")
    if constraints is not None:
        args += ["--constraint", str(constraints)]
    subprocess.run(args, check=True)
    # Fail the build here (no stamp) rather than every later test with an import error.
    probe = _bash_operator_import(version)
    with tempfile.TemporaryDirectory() as home:  # importing Airflow writes an airflow.cfg
        subprocess.run([python, "-c", probe], check=True, env=_base_env(Path(home)))


def _download_constraints(url: str, dest: Path) -> Path | None:
    """Airflow's constraints file, or None when it can't be fetched (no route, no DNS)."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            dest.write_bytes(response.read())
    except OSError:
        return None
    return dest


def _base_env(home: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """The calling environment minus the project venv's and Airflow's, plus a private home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED_ENV and not key.startswith("AIRFLOW")
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / _DB_NAME}",
    )
    if dags_folder is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    return env


def _migrated_db_template(venv: Path, version: str) -> Path:
    """An empty, migrated metadata DB, made once and copied into each test's home.

    ``airflow db migrate`` costs about 3 s per call; a copy costs nothing. Copying is safe:
    the migrated DB holds only the schema version, the default pool and log templates,
    nothing tied to a home or a dags folder, and its name carries the Airflow version.
    """
    template = cache_dir() / f"{_name(version)}-migrated.db"
    if template.is_file():
        return template
    with _lock(f"{_name(version)}-migrated"):
        if template.is_file():
            return template
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            home = Path(tmp)
            subprocess.run(
                [str(venv / "bin" / "airflow"), "db", "migrate"],
                env=_base_env(home, dags_folder=home),
                cwd=home,
                check=True,
                capture_output=True,
                timeout=600,
            )
            # Atomic: a killed migration never leaves a template behind.
            os.replace(home / _DB_NAME, template)
    return template


def airflow_dags_test(
    dag_file: Path,
    dag_id: str,
    logical_date: str,
    *,
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    version: str = AIRFLOW_VERSION,
) -> subprocess.CompletedProcess[str]:
    """Run ``airflow dags test <dag_id> <logical_date>`` on ``dag_file``'s directory.

    ``home`` becomes AIRFLOW_HOME and holds the SQLite metadata DB, logs and airflow.cfg;
    calling again with the same home adds a run to the same DB. Every file in the DAG's
    directory is parsed, as Airflow's dags folder. ``env`` is added last, over everything.
    ``stdout`` holds stdout and stderr interleaved (the Airflow log, rendered commands and
    all); ``returncode`` is 1 when a task failed or the DAG did not load.
    """
    venv = airflow_venv(version)
    home.mkdir(parents=True, exist_ok=True)
    db = home / _DB_NAME
    if not db.exists():
        shutil.copyfile(_migrated_db_template(venv, version), db)
    run_env = _base_env(home, dags_folder=dag_file.resolve().parent)
    run_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{run_env.get('PATH', '')}"
    run_env.update(env or {})
    command = [str(venv / "bin" / "airflow"), "dags", "test", dag_id, logical_date]
    return _run_killing_group(command, env=run_env, cwd=home, timeout=timeout)


def _run_killing_group(
    command: list[str], *, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """subprocess.run, except a timeout also kills the tasks' own children (bash, sleep)."""
    with subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, output=output) from None
    return subprocess.CompletedProcess(command, process.returncode, output, None)


def task_states(home: Path, dag_id: str) -> dict[str, str | None]:
    """Task id -> final state in the newest run of ``dag_id`` recorded in ``home``'s DB.

    Needed because exit code 0 does not prove a task ran: for a logical date before the
    DAG's ``start_date`` Airflow creates no task instance and calls the run a success. Then
    this returns ``{}``. Mapped task instances appear as ``task_id[map_index]``.
    """
    uri = f"file:{home / _DB_NAME}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute(
            "SELECT ti.task_id, ti.map_index, ti.state FROM task_instance AS ti"
            " WHERE ti.dag_id = ? AND ti.run_id = ("
            "  SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchall()
    return {
        task_id if map_index < 0 else f"{task_id}[{map_index}]": state
        for task_id, map_index, state in rows
    }
