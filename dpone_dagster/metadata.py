"""An orchestrated-run report as Dagster metadata, and the text of a failure.

Every key lives under ``dpone/`` (plus Dagster's own ``dagster/row_count``), so a
user can chart ``dpone/inserted_rows`` across materializations or alert on
``dpone/blockers``. docs/dagster.md lists every key; a test keeps the list and
this module in step (:data:`METADATA_KEYS`).

Everything that came from the engine is redacted there already; it passes
through :func:`dpone_core.redact.redact` once more here, because metadata is
stored in Dagster's event log for good.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from dpone_core.blockers import ACTIONS
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_dagster.partitions import PartitionWindow

__all__ = [
    "DAGSTER_HINTS",
    "METADATA_KEYS",
    "NON_RETRYABLE_BLOCKERS",
    "failure_description",
    "report_metadata",
]

#: Every metadata key a materialization or failure may carry, with its meaning.
METADATA_KEYS: dict[str, str] = {
    "dpone/status": "committed, failed or blocked (the orchestrated run's status)",
    "dpone/run_id": "the logical run id (names the job state file)",
    "dpone/attempt": "the job state's attempt number (counts across resumes)",
    "dpone/transitions": "the job state's whole lifecycle history",
    "dpone/blockers": "blocker codes (empty when committed)",
    "dpone/blocker_details": "each blocker's code, message and operator action",
    "dpone/lock_key": "the concurrency key the run locked",
    "dpone/resume_policy": "the resume policy the run was admitted under",
    "dpone/decision": "why the run was admitted or refused",
    "dpone/extracted_rows": "rows read from the source",
    "dpone/inserted_rows": "rows inserted into the target",
    "dpone/updated_rows": "rows updated in the target",
    "dpone/final_rows": "rows in the target after the load (transfers)",
    "dpone/duration_seconds": "wall time of the orchestrated run (lock to evidence)",
    "dpone/tries": "tries of the underlying run (retries inside the run)",
    "dpone/errors": "the last try's errors (redacted)",
    "dpone/load_id": "the load id recorded in the target's ledger (transfers)",
    "dpone/watermark_before": "the cursor watermark before the load (incremental)",
    "dpone/watermark_after": "the cursor watermark committed with the load (incremental)",
    "dpone/exit_code": "the command's exit code (commands)",
    "dpone/partition_key": "the Dagster partition key (partitioned assets)",
    "dpone/window_start": "the partition window's start, ISO-8601 (partitioned assets)",
    "dpone/window_end": "the partition window's end, ISO-8601, exclusive (partitioned assets)",
    "dpone/reused": "true when the run id had already committed in this Dagster run or a "
    "re-execution of it, so the process was not executed again",
    "dpone/report": "the Markdown runbook of the run",
    "dpone/report_json": "path of orchestrated_run.json (the latest invocation)",
    "dpone/report_md": "path of orchestrated_run.md (the latest invocation)",
    "dpone/attempt_report_json": "path of this invocation's immutable JSON report",
    "dpone/job_state_file": "path of <run id>.job_state.json",
    "dpone/output_dir": "the evidence directory",
    "dagster/row_count": "rows in the target after the load (= dpone/final_rows)",
    "dpone/failures": "failures only: asset key, status, run id and blockers of each process "
    "that did not commit",
}

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
        "tag `dpone/resume_policy=restart` (or configure DponeResource(resume_policy='restart'))."
    ),
    "job_state.already_running": (
        "In Dagster: if the holder is gone, launch the run with the tag "
        "`dpone/resume_policy=resume` to take over from the last checkpoint."
    ),
    "job_state.resume_required": (
        "In Dagster: launch the run with the tag `dpone/resume_policy=resume` (continue from "
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


def _text(value: Any) -> dg.MetadataValue[Any]:
    return dg.MetadataValue.text(redact(str(value)))


def _scalar(value: Any) -> dg.MetadataValue[Any]:
    """A watermark (any JSON scalar) as the closest metadata type."""
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str):
        return _text(value)
    return _text(json.dumps(redact_tree(value)))


def redact_tree(value: Any) -> Any:
    """``value`` (JSON-like) with every string redacted, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _json(value: Any) -> dg.MetadataValue[Any]:
    """JSON metadata whose every string went through the redactor."""
    return dg.MetadataValue.json(redact_tree(value))


