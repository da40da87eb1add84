"""Markdown views for the read-only commands (`dpone run`, `status`, `locks`).

Every value shown comes from users or schedulers (run ids, keys, errors), so
each passes through :func:`escape_control` (re-exported here): a newline or an
ESC in a run id must not forge a line or drive the operator's terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dpone_core.text import escape_control

__all__ = [
    "escape_control",
    "job_state_markdown",
    "locks_markdown",
    "pruned_markdown",
    "run_result_markdown",
]


def _c(value: Any) -> str:
    """``value`` as one line of text: control characters escaped."""
    return escape_control(str(value))


def run_result_markdown(result: dict[str, Any]) -> str:
    body = result.get("result") or {}
    verdict = "PASSED" if result.get("passed") else "FAILED"
    lines = [
        f"# dpone run `{_c(result.get('run_id'))}`: {verdict}",
        "",
        f"- process: `{_c(result.get('process'))}`",
        f"- rows: extracted {_c(body.get('extracted_rows'))}, "
        f"inserted {_c(body.get('inserted_rows'))}, "
        f"updated {_c(body.get('updated_rows'))}, final {_c(body.get('final_rows'))}",
        f"- duration: {_c(body.get('duration_seconds'))} s",
        "",
        "## Attempts",
        "",
    ]
    for attempt in result.get("attempts") or []:
        error = attempt.get("error")
        lines.append(
            f"- try {_c(attempt.get('attempt'))}: {_c(attempt.get('status'))}"
            + (f": {_c(error)}" if error else "")
        )
    return "\n".join(lines) + "\n"


def job_state_markdown(state: dict[str, Any], location: str) -> str:
    lines = [
        f"# Job state `{_c(state.get('run_id'))}`: {_c(state.get('status'))}",
        "",
        f"- process: `{_c(state.get('process'))}` from `{_c(state.get('manifest_path'))}`",
        f"- lock key: `{_c(state.get('lock_key'))}`",
        f"- attempt {_c(state.get('attempt'))}, generation {_c(state.get('generation'))}, "
        f"resumable: {str(state.get('resumable')).lower()}",
        f"- started {_c(state.get('started_at'))}, updated {_c(state.get('updated_at'))}",
        f"- file: `{_c(location)}`",
        "",
        "## Transitions",
        "",
        "| attempt | status | at | reason |",
        "|---|---|---|---|",
    ]
    for t in state.get("transitions") or []:
        reason = (t.get("reason") or "").replace("|", "\\|")
        cells = (t.get("attempt"), t.get("status"), t.get("at"), reason)
        lines.append("| " + " | ".join(_c(cell) for cell in cells) + " |")
    details = state.get("blocker_details") or []
    if details:
        lines += ["", "## Blockers", ""]
        for d in details:
            lines += [
                f"- `{_c(d.get('code'))}`: {_c(d.get('message'))}",
                f"  - action: {_c(d.get('action'))}",
            ]
    return "\n".join(lines) + "\n"


def locks_markdown(rows: Sequence[dict[str, Any]], lock_dir: str) -> str:
    lines = [f"# Locks in `{_c(lock_dir)}`", ""]
    if not rows:
        lines.append("No lock records.")
        return "\n".join(lines) + "\n"
    lines += ["| key | state | run id | pid | host | heartbeat |", "|---|---|---|---|---|---|"]
    for row in rows:
        h = row.get("holder") or {}
        lines.append(
            f"| `{_c(row.get('key'))}` | {_c(row.get('state'))} | {_c(h.get('run_id', ''))} | "
            f"{_c(h.get('pid', ''))} | {_c(h.get('host', ''))} | {_c(h.get('heartbeat_at', ''))} |"
        )
    return "\n".join(lines) + "\n"


def pruned_markdown(keys: Sequence[str], lock_dir: str) -> str:
    lines = [f"# Pruned in `{_c(lock_dir)}`", ""]
    if not keys:
        lines.append("Nothing to prune: every key with files is held, unreadable or in use.")
    lines += [f"- `{_c(key)}`" for key in keys]
    return "\n".join(lines) + "\n"
