"""What a handoff is built from, and the snippets it gives."""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dpone_core.handoff.shell import check_text
from dpone_core.manifest import OPTIONAL_ENV
from dpone_core.schedule import DEFAULT_SCHEDULE, check_schedule

__all__ = ["IMAGE_PLACEHOLDER", "OPTIONAL_ENV", "HandoffInputs", "SchedulerHandoff"]

#: The CronJob's image until a user names theirs: empty, the one value the API server
#: refuses in a pod template ("containers[0].image: Required value"), so the CronJob
#: cannot be applied by mistake. A fake name would apply and then fail every night.
IMAGE_PLACEHOLDER = ""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SUBPATH = re.compile(r"[a-z0-9][a-z0-9-]*")


class HandoffInputs(BaseModel):
    """One process's schedule, as every scheduler will run it.

    ``argv`` is the ``dpone orchestrate run`` argument list after the program,
    without a run id: each snippet appends ``--execution-date`` in its
    scheduler's idiom, so each logical run gets its own run id (the run-id rule
    of :mod:`dpone_core.logical_run`). ``program`` and every path in ``argv``
    should be absolute, and ``working_dir`` is where the command runs, so the
    snippet works from any directory and a minimal ``PATH``. ``name`` is the
    process, ``namespace`` the manifest identity: task ids, asset keys and the
    CronJob name derive from them. ``env_refs`` maps environment variable
    *names* to a description (starting with ``OPTIONAL_ENV`` for a variable the
    run can do without); values are never given to the builder.
    ``data_dirs`` maps a volume sub-path to an absolute directory that must
    outlive a Kubernetes pod (locks, states, evidence).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: list[str]
    program: str = "dpone"
    name: str
    namespace: str = "dpone"
    schedule: str = DEFAULT_SCHEDULE
    #: The first logical date: Airflow's ``start_date``, the Dagster partitions' start.
    start_date: date
    image: str = IMAGE_PLACEHOLDER
    env_refs: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = None
    secret_name: str = "dpone-secrets"
    data_dirs: dict[str, str] = Field(default_factory=dict)
    #: The Airflow DAG id (default ``<namespace>.<name>``).
    dag_id: str | None = None
    #: How long a stopped pod may take to shut down (dpone stops the command, records
    #: the attempt as failed and writes evidence within this).
    termination_grace_seconds: int = Field(default=15, ge=1)

    @field_validator("argv")
    @classmethod
    def _argv_ok(cls, value: list[str]) -> list[str]:
        for index, arg in enumerate(value):
            check_text(arg, f"argv[{index}]")
        return value

    @field_validator("program", "name", "namespace")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return check_text(value, "value")

    @field_validator("image", "dag_id")
    @classmethod
    def _text_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, "value")

    @field_validator("working_dir")
    @classmethod
    def _working_dir_ok(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(
                "working_dir must be an absolute path (a snippet runs from any directory)"
            )
        return None if value is None else check_text(value, "working_dir")

    @field_validator("schedule")
    @classmethod
    def _schedule_ok(cls, value: str) -> str:
        return check_schedule(value)

    @field_validator("env_refs")
    @classmethod
    def _env_refs_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for env_name, description in value.items():
            if not _ENV_NAME.fullmatch(env_name):
                raise ValueError(
                    f"env_refs key {env_name!r} is not an environment variable name "
                    "(expected letters, digits and '_', not starting with a digit)"
                )
            check_text(description, f"env_refs[{env_name!r}]")
        return value

    @field_validator("data_dirs")
    @classmethod
    def _data_dirs_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for sub_path, directory in value.items():
            if not _SUBPATH.fullmatch(sub_path):
                raise ValueError(f"data_dirs key {sub_path!r} is not a volume sub-path name")
            if not directory.startswith("/"):
                raise ValueError(f"data_dirs[{sub_path!r}] must be an absolute path")
            check_text(directory, f"data_dirs[{sub_path!r}]")
        return value

    @field_validator("secret_name")
    @classmethod
    def _secret_name_ok(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(f"secret_name {value!r} is not a DNS-1123 subdomain")
        return value


class SchedulerHandoff(BaseModel):
    """The snippets of one process's schedule.

    ``cron_command`` is one shell command (``cd`` to the working directory, then
    dpone with the logical date from ``date -u``); ``crontab_line`` is the same
    behind the schedule, always one physical line with ``%`` escaped as ``\\%``.
    ``airflow_task`` is a ``BashOperator`` to paste into a DAG, ``airflow_dag`` a
    complete DAG file; ``dagster_asset`` a complete Dagster definitions file;
    ``kubernetes_cronjob`` a CronJob manifest.
    """

    model_config = ConfigDict(frozen=True)

    schedule: str
    cron_command: str
    crontab_line: str
    airflow_task: str
    airflow_dag: str
    dagster_asset: str
    kubernetes_cronjob: str

    def to_dict(self) -> dict[str, str]:
        """``scheduler_handoff`` of the run report (the four contract keys and more)."""
        return self.model_dump()
