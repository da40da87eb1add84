"""A committed Dagster run in the run registry, and the link to its entry in the metadata.

With ``DponeResource(registry=...)`` a run Dagster committed is registered like
``dpone orchestrate run --registry`` registers its runs (docs/operations.md), so
the registry holds every scheduler's runs, and the materialization links to the
entry (``dpone/registry_entry``). Registering never fails the step: the data is
loaded and its state committed; a registry problem is a warning in the run's log.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from dpone_core.errors import DponeError
from dpone_core.metadata_keys import REGISTRY_ENTRY
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport

__all__ = ["register_committed"]


def register_committed(
    report: OrchestratedRunReport, registry: str | None, log: dg.DagsterLogManager
) -> dict[str, Any]:
    """Register ``report`` when a registry is configured; the metadata linking its entry."""
    if registry is None or not report.passed:
        return {}
    from dpone_core.ops.after_run import register_and_export
    from dpone_core.ops.registry_select import find_registry_entry

    for line in register_and_export(
        report, registry=registry, schema=None, lineage="off", spool_dir=""
    ):
        log.info(redact(f"dpone: {line}"))
    try:
        found = find_registry_entry(report.run_id, registry=registry)
    except DponeError as exc:
        log.warning(redact(f"dpone: the run registry could not be read: {exc}"))
        return {}
    if found is None:
        return {}
    return {REGISTRY_ENTRY: dg.MetadataValue.text(redact(found.location))}
