"""Report a run back to Dagster when Dagster Pipes launched dpone.

The Dagster handoff snippet (and anyone using ``PipesSubprocessClient``) starts
``dpone orchestrate run`` with ``DAGSTER_PIPES_CONTEXT`` set. dpone then reports
its outcome as the materialization's ``dpone/*`` metadata (the keys of
:mod:`dpone_core.metadata_keys`, the same an asset built by ``dpone_dagster``
carries) and, when the run did not commit, logs why before exiting 1, which
fails the Dagster step. The engine stays Dagster-free: the CLI calls this through
its report hooks (:mod:`dpone_core.report_hooks`, entry point ``dpone.report_hooks``),
which it looks up only when ``DAGSTER_PIPES_CONTEXT`` is set.
"""

from __future__ import annotations

import os
from typing import Any

from dpone_core import metadata_keys as keys
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport

__all__ = ["PIPES_CONTEXT_ENV", "launched_by_dagster_pipes", "report_to_dagster"]

#: Set by Dagster Pipes in the environment of the process it launches.
PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"


def launched_by_dagster_pipes() -> bool:
    return bool(os.environ.get(PIPES_CONTEXT_ENV))


def _typed(kind: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "raw_value": value}


def _path(value: str) -> dict[str, Any]:
    """A path as Dagster can use it: absolute (dpone's working directory is not Dagster's)."""
    return _typed("path", redact(os.path.abspath(value)))


def pipes_metadata(report: OrchestratedRunReport) -> dict[str, dict[str, Any]]:
    """The report as typed Pipes metadata (every string redacted once more)."""
    md: dict[str, dict[str, Any]] = {
        keys.STATUS: _typed("text", report.status),
        keys.RUN_ID: _typed("text", redact(report.run_id)),
        keys.LOCK_KEY: _typed("text", redact(report.lock_key)),
        keys.RESUME_POLICY: _typed("text", report.resume_policy),
        keys.DECISION: _typed("text", redact(report.decision)),
        keys.BLOCKERS: _typed("json", list(report.blockers)),
        keys.DURATION_SECONDS: _typed("float", round(report.duration_seconds, 3)),
        keys.JOB_STATE_FILE: _path(report.job_state_path),
        keys.OUTPUT_DIR: _path(report.output_dir),
    }
    if report.job_state is not None:
        md[keys.ATTEMPT] = _typed("int", int(report.job_state.get("attempt", 0)))
    invocation = report.evidence.get("invocation_report_json")
    if invocation:
        md[keys.INVOCATION_REPORT_JSON] = _path(invocation)
    result = (report.run_result or {}).get("result") or {}
    for key, field in (
        (keys.EXTRACTED_ROWS, "extracted_rows"),
        (keys.INSERTED_ROWS, "inserted_rows"),
        (keys.UPDATED_ROWS, "updated_rows"),
        (keys.FINAL_ROWS, "final_rows"),
    ):
        if isinstance(result.get(field), int):
            md[key] = _typed("int", result[field])
    if isinstance(result.get("final_rows"), int):
        md[keys.ROW_COUNT] = _typed("int", result["final_rows"])
    return md


def report_to_dagster(report: OrchestratedRunReport) -> None:
    """Send the outcome through Dagster Pipes (no-op when Dagster did not launch dpone)."""
    if not launched_by_dagster_pipes():
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        if report.passed:
            pipes.report_asset_materialization(metadata=pipes_metadata(report))
            return
        why = "; ".join(f"{d.code}: {d.message}" for d in report.blocker_details)
        errors = ((report.run_result or {}).get("result") or {}).get("errors") or []
        pipes.log.error(
            redact(f"dpone run {report.run_id} {report.status}: {why or '; '.join(errors)}")
        )
