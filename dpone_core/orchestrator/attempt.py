"""Steps 2 and 3 of an admitted attempt: execute it, then end it (one way to end).

:func:`execute` runs the executor once and turns whatever happened (a result,
an exception, a signal, a lost lock) into an :class:`AttemptEnd`.
:func:`end_attempt` records that end in the job state (``committed`` or
``failed``), writes the report, and re-raises what the caller must see.
If the state write is refused (the state changed behind the attempt's back,
or the key's lease was lost), the state is left as the other writer made it
and the report says ``blocked`` with ``job_state.write_conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dpone_core import blockers
from dpone_core.backends.protocol import HeldLock
from dpone_core.blockers import BlockerDetail, detail
from dpone_core.errors import DponeUsageError, JobStateConflict
from dpone_core.executor.request import RunRequest
from dpone_core.job_state import JobState, advance
from dpone_core.lifecycle import JobStatus
from dpone_core.orchestrator.interrupts import InvalidInputAfterAdmission, OrchestrationInterrupted
from dpone_core.orchestrator.invocation import Invocation
from dpone_core.orchestrator.request import RunExecutor
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport

__all__ = ["AttemptEnd", "end_attempt", "execute"]


@dataclass(frozen=True)
class AttemptEnd:
    """How an admitted attempt ended, before it is recorded."""

    passed: bool
    details: list[BlockerDetail] = field(default_factory=list)
    reason: str | None = None
    run_result: dict[str, Any] | None = None
    #: Raised (wrapped with the report) once the end is recorded.
    usage_error: DponeUsageError | None = None
    interrupt: BaseException | None = None


def _failed(code: str, message: str, reason: str, **extra: Any) -> AttemptEnd:
    return AttemptEnd(passed=False, details=[detail(code, message)], reason=reason, **extra)


def execute(inv: Invocation, state: JobState, lock: HeldLock, executor: RunExecutor) -> AttemptEnd:
    """Run the process once for the admitted ``state``; never raises for the run's own faults."""
    try:
        outcome = executor(_executor_request(inv, state))
    except DponeUsageError as exc:
        # Found only against the database (a key or cursor column that does not
        # exist): the attempt failed, and the caller learns it was invalid input.
        reason = redact(f"the manifest does not match the database: {exc}")
        return _failed(blockers.RUN_NOT_PASSED, reason, reason, usage_error=exc)
    except Exception as exc:  # the executor crashed: a failed attempt, not a crash of ours
        reason = redact(f"{type(exc).__name__}: {exc}")
        return _failed(blockers.RUN_NOT_PASSED, f"the run raised {reason}", reason)
    except BaseException as exc:
        # A lock backend that interrupted the run because it lost the lock says why.
        reason = redact(lock.lost_reason or _describe_interrupt(exc))
        message = f"the run was interrupted: {reason}"
        return _failed(blockers.RUN_INTERRUPTED, message, reason, interrupt=exc)
    result = outcome.to_dict()
    if outcome.passed:
        return AttemptEnd(passed=True, run_result=result)
    errors = (result.get("result") or {}).get("errors") or []
    reason = redact("; ".join(str(e) for e in errors) or "the run did not pass")
    return _failed(blockers.RUN_NOT_PASSED, reason, reason, run_result=result)


def end_attempt(inv: Invocation, state: JobState, end: AttemptEnd) -> OrchestratedRunReport:
    """Record ``end`` in the job state and the evidence; the one way an attempt ends."""
    checkpoint = ((end.run_result or {}).get("result") or {}).get("checkpoint")
    ended = advance(
        state,
        JobStatus.COMMITTED if end.passed else JobStatus.FAILED,
        reason=end.reason,
        run_result=end.run_result,
        checkpoint=checkpoint,
        blocker_details=end.details,
    )
    try:
        inv.store.save(ended)
    except JobStateConflict as exc:
        outcome = "passed" if end.passed else f"did not pass ({end.reason})"
        message = redact(f"the run {outcome}, but its end could not be recorded: {exc}")
        details = [detail(blockers.JOB_WRITE_CONFLICT, message), *end.details]
        report = inv.finish("blocked", details, inv.peek_state(), end.run_result)
    else:
        status = "committed" if end.passed else "failed"
        report = inv.finish(status, end.details, ended, end.run_result)
    if end.usage_error is not None:
        raise InvalidInputAfterAdmission(end.usage_error, report) from end.usage_error
    if end.interrupt is not None:
        raise OrchestrationInterrupted(report, end.interrupt) from end.interrupt
    return report


def _executor_request(inv: Invocation, state: JobState) -> RunRequest:
    """The executor's request: the caller's, plus what this attempt resumes from."""
    return RunRequest.model_validate(
        {
            **inv.request.model_dump(
                include=set(RunRequest.model_fields),
                exclude={"job_attempt", "generation", "checkpoint"},
            ),
            "job_attempt": state.attempt,
            "generation": state.generation,
            "checkpoint": state.checkpoint,
        }
    )


def _describe_interrupt(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
