"""Resume planning: the policy table of docs/orchestration.md as one pure function.

The orchestrator calls :meth:`ResumePolicyPlanner.plan` under the lock, after
re-reading the state, so the decision and the transition that follows can
never interleave with another holder's commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dpone_core import blockers
from dpone_core.lifecycle import JobStatus


class ResumePolicy(StrEnum):
    FAIL = "fail"
    RESUME = "resume"
    RESTART = "restart"


@dataclass(frozen=True)
class PreviousState:
    """What the planner needs to know about the run id's durable state."""

    status: JobStatus | None
    corrupt: bool = False
    #: For a ``running`` state: is the process that wrote it still alive?
    #: ``None`` means it cannot be told, which counts as alive (fail closed).
    holder_alive: bool | None = None
    #: The state belongs to this other process (same run id, different selector):
    #: no policy may take it over, not even ``restart``.
    other_process: str | None = None


@dataclass(frozen=True)
class ResumeDecision:
    admit: bool
    blocker: str | None
    message: str
    #: Start from scratch (new generation, checkpoint dropped) rather than continue.
    from_scratch: bool = False
    #: The attempt takes over a ``running`` state whose holder is gone.
    takeover: bool = False


def _blocked(code: str, message: str) -> ResumeDecision:
    return ResumeDecision(admit=False, blocker=code, message=message)


class ResumePolicyPlanner:
    """Decides whether a new attempt may start; no I/O, no clock."""

    def plan(self, previous: PreviousState, policy: ResumePolicy) -> ResumeDecision:
        if previous.corrupt:
            return _blocked(
                blockers.JOB_CORRUPT, "the job state file is unreadable; left untouched"
            )
        if previous.other_process is not None:
            return _blocked(
                blockers.JOB_RUN_ID_CONFLICT,
                f"this run id belongs to process {previous.other_process!r}",
            )
        status = previous.status
        if status is None:
            return ResumeDecision(admit=True, blocker=None, message="no previous state; first run")
        if status is JobStatus.COMMITTED:
            if policy is ResumePolicy.RESTART:
                return ResumeDecision(
                    admit=True,
                    blocker=None,
                    message="committed; restarting from scratch",
                    from_scratch=True,
                )
            return _blocked(blockers.JOB_ALREADY_COMMITTED, "this run id already committed")
        if status in (JobStatus.RUNNING, JobStatus.STARTED):
            if previous.holder_alive is not False:
                return _blocked(
                    blockers.JOB_ALREADY_RUNNING,
                    "this run id is running and its holder is alive"
                    if previous.holder_alive
                    else "this run id is running and its holder cannot be checked",
                )
            if policy is ResumePolicy.FAIL:
                return _blocked(
                    blockers.JOB_ALREADY_RUNNING,
                    f"{blockers.HOLDER_GONE} (crashed); "
                    "use --resume-policy resume to take over or restart to start from scratch",
                )
            restart = policy is ResumePolicy.RESTART
            return ResumeDecision(
                admit=True,
                blocker=None,
                message="holder is gone; taking over "
                + ("from scratch" if restart else "from the last checkpoint"),
                from_scratch=restart,
                takeover=True,
            )
        # failed or blocked
        if policy is ResumePolicy.FAIL:
            return _blocked(
                blockers.JOB_RESUME_REQUIRED,
                f"a previous attempt ended {status.value}; "
                "choose --resume-policy resume or restart",
            )
        restart = policy is ResumePolicy.RESTART
        return ResumeDecision(
            admit=True,
            blocker=None,
            message=f"previous attempt {status.value}; "
            + ("restarting from scratch" if restart else "resuming from the last checkpoint"),
            from_scratch=restart,
        )
