"""The policy table of DESIGN.md section 6, row by row, as a pure function."""

from __future__ import annotations

import pytest

from dpone_core import blockers
from dpone_core.lifecycle import JobStatus
from dpone_core.resume import PreviousState, ResumePolicy, ResumePolicyPlanner

FAIL, RESUME, RESTART = ResumePolicy.FAIL, ResumePolicy.RESUME, ResumePolicy.RESTART
RUN_CONTINUE = ("run", False, False)
RUN_SCRATCH = ("run", True, False)
TAKEOVER_CONTINUE = ("run", False, True)
TAKEOVER_SCRATCH = ("run", True, True)

# (previous state, policy) -> expected outcome: ("run", from_scratch, takeover) or a blocker code
TABLE = [
    (PreviousState(None), FAIL, RUN_CONTINUE),
    (PreviousState(None), RESUME, RUN_CONTINUE),
    (PreviousState(None), RESTART, RUN_CONTINUE),
    (PreviousState(JobStatus.COMMITTED), FAIL, blockers.JOB_ALREADY_COMMITTED),
    (PreviousState(JobStatus.COMMITTED), RESUME, blockers.JOB_ALREADY_COMMITTED),
    (PreviousState(JobStatus.COMMITTED), RESTART, RUN_SCRATCH),
    (PreviousState(JobStatus.RUNNING, holder_alive=True), FAIL, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=True), RESUME, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=True), RESTART, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=None), RESUME, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=None), RESTART, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=False), FAIL, blockers.JOB_ALREADY_RUNNING),
    (PreviousState(JobStatus.RUNNING, holder_alive=False), RESUME, TAKEOVER_CONTINUE),
    (PreviousState(JobStatus.RUNNING, holder_alive=False), RESTART, TAKEOVER_SCRATCH),
    (PreviousState(JobStatus.STARTED, holder_alive=False), RESUME, TAKEOVER_CONTINUE),
    (PreviousState(JobStatus.FAILED), FAIL, blockers.JOB_RESUME_REQUIRED),
    (PreviousState(JobStatus.FAILED), RESUME, RUN_CONTINUE),
    (PreviousState(JobStatus.FAILED), RESTART, RUN_SCRATCH),
    (PreviousState(JobStatus.BLOCKED), FAIL, blockers.JOB_RESUME_REQUIRED),
    (PreviousState(JobStatus.BLOCKED), RESUME, RUN_CONTINUE),
    (PreviousState(JobStatus.BLOCKED), RESTART, RUN_SCRATCH),
]
TABLE += [
    (PreviousState(s, other_process="orders"), p, blockers.JOB_RUN_ID_CONFLICT)
    for s in (JobStatus.COMMITTED, JobStatus.FAILED, JobStatus.RUNNING)
    for p in ResumePolicy
]
TABLE += [
    (PreviousState(s, corrupt=True), p, blockers.JOB_CORRUPT)
    for s in (None, JobStatus.COMMITTED)
    for p in ResumePolicy
]


@pytest.mark.parametrize(("previous", "policy", "expected"), TABLE)
def test_policy_table(previous: PreviousState, policy: ResumePolicy, expected: object) -> None:
    decision = ResumePolicyPlanner().plan(previous, policy)
    if isinstance(expected, str):
        assert not decision.admit
        assert decision.blocker == expected
    else:
        assert decision.admit and decision.blocker is None
        assert ("run", decision.from_scratch, decision.takeover) == expected
    assert decision.message


def test_dead_holder_under_fail_policy_says_the_holder_is_gone() -> None:
    decision = ResumePolicyPlanner().plan(
        PreviousState(JobStatus.RUNNING, holder_alive=False), FAIL
    )
    assert "gone" in decision.message