def report_metadata(
    report: OrchestratedRunReport,
    *,
    window: PartitionWindow | None = None,
    reused: bool = False,
) -> dict[str, dg.MetadataValue[Any]]:
    """The ``dpone/`` metadata of one orchestrated run (see :data:`METADATA_KEYS`)."""
    md: dict[str, dg.MetadataValue[Any]] = {
        "dpone/status": _text(report.status),
        "dpone/run_id": _text(report.run_id),
    }
    state = report.job_state
    if state is not None:
        md["dpone/attempt"] = dg.MetadataValue.int(int(state.get("attempt", 0)))
        md["dpone/transitions"] = _json(state.get("transitions") or [])
    md["dpone/blockers"] = _json(list(report.blockers))
    md["dpone/blocker_details"] = _json([d.model_dump(mode="json") for d in report.blocker_details])
    md["dpone/lock_key"] = _text(report.lock_key)
    md["dpone/resume_policy"] = _text(report.resume_policy)
    md["dpone/decision"] = _text(report.decision)

    run_result = report.run_result  # None when the process did not run (refused)
    if run_result is not None:
        result: Mapping[str, Any] = run_result.get("result") or {}
        for name in ("extracted_rows", "inserted_rows", "updated_rows"):
            md[f"dpone/{name}"] = dg.MetadataValue.int(int(result.get(name) or 0))
        final_rows = result.get("final_rows")
        if final_rows is not None:
            md["dpone/final_rows"] = dg.MetadataValue.int(int(final_rows))
            md["dagster/row_count"] = dg.MetadataValue.int(int(final_rows))
        md["dpone/tries"] = dg.MetadataValue.int(len(run_result.get("attempts") or []))
        if result.get("errors"):
            md["dpone/errors"] = _json(list(result["errors"]))
        if result.get("load_id"):
            md["dpone/load_id"] = _text(result["load_id"])
        for name in ("watermark_before", "watermark_after"):
            if result.get(name) is not None:
                md[f"dpone/{name}"] = _scalar(result[name])
        if result.get("exit_code") is not None:
            md["dpone/exit_code"] = dg.MetadataValue.int(int(result["exit_code"]))
    md["dpone/duration_seconds"] = dg.MetadataValue.float(float(report.duration_seconds))
    if window is not None:
        md["dpone/partition_key"] = _text(window.key)
        md["dpone/window_start"] = _text(window.start)
        md["dpone/window_end"] = _text(window.end)
    md["dpone/reused"] = dg.MetadataValue.bool(reused)
    md["dpone/report"] = dg.MetadataValue.md(redact(report.to_markdown()))
    evidence = report.evidence
    for key, name in (
        ("report_json", "dpone/report_json"),
        ("report_md", "dpone/report_md"),
        ("attempt_report_json", "dpone/attempt_report_json"),
    ):
        if key in evidence:
            md[name] = dg.MetadataValue.path(redact(evidence[key]))
    md["dpone/job_state_file"] = dg.MetadataValue.path(redact(report.job_state_path))
    md["dpone/output_dir"] = dg.MetadataValue.path(redact(report.output_dir))
    return md


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


def failure_description(failures: Sequence[str], total: int) -> str:
    """The ``dagster.Failure`` description for a step whose processes did not all commit."""
    head = (
        f"dpone: {len(failures)} of {total} selected process"
        f"{'es' if total != 1 else ''} did not commit."
    )
    return redact("\n\n".join([head, *failures]))
