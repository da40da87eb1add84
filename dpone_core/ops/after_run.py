"""What ``dpone orchestrate run`` does after the run: register it, export its lineage.

Never raises for anything that went wrong here (an unreachable registry, a
conflicting entry, a lineage server that is down): the run has already ended and
its exit code stays its own. Each problem becomes one line for stderr.

- ``--registry``: the invocation's own report file (``evidence.invocation_report_json``,
  written before this runs) is registered, with its Markdown twin as the artifact
  ``orchestrated_run_md``; a refused invocation (nothing ran) is not registered.
- ``--lineage auto``: when an OpenLineage transport is configured, the run's events
  are built from the (registered, or else in-memory) entry and delivered, with the
  spool in front.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dpone_core.errors import DponeError

__all__ = ["register_and_export"]


def _report_file(data: dict[str, Any]) -> str | None:
    path = (data.get("evidence") or {}).get("invocation_report_json")
    return path if path and os.path.isfile(path) else None


def _artifacts(report_path: str) -> dict[str, Any]:
    from dpone_core.ops.artifacts import describe_file

    markdown = str(Path(report_path).with_suffix(".md"))
    if not os.path.isfile(markdown):
        return {}
    return {"orchestrated_run_md": describe_file(markdown, what="orchestrated_run_md")}


def _register(
    report_path: str, registry: str | None, schema: str | None, lines: list[str]
) -> tuple[Any, str | None]:
    """(entry, where it is stored) — registered when ``registry``, else built in memory."""
    from dpone_core.ops.registration import entry_for_result, parent_from
    from dpone_core.ops.registry_select import is_postgres_registry, open_registry

    entry, _ = entry_for_result(
        report_path, artifacts=_artifacts(report_path), parent=parent_from(None, os.environ)
    )
    if entry is None or registry is None:
        return entry, None
    store = open_registry(registry, schema=schema if is_postgres_registry(registry) else None)
    try:
        registration = store.register(entry)
    finally:
        store.close()
    verb = "registered" if registration.created else "already registered"
    lines.append(f"run {entry.run_id} attempt {entry.attempt} {verb}: {registration.location}")
    return registration.entry, registration.location


def _lineage_wanted(lineage: str) -> bool:
    from dpone_core.ops.lineage_emit import lineage_configured

    return lineage != "off" and lineage_configured(os.environ, cwd=Path.cwd(), home=Path.home())


def _export(entry: Any, location: str | None, spool_dir: str, lines: list[str]) -> None:
    from dpone_core.ops.lineage_export import ExportRequest, export_lineage

    export = export_lineage(
        ExportRequest(entry=entry, entry_location=location), spool_dir=spool_dir, emit=True
    )
    delivery = export.delivery
    if delivery is None:
        return
    if delivery.error is not None:
        lines.append(
            f"lineage not delivered ({delivery.error}); {delivery.waiting} event(s) kept in "
            f"{delivery.spool_dir}, sent by the next delivery or `dpone ops lineage-flush`"
        )
    else:
        lines.append(
            f"lineage: {delivery.delivered} event(s) sent via {delivery.transport}"
            + (f" (and {delivery.flushed} spooled earlier)" if delivery.flushed else "")
        )


def register_and_export(
    report: Any, *, registry: str | None, schema: str | None, lineage: str, spool_dir: str
) -> list[str]:
    """Register and/or export the run ``report`` describes; the lines to print on stderr."""
    lines: list[str] = []
    if registry is None and not _lineage_wanted(lineage):
        return lines  # the default path: nothing configured, nothing read or built
    data = report.to_dict()
    if data.get("run_result") is None:
        if registry is not None:
            lines.append(f"run {data.get('run_id')} not registered: the invocation ran nothing")
        return lines
    report_path = _report_file(data)
    if report_path is None:
        lines.append(f"run {data.get('run_id')} not registered: its report file is missing")
        return lines
    try:
        entry, location = _register(report_path, registry, schema, lines)
        if entry is not None and _lineage_wanted(lineage):
            _export(entry, location, spool_dir, lines)
    except DponeError as exc:
        lines.append(f"run registry/lineage: {exc}")
    except Exception as exc:  # the run has ended; nothing here may change its exit code
        lines.append(f"run registry/lineage: {type(exc).__name__}: {exc}")
    return lines
