"""Markdown of ``dpone ops`` outputs (pure; JSON is the models' own dump)."""

from __future__ import annotations

from typing import Any

from dpone_core.ops.entry import RegistryEntry
from dpone_core.text import escape_control

__all__ = ["delivery_markdown", "entries_markdown", "export_markdown", "registration_markdown"]


def _cell(value: object) -> str:
    return escape_control("" if value is None else str(value)).replace("|", "\\|")


def _entry_lines(entry: RegistryEntry) -> list[str]:
    rows = entry.rows
    lines = [
        f"- run id: `{_cell(entry.run_id)}` (attempt {entry.attempt})",
        f"- process: `{_cell(entry.process)}`; status: **{entry.status}**",
        f"- started: {_cell(entry.started_at)}; finished: {_cell(entry.finished_at)}",
        f"- rows: extracted {_cell(rows.extracted)}, inserted {_cell(rows.inserted)}, "
        f"updated {_cell(rows.updated)}, final {_cell(rows.final)}",
        f"- run result: `{_cell(entry.run_result.path)}` (sha256 {entry.run_result.sha256})",
    ]
    for name, artifact in entry.artifacts.items():
        lines.append(
            f"- artifact `{_cell(name)}`: `{_cell(artifact.path)}` ({artifact.size} bytes, "
            f"sha256 {artifact.sha256})"
        )
    if entry.parent is not None:
        lines.append(
            f"- parent run: {_cell(entry.parent.namespace)}/{_cell(entry.parent.name)}/"
            f"{entry.parent.run_id}"
        )
    lines += [f"- error: {_cell(e)}" for e in entry.errors]
    return lines


def registration_markdown(data: dict[str, Any], entry: RegistryEntry | None) -> str:
    if entry is None:
        return f"# Run registry\n\nNothing registered: {_cell(data.get('reason'))}\n"
    verb = "Registered" if data.get("created") else "Already registered (identical)"
    lines = ["# Run registry", "", f"{verb} at `{_cell(data.get('location'))}`", ""]
    return "\n".join([*lines, *_entry_lines(entry)]) + "\n"


def entries_markdown(entries: list[RegistryEntry], where: str, problems: list[str]) -> str:
    lines = [f"# Run registry ({_cell(where)})", ""]
    if not entries:
        lines.append("No entries.")
    else:
        lines += [
            "| run id | attempt | process | status | started | finished | rows written |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in entries:
            lines.append(
                f"| {_cell(e.run_id)} | {e.attempt} | {_cell(e.process)} | {e.status} | "
                f"{_cell(e.started_at)} | {_cell(e.finished_at)} | {_cell(e.rows.written)} |"
            )
    lines += ["", *[f"- unreadable: {_cell(p)}" for p in problems]] if problems else []
    return "\n".join(lines) + "\n"


def delivery_markdown(delivery: dict[str, Any] | None) -> list[str]:
    if delivery is None:
        return ["- delivery: none (no OpenLineage transport configured, or --no-emit)"]
    lines = [
        f"- transport: {_cell(delivery['transport'])}",
        f"- delivered: {delivery['delivered']}; earlier spooled events sent: "
        f"{delivery['flushed']}; kept in the spool: {delivery['spooled']} "
        f"(waiting there now: {delivery['waiting']}, `{_cell(delivery['spool_dir'])}`)",
    ]
    if delivery.get("error"):
        lines.append(f"- delivery error: {_cell(delivery['error'])}")
    return lines


def export_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# OpenLineage export",
        "",
        f"- run id: `{_cell(data['run_id'])}`; OpenLineage run id: `{data['openlineage_run_id']}`",
        f"- job: `{_cell(data['job']['namespace'])}` / `{_cell(data['job']['name'])}`",
    ]
    for event in data["events"]:
        ins = ", ".join(f"{d['namespace']} {d['name']}" for d in event.get("inputs", []))
        outs = ", ".join(f"{d['namespace']} {d['name']}" for d in event.get("outputs", []))
        lines.append(
            f"- {event['eventType']} at {event['eventTime']}: inputs [{_cell(ins)}], "
            f"outputs [{_cell(outs)}]"
        )
    lines += delivery_markdown(data.get("delivery"))
    lines += [f"- warning: {_cell(w)}" for w in data.get("warnings", [])]
    return "\n".join(lines) + "\n"
