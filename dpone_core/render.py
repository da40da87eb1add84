"""Markdown views for the read-only commands (`dpone run`, `status`, `locks`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def run_result_markdown(result: dict[str, Any]) -> str:
    body = result.get("result") or {}
    lines = [
        f"# dpone run `{result.get('run_id')}`: {'PASSED' if result.get('passed') else 'FAILED'}",
        "",
        f"- process: `{result.get('process')}`",
        f"- rows: extracted {body.get('extracted_rows')}, inserted {body.get('inserted_rows')}, "
        f"updated {body.get('updated_rows')}, final {body.get('final_rows')}",
        f"- duration: {body.get('duration_seconds')} s",
        "",
        "## Attempts",
        "",
    ]
    for attempt in result.get("attempts") or []:
        error = attempt.get("error")
        lines.append(
            f"- try {attempt.get('attempt')}: {attempt.get('status')}"
            + (f": {error}" if error else "")
        )
    return "\n".join(lines) + "\n"


def job_state_markdown(state: dict[str, Any], location: str) -> str:
    lines = [
        f"# Job state `{state.get('run_id')}`: {state.get('status')}",
        "",
        f"- process: `{state.get('process')}` from `{state.get('manifest_path')}`",
        f"- lock key: `{state.get('lock_key')}`",
        f"- attempt {state.get('attempt')}, generation {state.get('generation')}, "
        f"resumable: {str(state.get('resumable')).lower()}",
        f"- started {state.get('started_at')}, updated {state.get('updated_at')}",
        f"- file: `{location}`",
        "",
        "## Transitions",
        "",
        "| attempt | status | at | reason |",
        "|---|---|---|---|",
    ]
    for t in state.get("transitions") or []:
        reason = (t.get("reason") or "").replace("|", "\\|")
        lines.append(f"| {t.get('attempt')} | {t.get('status')} | {t.get('at')} | {reason} |")
    details = state.get("blocker_details") or []
    if details:
        lines += ["", "## Blockers", ""]
        for d in details:
            lines += [f"- `{d.get('code')}`: {d.get('message')}", f"  - action: {d.get('action')}"]
    return "\n".join(lines) + "\n"


def locks_markdown(rows: Sequence[dict[str, Any]], lock_dir: str) -> str:
    lines = [f"# Locks in `{lock_dir}`", ""]
    if not rows:
        lines.append("No lock records.")
        return "\n".join(lines) + "\n"
    lines += ["| key | state | run id | pid | host | heartbeat |", "|---|---|---|---|---|---|"]
    for row in rows:
        h = row.get("holder") or {}
        lines.append(
            f"| `{row.get('key')}` | {row.get('state')} | {h.get('run_id', '')} | "
            f"{h.get('pid', '')} | {h.get('host', '')} | {h.get('heartbeat_at', '')} |"
        )
    return "\n".join(lines) + "\n"
