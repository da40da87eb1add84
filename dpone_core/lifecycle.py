"""The job-state lifecycle (docs/orchestration.md, "Lifecycle") as data plus one check.

Kept free of I/O so that every legal and illegal transition can be tested
exhaustively; the store calls :func:`check_transition` before every write, so
an illegal transition is a bug that raises instead of reaching a file.
"""

from __future__ import annotations

from enum import StrEnum

from dpone_core.errors import IllegalTransition as IllegalTransition


class JobStatus(StrEnum):
    STARTED = "started"
    RUNNING = "running"
    COMMITTED = "committed"
    FAILED = "failed"
    BLOCKED = "blocked"


#: Statuses from which a new attempt may be admitted (subject to the resume policy).
ADMISSIBLE_FROM: frozenset[JobStatus | None] = frozenset(
    {None, JobStatus.FAILED, JobStatus.BLOCKED, JobStatus.COMMITTED, JobStatus.RUNNING}
)

#: Moves within one attempt.
_WITHIN_ATTEMPT: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.STARTED: frozenset({JobStatus.RUNNING, JobStatus.BLOCKED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMMITTED, JobStatus.FAILED}),
    JobStatus.COMMITTED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.BLOCKED: frozenset(),
}

RESUMABLE: frozenset[JobStatus] = frozenset({JobStatus.FAILED, JobStatus.BLOCKED})


def check_transition(previous: JobStatus | None, new: JobStatus, *, new_attempt: bool) -> None:
    """Raise :class:`IllegalTransition` unless ``previous -> new`` is allowed.

    ``new_attempt`` marks the admission of an attempt, which must land on
    ``started``; every other move stays inside the current attempt.
    """
    if new_attempt:
        if new is not JobStatus.STARTED or previous not in ADMISSIBLE_FROM:
            raise IllegalTransition(f"cannot admit an attempt from {previous} to {new}")
        return
    if previous is None or new not in _WITHIN_ATTEMPT[previous]:
        raise IllegalTransition(f"illegal transition {previous} -> {new}")
