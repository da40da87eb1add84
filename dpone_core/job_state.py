"""The job state of one logical run id: the model, its checked transitions, its revision.

Pure: no I/O. The stores (:mod:`dpone_core.state` for files,
:mod:`dpone_core.backends.postgres_state`) persist it, parse it back with
:func:`parse_job_state` and compare-and-set by :class:`Revision`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dpone_core.blockers import BlockerDetail
from dpone_core.clock import utc_now_iso
from dpone_core.errors import CorruptJobState, IllegalTransition, JobStateConflict
from dpone_core.lifecycle import RESUMABLE, JobStatus, check_transition

__all__ = [
    "SCHEMA_VERSION",
    "AttemptHolder",
    "JobState",
    "Revision",
    "SchedulerIdentity",
    "Transition",
    "admit_attempt",
    "advance",
    "check_successor",
    "parse_job_state",
]

SCHEMA_VERSION = 1


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: JobStatus
    at: str
    attempt: int
    reason: str | None = None


class AttemptHolder(BaseModel):
    """Which process executes the current attempt (to tell later whether it is gone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int
    host: str
    pid_start_time: str | None = None
    lock_token: str | None = None


class SchedulerIdentity(BaseModel):
    """Who started an attempt: the scheduler's kind and its own names for the run.

    ``kind`` is ``cli``, ``cron``, ``airflow``, ``dagster``, ``kubernetes`` or any
    word a caller passes; ``name`` the scheduler's name of the job (an Airflow DAG
    id); ``run_id`` its run or task id (an Airflow run id, a Dagster run id, a
    Kubernetes Job name). A refusal names the committer with it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(min_length=1)
    name: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        """``airflow (shop.orders, run manual__2026-11-30T02:00)``-style text."""
        run = f"run {self.run_id}" if self.run_id else None
        parts = [part for part in (self.name, run) if part]
        return f"{self.kind} ({', '.join(parts)})" if parts else self.kind


class JobState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    run_id: str
    process: str
    manifest_path: str
    selector: str | None
    lock_key: str
    status: JobStatus
    started_at: str
    updated_at: str
    attempt: int = Field(ge=1)
    #: Bumped on every from-scratch restart; resume and takeover keep it.
    generation: int = Field(default=1, ge=1)
    transitions: list[Transition]
    blockers: list[str] = Field(default_factory=list)
    blocker_details: list[BlockerDetail] = Field(default_factory=list)
    run_result: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    resumable: bool = False
    output_dir: str
    holder: AttemptHolder | None = None
    #: Who started the current attempt (None: not said, e.g. the Python API).
    scheduler: SchedulerIdentity | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def admit_attempt(
    previous: JobState | None,
    *,
    run_id: str,
    process: str,
    manifest_path: str,
    selector: str | None,
    lock_key: str,
    output_dir: str,
    holder: AttemptHolder,
    from_scratch: bool,
    scheduler: SchedulerIdentity | None = None,
) -> JobState:
    """Start a new attempt at ``started``; history and attempt count carry over."""
    check_transition(previous.status if previous else None, JobStatus.STARTED, new_attempt=True)
    now = utc_now_iso()
    attempt = previous.attempt + 1 if previous else 1
    generation = 1
    checkpoint: dict[str, Any] | None = None
    if previous is not None:
        generation = previous.generation + 1 if from_scratch else previous.generation
        checkpoint = None if from_scratch else previous.checkpoint
    history = list(previous.transitions) if previous else []
    reason = (
        "restart from scratch" if previous and from_scratch else ("resume" if previous else None)
    )
    history.append(Transition(status=JobStatus.STARTED, at=now, attempt=attempt, reason=reason))
    return JobState(
        run_id=run_id,
        process=process,
        manifest_path=manifest_path,
        selector=selector,
        lock_key=lock_key,
        status=JobStatus.STARTED,
        started_at=previous.started_at if previous else now,
        updated_at=now,
        attempt=attempt,
        generation=generation,
        transitions=history,
        checkpoint=checkpoint,
        run_result=None,
        resumable=False,
        output_dir=output_dir,
        holder=holder,
        scheduler=scheduler,
    )


def advance(
    state: JobState,
    status: JobStatus,
    *,
    reason: str | None = None,
    blocker_details: list[BlockerDetail] | None = None,
    run_result: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> JobState:
    """Move within the current attempt; raises IllegalTransition on a lifecycle bug."""
    check_transition(state.status, status, new_attempt=False)
    now = utc_now_iso()
    details = blocker_details if blocker_details is not None else list(state.blocker_details)
    return state.model_copy(
        update={
            "status": status,
            "updated_at": now,
            "transitions": [
                *state.transitions,
                Transition(status=status, at=now, attempt=state.attempt, reason=reason),
            ],
            "blockers": [d.code for d in details],
            "blocker_details": details,
            "run_result": run_result if run_result is not None else state.run_result,
            "checkpoint": checkpoint if checkpoint is not None else state.checkpoint,
            "resumable": status in RESUMABLE,
        }
    )


def parse_job_state(data: bytes | dict[str, Any], *, location: str, run_id: str) -> JobState:
    """A stored job state, or :class:`CorruptJobState` naming ``location`` and the first fault."""
    try:
        if isinstance(data, dict):
            state = JobState.model_validate(data)
        else:
            state = JobState.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        reason = f"not a valid job state ({where}: {first['msg']})"
        raise CorruptJobState(location, reason) from None
    if state.run_id != run_id:
        raise CorruptJobState(location, f"holds run id {state.run_id!r}, not {run_id!r}")
    return state


@dataclass(frozen=True)
class Revision:
    """Which version of a run's state a store saw: its status and transition count.

    Transitions are append-only, so (status, count) names a revision; ``status``
    None with count 0 means "no state yet". The "compare" of compare-and-set.
    """

    status: str | None
    count: int

    @classmethod
    def of(cls, state: JobState | None) -> Revision:
        if state is None:
            return cls(None, 0)
        return cls(state.status.value, len(state.transitions))

    def describe(self) -> str:
        if self.status is None:
            return "no state"
        return f"{self.status!r} after {self.count} transitions"


def check_successor(expected: Revision, state: JobState, *, run_id: str) -> None:
    """Raise :class:`JobStateConflict` unless ``state`` legally extends revision ``expected``.

    It must add at least one transition after the ``expected.count`` stored
    ones, each allowed by the lifecycle, ending at its own status.
    """
    count = expected.count
    if count >= len(state.transitions) or (
        count and state.transitions[count - 1].status.value != expected.status
    ):
        raise JobStateConflict(
            f"job state of run {run_id!r} is at {expected.describe()}; the state being "
            "written does not extend it"
        )
    new = state.transitions[count:]
    if not new or state.status != new[-1].status:
        raise JobStateConflict(
            f"job state of run {run_id!r} adds no transition to the stored {expected.describe()}"
        )
    status = JobStatus(expected.status) if expected.status is not None else None
    for transition in new:
        try:
            check_transition(
                status, transition.status, new_attempt=transition.status is JobStatus.STARTED
            )
        except IllegalTransition as exc:
            raise JobStateConflict(str(exc)) from None
        status = transition.status
