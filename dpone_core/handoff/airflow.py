"""Airflow: a ``BashOperator`` task and a complete DAG file, for Airflow 2 and 3.

The logical date comes from Airflow's own template (``{{ ds }}`` for a daily or
coarser schedule, ``{{ ts }}`` for a finer one), so every DAG run is its own
dpone run id by the run-id rule. The schedule is a ``CronTriggerTimetable`` in
UTC: on Airflow 2 and 3 alike a run's logical date is the moment it fires (not
the start of a data interval), the date cron and Kubernetes see with ``date -u``.

Everything else in ``bash_command`` is Jinja-inert on purpose: every ``{`` of an
argument is written as the shell escape ``\\{`` so no template tag can form, and
the command ends in a template, never in ``.sh``/``.bash``, so Airflow never
loads it as a template file. It is one line (Jinja rewrites a raw ``\\r``).
The task changes into the working directory itself (``cd`` in the command:
``BashOperator``'s ``cwd`` is a template field, which would render a ``{{`` in a path).
"""

from __future__ import annotations

from dpone_core.cli_flags import flag
from dpone_core.handoff.names import airflow_id, python_identifier, qualified
from dpone_core.handoff.shell import env_comment, jinja_inert_word
from dpone_core.schedule import Period

__all__ = ["airflow_dag", "airflow_task", "default_dag_id"]

_IMPORT_BASH_OPERATOR = [
    "try:  # Airflow 3: the standard provider",
    "    from airflow.providers.standard.operators.bash import BashOperator",
    "except ImportError:  # Airflow 2",
    "    from airflow.operators.bash import BashOperator",
]


def default_dag_id(namespace: str, name: str) -> str:
    """``<manifest>.<process>`` (``shop.orders``); Airflow ids may hold dots."""
    return qualified(namespace, name, ".", airflow_id)


def _bash_command(command: list[str], working_dir: str | None, period: Period) -> str:
    logical = "{{ ds }}" if period is Period.DAY else "{{ ts }}"
    words = [jinja_inert_word(word) for word in command]
    words += [flag("execution_date"), logical, flag("scheduler"), "airflow"]
    # Airflow's ids are restricted to [A-Za-z0-9_.~:+-]: safe inside single quotes.
    words += [flag("dag_id"), "'{{ dag.dag_id }}'", flag("scheduler_run_id"), "'{{ run_id }}'"]
    # `cd` in the command, not BashOperator(cwd=...): Airflow renders cwd as a template
    # too, and only the bash command is kept Jinja-inert.
    cd = "" if working_dir is None else f"cd {jinja_inert_word(working_dir)} && "
    return cd + " ".join(words)


def _operator(
    name: str, command: list[str], working_dir: str | None, period: Period, indent: str
) -> list[str]:
    lines = [
        f"{python_identifier(name)} = BashOperator(",
        f"    task_id={airflow_id(name)!r},",
        f"    bash_command={_bash_command(command, working_dir, period)!r},",
        ")",
    ]
    return [indent + line for line in lines]


def airflow_task(
    name: str,
    namespace: str,
    command: list[str],
    working_dir: str | None,
    period: Period,
    env_refs: dict[str, str],
) -> str:
    """A task to paste inside a ``with DAG(...)`` block."""
    lines = [
        f"# dpone scheduler handoff: Airflow task for process {name!r} of {namespace!r}.",
        "# Paste it inside a `with DAG(...)` block (airflow_dag is a complete DAG file).",
        "# The command's exit code is the task's result: non-zero fails the task.",
        *env_comment(env_refs, "on the Airflow workers"),
        *_IMPORT_BASH_OPERATOR,
        "",
        *_operator(name, command, working_dir, period, ""),
        "",
    ]
    return "\n".join(lines)


def airflow_dag(
    name: str,
    namespace: str,
    command: list[str],
    working_dir: str | None,
    period: Period,
    env_refs: dict[str, str],
    schedule: str,
    dag_id: str,
    start: tuple[int, int, int],
) -> str:
    """A complete DAG file: put it in the DAGs folder as it is."""
    year, month, day = start
    lines = [
        f"# dpone scheduler handoff: the Airflow DAG of process {name!r} of {namespace!r}.",
        "# Each DAG run is one logical run: dpone derives its run id from the run's logical",
        "# date, so a retried or re-triggered DAG run resumes or is refused, never loads twice.",
        "",
        "import datetime",
        "",
        "try:  # Airflow 3",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "from airflow.timetables.trigger import CronTriggerTimetable",
        "",
        *_IMPORT_BASH_OPERATOR,
        "",
        *env_comment(env_refs, "on the Airflow workers"),
        "with DAG(",
        f"    dag_id={dag_id!r},",
        f"    schedule=CronTriggerTimetable({schedule!r}, timezone='UTC'),",
        f"    start_date=datetime.datetime({year}, {month}, {day}, tzinfo=datetime.timezone.utc),",
        "    catchup=False,",
        "    max_active_runs=1,",
        "    tags=['dpone'],",
        "):",
        *_operator(name, command, working_dir, period, "    "),
        "",
    ]
    return "\n".join(lines)
