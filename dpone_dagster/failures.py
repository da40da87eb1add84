"""How a step whose processes did not all commit ends: the text and the ``dagster.Failure``.

:class:`StepFailures` collects, while a step runs, every process that did not
commit (failed, blocked, skipped, invalid); :meth:`StepFailures.failure` turns
them into one ``dagster.Failure`` once every selected process had its turn:

* the description names each process, each blocker's message, the engine's
  operator action and what it means in Dagster (:data:`DAGSTER_HINTS`);
* the metadata is the first failed process's plus ``dpone/failures``;
* retries are disabled when every blocker is one a retry cannot clear
  (:data:`NON_RETRYABLE_BLOCKERS`), so a ``RetryPolicy`` is not wasted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dpone_core.blockers import ACTIONS
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_dagster.metadata import RESUME_POLICY_TAG, failures_metadata

__all__ = [
    "DAGSTER_HINTS",
    "NON_RETRYABLE_BLOCKERS",
    "StepFailures",
    "describe_failure",
    "failure_description",
    "operator_action",
]

#: Blockers a Dagster retry of the same step cannot clear; the failure disables retries.
NON_RETRYABLE_BLOCKERS = frozenset(
    {
        "job_state.already_committed",
        "job_state.resume_required",
        "job_state.corrupt",
        "job_state.run_id_conflict",
        "lock.corrupt",
    }
)

#: What to do about each blocker from Dagster (the engine's actions speak CLI).
DAGSTER_HINTS: dict[str, str] = {
    "lock.concurrent_run": (
        "In Dagster: an execution outside this run (another scheduler, or a run of another "
        "code location) holds the concurrency key. Give the asset's pool a limit "
        "(`dagster instance concurrency set <pool> 1`) so Dagster queues its own runs, and "
        "re-execute this run once the holder finished."
    ),
    "lock.corrupt": "In Dagster: fix the lock record as described, then re-execute this run.",
    "job_state.already_committed": (
        "In Dagster: this run id already committed. To load it again, launch the run with the "
        f"tag `{RESUME_POLICY_TAG}=restart` (or configure DponeResource(resume_policy='restart'))."
    ),
    "job_state.already_running": (
        "In Dagster: if the holder is gone, launch the run with the tag "
        f"`{RESUME_POLICY_TAG}=resume` to take over from the last checkpoint."
    ),
    "job_state.resume_required": (
        f"In Dagster: launch the run with the tag `{RESUME_POLICY_TAG}=resume` (continue from "
        "the last checkpoint) or `restart` (from scratch); a re-execution of the Dagster run "
        "that failed resumes its own run ids automatically."
    ),
    "job_state.corrupt": (
        "In Dagster: restore or move the state file aside as described, then re-execute."
    ),
    "run.not_passed": (
        "In Dagster: fix the cause, then re-execute the run from failure: it resumes from "
        "the last checkpoint and skips processes that already committed."
    ),
    "run.interrupted": (
        "In Dagster: re-execute the run from failure to resume from the last checkpoint."
    ),
}


def operator_action(code: str) -> str:
    """The engine's runbook action for ``code`` plus what it means in Dagster."""
    action = ACTIONS.get(code, "")
    hint = DAGSTER_HINTS.get(code, "")
    return " ".join(part for part in (action, hint) if part)


def describe_failure(label: str, report: OrchestratedRunReport) -> str:
    """One failed or blocked process: what happened, then what to do."""
    lines = [f"{label}: {report.status} (run id {report.run_id!r})"]
    for blocker in report.blocker_details:
        lines.append(f"- {blocker.code}: {redact(blocker.message)}")
        lines.append(f"  Action: {operator_action(blocker.code)}")
    return "\n".join(lines)


def failure_description(failures: list[str], total: int) -> str:
    """The ``dagster.Failure`` description for a step whose processes did not all commit."""
    head = (
        f"dpone: {len(failures)} of {total} selected process"
        f"{'es' if total != 1 else ''} did not commit."
    )
    return redact("\n\n".join([head, *failures]))


@dataclass
class StepFailures:
    """The processes of one step that did not commit, in the order they ran."""

    failed: set[dg.AssetKey] = field(default_factory=set)
    descriptions: list[str] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    first_metadata: dict[str, Any] | None = None
    retryable: bool = False

    def __bool__(self) -> bool:
        return bool(self.descriptions)

    def failed_upstream(self, deps: tuple[dg.AssetKey, ...]) -> list[str]:
        """Those of ``deps`` that did not commit in this step, as user strings."""
        return [key.to_user_string() for key in deps if key in self.failed]

    def skipped(self, asset_key: dg.AssetKey, label: str, upstream: list[str]) -> None:
        self.failed.add(asset_key)
        self.descriptions.append(
            f"{label}: skipped because upstream {', '.join(upstream)} did not commit"
        )
        self.summaries.append({"asset_key": asset_key.to_user_string(), "status": "skipped"})

    def invalid(self, asset_key: dg.AssetKey, label: str, error: Exception) -> None:
        """The manifest (or other input) is invalid: no retry helps."""
        self.failed.add(asset_key)
        self.descriptions.append(redact(f"{label}: invalid input: {error}"))
        self.summaries.append({"asset_key": asset_key.to_user_string(), "status": "invalid"})

    def did_not_commit(
        self,
        asset_key: dg.AssetKey,
        label: str,
        report: OrchestratedRunReport,
        metadata: dict[str, Any],
        *,
        invalid_input: bool,
    ) -> None:
        """A failed or blocked run; retryable unless invalid or blocked for good."""
        self.failed.add(asset_key)
        self.descriptions.append(describe_failure(label, report))
        if self.first_metadata is None:
            self.first_metadata = metadata
        self.summaries.append(
            {
                "asset_key": asset_key.to_user_string(),
                "status": report.status,
                "run_id": report.run_id,
                "blockers": list(report.blockers),
            }
        )
        if not invalid_input and not set(report.blockers) <= NON_RETRYABLE_BLOCKERS:
            self.retryable = True

    def failure(self, total: int) -> dg.Failure:
        """The step's ``dagster.Failure`` (call only when there were failures)."""
        return dg.Failure(
            description=failure_description(self.descriptions, total),
            metadata=failures_metadata(self.first_metadata, self.summaries),
            allow_retries=self.retryable,
        )
