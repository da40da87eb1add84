"""Every (from, to) pair of the lifecycle: legal ones pass, all others raise."""

from __future__ import annotations

import itertools

import pytest

from dpone_core.lifecycle import IllegalTransition, JobStatus, check_transition

S = JobStatus
LEGAL_WITHIN = {
    (S.STARTED, S.RUNNING),
    (S.STARTED, S.BLOCKED),
    (S.RUNNING, S.COMMITTED),
    (S.RUNNING, S.FAILED),
}
ADMIT_FROM = {None, S.FAILED, S.BLOCKED, S.COMMITTED, S.RUNNING}


@pytest.mark.parametrize(("old", "new"), list(itertools.product([None, *S], list(S))))
def test_within_attempt(old: JobStatus | None, new: JobStatus) -> None:
    if (old, new) in LEGAL_WITHIN:
        check_transition(old, new, new_attempt=False)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new, new_attempt=False)


@pytest.mark.parametrize(("old", "new"), list(itertools.product([None, *S], list(S))))
def test_admission(old: JobStatus | None, new: JobStatus) -> None:
    if new is S.STARTED and old in ADMIT_FROM:
        check_transition(old, new, new_attempt=True)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new, new_attempt=True)
