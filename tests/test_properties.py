"""Property tests (hypothesis) for the pure decisions: lifecycle, resume policy, revisions.

The example tables (tests/test_lifecycle.py, tests/test_resume.py) pin each cell;
these check the invariants over generated histories and inputs, including
sequences no example lists.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dpone_core import blockers
from dpone_core.errors import IllegalTransition, JobStateConflict
from dpone_core.job_state import AttemptHolder, JobState, Revision, check_successor
from dpone_core.lifecycle import JobStatus, check_transition
from dpone_core.resume import PreviousState, ResumePolicy, ResumePolicyPlanner

S = JobStatus
#: DESIGN.md section 6, written again independently of dpone_core.lifecycle.
WITHIN = {(S.STARTED, S.RUNNING), (S.STARTED, S.BLOCKED), (S.RUNNING, S.COMMITTED),
          (S.RUNNING, S.FAILED)}  # fmt: skip
ADMIT_FROM = {None, S.FAILED, S.BLOCKED, S.COMMITTED, S.RUNNING}

statuses = st.sampled_from(list(S))
moves = st.lists(st.tuples(statuses, st.booleans()), max_size=30)


def _legal(previous: JobStatus | None, new: JobStatus, new_attempt: bool) -> bool:
    if new_attempt:
        return new is S.STARTED and previous in ADMIT_FROM
    return (previous, new) in WITHIN


@given(moves)
def test_check_transition_accepts_exactly_the_design_table(
    seq: list[tuple[JobStatus, bool]],
) -> None:
    current: JobStatus | None = None
    for new, new_attempt in seq:
        try:
            check_transition(current, new, new_attempt=new_attempt)
        except IllegalTransition:
            assert not _legal(current, new, new_attempt)
        else:
            assert _legal(current, new, new_attempt)
            current = new


def _walk(draw: st.DrawFn) -> list[JobStatus]:
    """A legal history: attempts admitted from ends the lifecycle allows."""
    history: list[JobStatus] = []
    for _ in range(draw(st.integers(1, 4))):
        history.append(S.STARTED)
        if draw(st.booleans()):
            history.append(S.BLOCKED)
            continue
        history.append(S.RUNNING)
        history.append(draw(st.sampled_from([S.COMMITTED, S.FAILED])))
    if draw(st.booleans()):  # end mid-attempt, as a crashed holder leaves it
        history = history[: draw(st.integers(1, len(history)))]
    return history


histories = st.composite(lambda draw: _walk(draw))()


def _state(history: list[JobStatus]) -> JobState:
    attempt = 0
    transitions = []
    for status in history:
        attempt += status is S.STARTED
        transitions.append({"status": status, "at": "2026-11-30T00:00:00.000000Z",
                            "attempt": attempt})  # fmt: skip
    return JobState.model_validate(
        {
            "run_id": "r",
            "process": "p",
            "manifest_path": "m.yml",
            "selector": "p",
            "lock_key": "k",
            "status": history[-1],
            "started_at": "2026-11-30T00:00:00.000000Z",
            "updated_at": "2026-11-30T00:00:00.000000Z",
            "attempt": max(attempt, 1),
            "transitions": transitions,
            "output_dir": "o",
            "holder": AttemptHolder(pid=1, host="h").model_dump(),
        }
    )


@given(histories, st.data())
def test_a_store_accepts_exactly_the_legal_extensions_of_what_it_read(
    history: list[JobStatus], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(history) - 1))
    stored = Revision.of(_state(history[:cut])) if cut else Revision(None, 0)
    check_successor(stored, _state(history), run_id="r")  # every legal extension passes
    # The same length, or a history that rewrote the last stored transition, never does.
    same = Revision.of(_state(history))
    try:
        check_successor(same, _state(history), run_id="r")
    except JobStateConflict:
        pass
    else:
        raise AssertionError("a state that adds nothing was accepted")
    if cut:
        other = next(s for s in S if s.value != stored.status)
        try:
            check_successor(Revision(other.value, cut), _state(history), run_id="r")
        except JobStateConflict:
            pass
        else:
            raise AssertionError("a state that does not extend the stored one was accepted")


previous_states = st.builds(
    PreviousState,
    status=st.none() | statuses,
    corrupt=st.booleans(),
    holder_alive=st.none() | st.booleans(),
    other_process=st.none() | st.just("other"),
)
policies = st.sampled_from(list(ResumePolicy))


@given(previous_states, policies)
def test_planner_invariants(previous: PreviousState, policy: ResumePolicy) -> None:
    decision = ResumePolicyPlanner().plan(previous, policy)
    assert decision.admit == (decision.blocker is None)
    assert decision.blocker is None or decision.blocker in blockers.ACTIONS
    if previous.corrupt:
        assert decision.blocker == blockers.JOB_CORRUPT
        return
    if previous.other_process is not None:
        assert decision.blocker == blockers.JOB_RUN_ID_CONFLICT  # never taken over
        return
    live_or_unknown = previous.holder_alive is not False
    if previous.status in (S.RUNNING, S.STARTED) and live_or_unknown:
        assert decision.blocker == blockers.JOB_ALREADY_RUNNING  # a live holder is never replaced
    if policy is ResumePolicy.FAIL:
        assert decision.admit == (previous.status is None)
    if decision.takeover:
        assert previous.status in (S.RUNNING, S.STARTED) and previous.holder_alive is False
        assert policy is not ResumePolicy.FAIL
    if decision.admit and previous.status is not None:
        assert decision.from_scratch == (policy is ResumePolicy.RESTART)
    if previous.status is S.COMMITTED:
        assert decision.admit == (policy is ResumePolicy.RESTART)
