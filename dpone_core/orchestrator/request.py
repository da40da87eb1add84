"""What the orchestrator is asked to do, and what it needs from an executor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import Field, field_validator

from dpone_core.executor.request import RunRequest
from dpone_core.job_state import SchedulerIdentity
from dpone_core.resume import ResumePolicy
from dpone_core.schedule import check_schedule

__all__ = ["OrchestratedRunRequest", "RestartGuard", "RunExecutor", "RunOutcome"]


class OrchestratedRunRequest(RunRequest):
    """A :class:`RunRequest` plus the controls the orchestrator adds around it."""

    concurrency_key: str | None = Field(default=None, min_length=1)
    resume_policy: ResumePolicy = ResumePolicy.FAIL
    #: Let a from-scratch restart publish an ``append`` load whose rows the previous
    #: generation already published (a deliberate repeat); refused otherwise.
    allow_duplicate_load: bool = False
    #: When schedulers should run this process (cron syntax, UTC), for the handoff
    #: snippets; default: the manifest's ``schedule:``, else ``0 2 * * *``.
    schedule: str | None = None
    #: The Airflow DAG that started this run (``--dag-id``); names the handoff's DAG.
    dag_id: str | None = Field(default=None, min_length=1)
    #: Who starts this attempt; recorded in the job state, named in later refusals.
    scheduler: SchedulerIdentity | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)


class RunOutcome(Protocol):
    """What a run executor returns (``RunResult`` or anything shaped like it)."""

    @property
    def passed(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


#: Runs one admitted attempt; the orchestrator calls it once per attempt.
RunExecutor = Callable[[RunRequest], RunOutcome]


#: ``(manifest_path, selector, run_id, previous_generation) -> why a from-scratch
#: restart would publish rows twice, or None``; the default is
#: :func:`dpone_core.executor.restart_guard.duplicate_risk`.
RestartGuard = Callable[[str, str | None, str, int], str | None]
