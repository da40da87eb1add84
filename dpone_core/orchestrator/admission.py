"""Step 1 of an invocation, under the lock: re-read the state, plan by the policy, admit.

Admission happens only while the invocation holds its concurrency key, and
the admitting write is a compare-and-set: if any other writer changed the run
id's state since it was read (another key, another lock directory), the
write is refused and the invocation is refused with it. A refusal never
writes the state it was refused for.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from dpone_core import blockers
from dpone_core.backends.protocol import HeldLock, LockManager
from dpone_core.blockers import BlockerDetail, detail
from dpone_core.errors import CorruptJobState, JobStateConflict
from dpone_core.job_state import AttemptHolder, JobState, admit_attempt, advance
from dpone_core.lifecycle import JobStatus
from dpone_core.liveness import local_process_alive
from dpone_core.orchestrator.invocation import Invocation
from dpone_core.orchestrator.request import RestartGuard
from dpone_core.resume import PreviousState, ResumePolicyPlanner

__all__ = ["Admission", "admit"]


@dataclass(frozen=True)
class Admission:
    """Either an admitted attempt's ``running`` state, or why the invocation was refused."""

    state: JobState | None
    refusal: list[BlockerDetail] = field(default_factory=list)
    #: The stored state a refusal leaves as it was (shown in the report).
    previous: JobState | None = None

    @property
    def admitted(self) -> bool:
        return self.state is not None


def admit(
    inv: Invocation,
    lock: HeldLock,
    lock_manager: LockManager,
    planner: ResumePolicyPlanner,
    restart_guard: RestartGuard,
) -> Admission:
    """Decide and record (``started`` + ``running`` in one write) or refuse."""
    try:
        previous = inv.store.load(inv.run_id)
    except CorruptJobState as exc:
        plan = planner.plan(PreviousState(status=None, corrupt=True), inv.request.resume_policy)
        inv.decision_message = plan.message
        return Admission(None, [detail(blockers.JOB_CORRUPT, str(exc))])
    decision = planner.plan(_previous_state(inv, previous, lock_manager), inv.request.resume_policy)
    inv.decision_message = decision.message
    if not decision.admit:
        assert decision.blocker is not None
        message = decision.message
        if previous is not None:
            location = inv.store.location(inv.run_id)
            if previous.scheduler is not None:
                message = f"{message} by {previous.scheduler.describe()}"
            message = f"{message} (run id {inv.run_id!r}, state file {location})"
        return Admission(None, [detail(decision.blocker, message)], previous)
    if decision.from_scratch and previous is not None and not inv.request.allow_duplicate_load:
        risk = restart_guard(
            inv.request.manifest_path, inv.request.selector, inv.run_id, previous.generation
        )
        if risk is not None:
            inv.decision_message = f"{decision.message}; refused: {risk}"
            return Admission(None, [detail(blockers.JOB_RESTART_WOULD_DUPLICATE, risk)], previous)
    state = _first_state(inv, previous, lock, from_scratch=decision.from_scratch)
    if decision.takeover:
        state = _with_reason(state, f"takeover: {decision.message}")
    state = advance(state, JobStatus.RUNNING)
    try:
        inv.store.save(state)
    except JobStateConflict as exc:
        inv.decision_message = f"{decision.message}; refused: {exc}"
        return Admission(None, [detail(blockers.JOB_WRITE_CONFLICT, str(exc))], inv.peek_state())
    return Admission(state)


def _previous_state(
    inv: Invocation, previous: JobState | None, lock_manager: LockManager
) -> PreviousState:
    if previous is None:
        return PreviousState(status=None)
    return PreviousState(
        status=previous.status,
        holder_alive=_holder_alive(inv, previous, lock_manager),
        other_process=_other_owner(inv, previous),
    )


def _other_owner(inv: Invocation, previous: JobState) -> str | None:
    """The other process this run id belongs to, if any.

    Only the process name counts, not the manifest file: the same process may
    be run from a renamed or relocated manifest (default run ids carry the
    manifest's name, so two manifests never share one by default).
    """
    return previous.process if previous.process != inv.process else None


def _holder_alive(inv: Invocation, previous: JobState, lock_manager: LockManager) -> bool | None:
    """Is the process that left ``previous`` in ``running`` still alive?

    The holder the state records is asked first: on this host its pid and
    start time say for certain, whatever lock directory or key it used, and a
    live holder is never taken over. Otherwise (another host) the key decides:
    if it is ours, we hold it now and a holder never lets go of its key while
    running, so it is gone; else the lock manager says whether that key is
    still held under the token the state recorded.
    """
    if previous.status not in (JobStatus.RUNNING, JobStatus.STARTED):
        return None
    holder = previous.holder
    token = holder.lock_token if holder else None
    if holder is not None and holder.host == socket.gethostname():
        if holder.pid == os.getpid():
            # This very process: alive only while it still holds that attempt's key.
            return lock_manager.is_held(previous.lock_key, token) if token else None
        return local_process_alive(holder.pid, holder.pid_start_time)
    if previous.lock_key == inv.lock_key:
        return False
    if token is None:
        return None  # a state without a token cannot be checked: maybe alive
    return lock_manager.is_held(previous.lock_key, token)


def _first_state(
    inv: Invocation, previous: JobState | None, lock: HeldLock, *, from_scratch: bool
) -> JobState:
    return admit_attempt(
        previous,
        run_id=inv.run_id,
        process=inv.process,
        manifest_path=inv.request.manifest_path,
        selector=inv.request.selector,
        lock_key=inv.lock_key,
        output_dir=str(inv.output_dir),
        holder=AttemptHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            pid_start_time=lock.holder.pid_start_time,
            lock_token=lock.token,
        ),
        from_scratch=from_scratch,
        scheduler=inv.request.scheduler,
    )


def _with_reason(state: JobState, reason: str) -> JobState:
    last = state.transitions[-1].model_copy(update={"reason": reason})
    return state.model_copy(update={"transitions": [*state.transitions[:-1], last]})
