"""``SchedulerHandoffBuilder``: one process's schedule as cron, Airflow, Dagster and Kubernetes.

Building is pure: no I/O, no clock, no environment reads (the only outside
state consulted is the in-memory secret registry of :mod:`dpone_core.redact`);
the same inputs always give the same snippets. Every snippet calls
``dpone orchestrate run`` -- never bare ``dpone run`` -- so each scheduler gets
the lock, the job state and the resume policy, and every snippet passes the
logical date in its scheduler's idiom so that each logical run has its own run
id while the concurrency key stays the process's.

Secrets: the builder never receives secret values. Environment variables a run
needs are passed as *names* (:attr:`HandoffInputs.env_refs`); as a second line
of defence every string is passed through :func:`dpone_core.redact.redact`.
"""

from __future__ import annotations

from dpone_core.handoff.airflow import airflow_dag, airflow_task, default_dag_id
from dpone_core.handoff.cron import cron_command, crontab_line
from dpone_core.handoff.dagster_file import render_dagster_file
from dpone_core.handoff.inputs import HandoffInputs, SchedulerHandoff
from dpone_core.handoff.kubernetes import kubernetes_cronjob
from dpone_core.handoff.names import airflow_id
from dpone_core.redact import redact, secrets_generation
from dpone_core.schedule import schedule_period

__all__ = ["SchedulerHandoffBuilder"]


_CACHE_SIZE = 256


class SchedulerHandoffBuilder:
    """Build the cron, Airflow, Dagster and Kubernetes snippets of one process.

    Building is pure, so the snippets of the last inputs seen are kept: every run of
    a process in one Python process (a Dagster code server, the Python API) renders
    them once per day (the start date is an input) and per registered secret.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], SchedulerHandoff] = {}

    def build(self, inputs: HandoffInputs) -> SchedulerHandoff:
        key = (inputs.model_dump_json(), secrets_generation())
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(inputs)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # bounded; a code server has a few hundred processes
            self._cache[key] = cached
        return cached

    def _render(self, inputs: HandoffInputs) -> SchedulerHandoff:
        command = [redact(inputs.program), *(redact(arg) for arg in inputs.argv)]
        wd = None if inputs.working_dir is None else redact(inputs.working_dir)
        env = {name: redact(desc) for name, desc in sorted(inputs.env_refs.items())}
        name, namespace = redact(inputs.name), redact(inputs.namespace)
        schedule = inputs.schedule
        period = schedule_period(schedule)
        start = inputs.start_date
        dag_id = (
            airflow_id(redact(inputs.dag_id)) if inputs.dag_id else default_dag_id(namespace, name)
        )
        return SchedulerHandoff(
            schedule=schedule,
            cron_command=cron_command(command, wd, period),
            crontab_line=crontab_line(schedule, command, wd, period),
            airflow_task=airflow_task(name, namespace, command, wd, period, env),
            airflow_dag=airflow_dag(
                name,
                namespace,
                command,
                wd,
                period,
                env,
                schedule,
                dag_id,
                (start.year, start.month, start.day),
            ),
            dagster_asset=render_dagster_file(
                name, namespace, command, wd, period, env, schedule, start.isoformat()
            ),
            kubernetes_cronjob=kubernetes_cronjob(
                name,
                namespace,
                schedule,
                redact(inputs.image),
                command,
                wd,
                period,
                env,
                {sub: redact(path) for sub, path in inputs.data_dirs.items()},
                inputs.secret_name,
                inputs.termination_grace_seconds,
            ),
        )
