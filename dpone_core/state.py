"""Durable per-run job state: the model, its checked transitions, and the file store.

One JSON file per logical run id. Only the lock holder writes it, every write
is atomic and fsynced, and an unreadable file is reported as corrupt and left
byte-for-byte untouched: guessing "no previous state" would re-run a load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dpone_core.blockers import BlockerDetail
from dpone_core.clock import utc_now_iso
from dpone_core.durable import atomic_write_text
from dpone_core.errors import CorruptJobState as CorruptJobState
from dpone_core.lifecycle import RESUMABLE, JobStatus, check_transition
from dpone_core.naming import file_safe_name

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


class JobStateStore(Protocol):
    """Where job states live; the local file store is the default backend."""

    def load(self, run_id: str) -> JobState | None:
        """The state of ``run_id``, None if there is none; raises CorruptJobState."""
        ...

    def save(self, state: JobState) -> None: ...

    def location(self, run_id: str) -> str:
        """Where the state of ``run_id`` lives, for evidence and messages."""
        ...


class LocalJobStateStore:
    """``<state_dir>/<run id>.job_state.json``, written atomically and durably."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def path_for(self, run_id: str) -> Path:
        return self.state_dir / f"{file_safe_name(run_id)}.job_state.json"

    def location(self, run_id: str) -> str:
        return str(self.path_for(run_id))

    def load(self, run_id: str) -> JobState | None:
        path = self.path_for(run_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptJobState(str(path), f"unreadable ({exc.strerror})") from exc
        try:
            state = JobState.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "file"
            raise CorruptJobState(
                str(path), f"not a valid job state ({where}: {first['msg']})"
            ) from exc
        if state.run_id != run_id:
            raise CorruptJobState(str(path), f"holds run id {state.run_id!r}, not {run_id!r}")
        return state

    def save(self, state: JobState) -> None:
        path = self.path_for(state.run_id)
        text = state.model_dump_json(indent=2) + "\n"
        try:
            atomic_write_text(path, text)
        except FileNotFoundError:  # first write into a new state dir (no mkdir per save)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
