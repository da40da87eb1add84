"""Every blocker code the engine can report, with the operator action for it.

Reports list blocker codes (stable strings users grep and alert on) and a
details entry per code whose ``action`` turns the Markdown report into a
runbook. docs/orchestration.md documents the same catalogue (a test keeps
them in step).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

LOCK_CONCURRENT_RUN = "lock.concurrent_run"
LOCK_CORRUPT = "lock.corrupt"
JOB_ALREADY_COMMITTED = "job_state.already_committed"
JOB_ALREADY_RUNNING = "job_state.already_running"
JOB_RESUME_REQUIRED = "job_state.resume_required"
JOB_CORRUPT = "job_state.corrupt"
JOB_RUN_ID_CONFLICT = "job_state.run_id_conflict"
JOB_WRITE_CONFLICT = "job_state.write_conflict"
JOB_RESTART_WOULD_DUPLICATE = "job_state.restart_would_duplicate"
RUN_NOT_PASSED = "run.not_passed"
RUN_INTERRUPTED = "run.interrupted"

ACTIONS: dict[str, str] = {
    LOCK_CONCURRENT_RUN: (
        "Another live execution holds this concurrency key. Wait for it to finish "
        "(`dpone orchestrate locks` shows the holder) and re-run; do not delete its lock files."
    ),
    LOCK_CORRUPT: (
        "The lock holder record is unreadable. Make sure no run uses the key, inspect the file "
        "named in the message, then move it aside and re-run."
    ),
    JOB_ALREADY_COMMITTED: (
        "This run id already committed; nothing to do. To load it again from scratch re-run "
        "with `--resume-policy restart`."
    ),
    JOB_ALREADY_RUNNING: (
        "The job state says this run id is running. If its holder is alive, wait. If the "
        "report says the holder is gone, re-run with `--resume-policy resume`: it takes over "
        "from the last checkpoint and never publishes a load twice. Use `restart` (from "
        "scratch) only to discard the previous attempt's work."
    ),
    JOB_RESUME_REQUIRED: (
        "A previous attempt of this run id failed or was blocked. Fix the cause shown in its "
        "errors, then re-run with `--resume-policy resume` (continues, never publishes a load "
        "twice); `restart` starts from scratch."
    ),
    JOB_CORRUPT: (
        "The job state file is unreadable and was left untouched. Inspect it (and the "
        "evidence under the output dir); restore or move it aside, then re-run."
    ),
    JOB_RUN_ID_CONFLICT: (
        "This run id already belongs to another process. Run ids are "
        "per process: pass a different --run-id (the default, <manifest>.<selector>_<date>, is "
        "unique per manifest and process)."
    ),
    JOB_WRITE_CONFLICT: (
        "Another invocation changed this run id's job state first (it used another "
        "concurrency key or lock directory, or this invocation lost its lock), so nothing was "
        "overwritten. Read `dpone orchestrate status --run-id <id>` to see who holds the run, "
        "and give every scheduler of one run id the same concurrency key and backend."
    ),
    JOB_RESTART_WOULD_DUPLICATE: (
        "A restart from scratch would append rows the previous attempt already published. "
        "Re-run with `--resume-policy resume` (safe: the published load is recognised and not "
        "repeated). To load the rows again on purpose, add `--allow-duplicate-load`."
    ),
    RUN_NOT_PASSED: (
        "The process ran and did not pass. Read the attempts' errors below, fix the cause, then "
        "re-run with `--resume-policy resume`."
    ),
    RUN_INTERRUPTED: (
        "The run was cancelled by a signal (a scheduler timeout or an operator). Re-run with "
        "`--resume-policy resume` when ready."
    ),
}


#: How a ``job_state.already_running`` refusal says nobody holds the run any more.
HOLDER_GONE = "this run id is marked running but its holder is gone"

#: Refusals that leave the data as it was and need nobody: the run committed already,
#: or another live execution holds it. Schedulers that can tell "skipped" from
#: "failed" (Dagster) report these as observations, not failures.
LEAVE_DATA_AS_IT_WAS = frozenset({JOB_ALREADY_COMMITTED, LOCK_CONCURRENT_RUN, JOB_ALREADY_RUNNING})


def leaves_data_as_it_was(details: list[BlockerDetail]) -> bool:
    """Whether a refusal needs nobody (see :data:`LEAVE_DATA_AS_IT_WAS`).

    ``already_running`` qualifies only while the holder is alive (or cannot be
    checked): a holder that is gone needs an operator to resume.
    """
    return bool(details) and all(
        d.code in LEAVE_DATA_AS_IT_WAS and not d.message.startswith(HOLDER_GONE)
        for d in details
    )


class BlockerDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    action: str


def detail(code: str, message: str) -> BlockerDetail:
    return BlockerDetail(code=code, message=message, action=ACTIONS[code])
